#include <fcntl.h>
#include <unistd.h>

#include <map>

#include "commands.h"
#include "layerstore/archive.h"
#include "output_file.h"
#include "progress.h"

namespace cli {
namespace {

struct SaveOptions {
  std::string output;
  std::string format = "docker-archive";
  std::vector<std::string> images;
};

void RunSave(const SaveOptions& opts, Context& ctx) {
  layerstore::ArchiveFormat format;
  if (opts.format == "docker-archive") {
    format = layerstore::ArchiveFormat::kDockerArchive;
  } else if (opts.format == "oci-archive") {
    format = layerstore::ArchiveFormat::kOciArchive;
  } else {
    return ctx.FailUsage(layerstore::Status::InvalidArgument("unknown --format \"" + opts.format +
                                                             "\": use docker-archive or oci-archive"));
  }
  if (opts.output.empty() && StdoutIsTerminal()) {
    return ctx.Fail(layerstore::Status::InvalidArgument(
        "cowardly refusing to save to a terminal. Use the -o flag or redirect"));
  }
  auto store = ctx.Store();
  if (!store.ok()) return ctx.Fail(store.status());

  // Each image once, with the names it was asked by (saving by ID records no name, as Docker).
  std::vector<layerstore::SaveItem> items;
  std::map<layerstore::Digest, size_t> index;
  for (const std::string& name : opts.images) {
    auto view = (*store)->ResolveImage(name);
    if (!view.ok()) return ctx.Fail(view.status());
    auto [it, inserted] = index.emplace(view->record.id, items.size());
    if (inserted) items.push_back({view->record.id, {}});
    auto ref = layerstore::ParseReference(name);
    if (ref.ok() && !ref->digest) {
      for (const auto& tag : view->tags) {
        if (tag == *ref) items[it->second].tags.push_back(tag);
      }
    }
  }

  TerminalProgress progress(stderr, StderrIsTerminal(), false);
  layerstore::Status s = WriteOutput(opts.output, [&](int fd) {
    return layerstore::SaveImageArchive(**store, items, format, fd, &progress);
  });
  if (!s.ok()) ctx.Fail(s);
}

}  // namespace

void RegisterSave(CLI::App& app, Context& ctx) {
  auto opts = std::make_shared<SaveOptions>();
  for (CLI::App* parent : {&app, app.get_subcommand("image")}) {
    CLI::App* cmd = parent->add_subcommand("save", "Save one or more images to a tar archive (streamed to STDOUT by default)");
    cmd->add_option("-o,--output", opts->output, "Write to a file, instead of STDOUT");
    cmd->add_option("--format", opts->format, "Archive format: docker-archive (default) or oci-archive");
    cmd->add_option("images", opts->images, "Images to save")->required();
    cmd->callback([opts, &ctx] { RunSave(*opts, ctx); });
  }
}

}  // namespace cli
