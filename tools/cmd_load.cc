#include <unistd.h>

#include <iostream>

#include "commands.h"
#include "layerstore/archive.h"
#include "progress.h"

namespace cli {
namespace {

struct LoadOptions {
  std::string input = "/dev/stdin";
  bool quiet = false;
  std::string keep_blobs;  // --keep-blobs[=BOOL]; absent: the store's keep-blobs setting
};

void RunLoad(const LoadOptions& opts, Context& ctx) {
  if (opts.input == "/dev/stdin" && ::isatty(STDIN_FILENO)) {
    return ctx.Fail(layerstore::Status::InvalidArgument(
        "requested load from stdin, but stdin is a terminal: use -i FILE or redirect an archive"));
  }
  auto config = ctx.Config();
  if (!config.ok()) return ctx.Fail(config.status());
  auto store = ctx.Store();
  if (!store.ok()) return ctx.Fail(store.status());
  TerminalProgress progress(stderr, StderrIsTerminal(), opts.quiet);
  layerstore::LoadArchiveOptions options;
  options.keep_blobs = BoolFlag(opts.keep_blobs).value_or((*config)->keep_blobs);
  auto loaded = layerstore::LoadImageArchive(**store, opts.input, &progress, options);
  if (!loaded.ok()) return ctx.Fail(loaded.status());
  for (const auto& image : *loaded) {
    if (image.tags.empty()) std::cout << "Loaded image ID: " << image.id.str() << "\n";
    for (const auto& tag : image.tags) std::cout << "Loaded image: " << tag.FamiliarString() << "\n";
  }
}

}  // namespace

void RegisterLoad(CLI::App& app, Context& ctx) {
  auto opts = std::make_shared<LoadOptions>();
  for (CLI::App* parent : {&app, app.get_subcommand("image")}) {
    CLI::App* cmd = parent->add_subcommand("load", "Load an image from a tar archive or STDIN");
    cmd->add_option("-i,--input", opts->input, "Read from tar archive file (or OCI layout directory), instead of STDIN");
    cmd->add_flag("-q,--quiet", opts->quiet, "Suppress the load output");
    AddBoolFlag(cmd, "--keep-blobs", &opts->keep_blobs,
                "Also keep each gzip or zstd layer blob as read, so a push can send the exact bytes "
                "(default: the store's keep-blobs setting)");
    auto& limits = ctx.store_options.limits;
    cmd->add_option("--max-layer-size", limits.max_layer_bytes, "Largest uncompressed layer accepted, in bytes");
    cmd->add_option("--max-entries", limits.max_entries, "Most entries accepted in one layer");
    cmd->add_option("--max-file-size", limits.max_file_bytes, "Largest file accepted, in bytes");
    cmd->callback([opts, &ctx] { RunLoad(*opts, ctx); });
  }
}

}  // namespace cli
