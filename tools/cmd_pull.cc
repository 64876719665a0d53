#include <iostream>

#include "commands.h"
#include "progress.h"
#include "registry/pull.h"
#include "registry_options.h"

namespace cli {
namespace {

struct PullOptions {
  std::string reference;
  std::string platform;
  bool quiet = false;
  int max_concurrent_downloads = 3;
  std::string keep_blobs;  // --keep-blobs[=BOOL]; absent: the store's keep-blobs setting
  RegistryFlags registry;
};

void RunPull(const PullOptions& opts, Context& ctx) {
  auto ref = layerstore::ParseReference(opts.reference);
  if (!ref.ok()) return ctx.Fail(ref.status());
  registry::PullOptions pull;
  if (!opts.platform.empty()) {
    auto platform = registry::ParsePlatform(opts.platform);
    if (!platform.ok()) return ctx.FailUsage(platform.status());
    pull.platform = *platform;
  }
  if (opts.max_concurrent_downloads < 1) {
    return ctx.FailUsage(layerstore::Status::InvalidArgument("--max-concurrent-downloads must be at least 1"));
  }
  pull.max_concurrent_downloads = opts.max_concurrent_downloads;
  auto config = ctx.Config();
  if (!config.ok()) return ctx.Fail(config.status());
  pull.keep_blobs = BoolFlag(opts.keep_blobs).value_or((*config)->keep_blobs);
  auto store = ctx.Store();
  if (!store.ok()) return ctx.Fail(store.status());
  registry::Client client(ref->domain, ClientOptionsFor(opts.registry, ref->domain, **config));
  TerminalProgress progress(stderr, StderrIsTerminal(), opts.quiet);
  auto result = registry::Pull(**store, client, *ref, pull, &progress);
  if (!result.ok()) return ctx.Fail(result.status());
  // stdout: the canonical reference, as docker pull ends (and prints alone with -q).
  std::cout << ref->String() << "\n";
}

}  // namespace

void RegisterPull(CLI::App& app, Context& ctx) {
  auto opts = std::make_shared<PullOptions>();
  for (CLI::App* parent : {&app, app.get_subcommand("image")}) {
    CLI::App* cmd = parent->add_subcommand("pull", "Download an image from a registry");
    cmd->add_option("reference", opts->reference, "NAME[:TAG|@DIGEST]")->required();
    cmd->add_option("--platform", opts->platform, "Platform to pull from a multi-platform image: OS/ARCH[/VARIANT]");
    cmd->add_flag("-q,--quiet", opts->quiet, "Suppress verbose output");
    cmd->add_option("--max-concurrent-downloads", opts->max_concurrent_downloads,
                    "Layers downloaded at the same time (default 3)");
    AddBoolFlag(cmd, "--keep-blobs", &opts->keep_blobs,
                "Also keep each layer's compressed blob, so a push sends the exact bytes (uses more disk; "
                "default: the store's keep-blobs setting)");
    AddRegistryFlags(cmd, &opts->registry);
    auto& limits = ctx.store_options.limits;
    cmd->add_option("--max-layer-size", limits.max_layer_bytes, "Largest uncompressed layer accepted, in bytes");
    cmd->add_option("--max-entries", limits.max_entries, "Most entries accepted in one layer");
    cmd->add_option("--max-file-size", limits.max_file_bytes, "Largest file accepted, in bytes");
    cmd->callback([opts, &ctx] { RunPull(*opts, ctx); });
  }
}

}  // namespace cli
