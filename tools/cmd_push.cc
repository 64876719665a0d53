#include <iostream>

#include "commands.h"
#include "progress.h"
#include "registry/push.h"
#include "registry_options.h"

namespace cli {
namespace {

struct PushOptions {
  std::string reference;
  std::string compression_format;
  bool quiet = false;
  int max_concurrent_uploads = 3;
  RegistryFlags registry;
};

void RunPush(const PushOptions& opts, Context& ctx) {
  auto ref = layerstore::ParseReference(opts.reference);
  if (!ref.ok()) return ctx.Fail(ref.status());
  if (ref->digest) {
    return ctx.Fail(layerstore::Status::InvalidArgument("cannot push a digest reference: " + ref->FamiliarString()));
  }
  registry::PushOptions push;
  if (!opts.compression_format.empty()) {
    auto c = registry::ParseCompression(opts.compression_format);
    if (!c.ok()) return ctx.FailUsage(c.status());
    push.compression = *c;
  }
  if (opts.max_concurrent_uploads < 1) {
    return ctx.FailUsage(layerstore::Status::InvalidArgument("--max-concurrent-uploads must be at least 1"));
  }
  push.max_concurrent_uploads = opts.max_concurrent_uploads;
  auto config = ctx.Config();
  if (!config.ok()) return ctx.Fail(config.status());
  auto store = ctx.Store();
  if (!store.ok()) return ctx.Fail(store.status());
  auto image = (*store)->ResolveImage(ref->String());
  if (!image.ok()) {
    if (image.status().IsNotFound()) {
      return ctx.Fail(layerstore::Status::NotFound("An image does not exist locally with the tag: " + ref->FamiliarName()));
    }
    return ctx.Fail(image.status());
  }
  registry::Client client(ref->domain, ClientOptionsFor(opts.registry, ref->domain, **config));
  TerminalProgress progress(stderr, StderrIsTerminal(), opts.quiet);
  auto result = registry::Push(**store, client, *ref, *image, push, &progress);
  if (!result.ok()) return ctx.Fail(result.status());
  std::cout << ref->tag << ": digest: " << result->digest.str() << " size: " << result->size << "\n";
}

}  // namespace

void RegisterPush(CLI::App& app, Context& ctx) {
  auto opts = std::make_shared<PushOptions>();
  for (CLI::App* parent : {&app, app.get_subcommand("image")}) {
    CLI::App* cmd = parent->add_subcommand("push", "Upload an image to a registry");
    cmd->add_option("reference", opts->reference, "NAME[:TAG]")->required();
    cmd->add_option("--compression-format", opts->compression_format,
                    "Compression of layers that must be (re)compressed: gzip (default) or zstd")
        ->check(CLI::IsMember({"gzip", "zstd"}));
    cmd->add_flag("-q,--quiet", opts->quiet, "Suppress verbose output");
    cmd->add_option("--max-concurrent-uploads", opts->max_concurrent_uploads,
                    "Layers uploaded at the same time (default 3)");
    AddRegistryFlags(cmd, &opts->registry);
    cmd->callback([opts, &ctx] { RunPush(*opts, ctx); });
  }
}

}  // namespace cli
