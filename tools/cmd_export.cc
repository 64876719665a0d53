#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "commands.h"
#include "layerstore/changes.h"
#include "mounts.h"
#include "output_file.h"

namespace cli {
namespace {

struct ExportOptions {
  std::string output;
  std::string container;
};

void RunExport(const ExportOptions& opts, Context& ctx) {
  if (opts.output.empty() && StdoutIsTerminal()) {
    return ctx.Fail(
        layerstore::Status::InvalidArgument("cowardly refusing to save to a terminal. Use the -o flag or redirect"));
  }
  auto store = ctx.Store();
  if (!store.ok()) return ctx.Fail(store.status());
  auto c = (*store)->ResolveContainer(opts.container);
  if (!c.ok()) return ctx.Fail(c.status());
  auto view = ContainerView::Open(**store, ctx.store_options.root, *c);
  if (!view.ok()) return ctx.Fail(view.status());

  layerstore::Status s = WriteOutput(opts.output, [&](int fd) {
    layerstore::FdSink sink(fd);
    return layerstore::WriteDirectoryTar((*view)->dir(), sink);
  });
  if (!s.ok()) ctx.Fail(s.WithContext("exporting container " + c->name));
}

}  // namespace

void RegisterExport(CLI::App& app, Context& ctx) {
  auto opts = std::make_shared<ExportOptions>();
  for (CLI::App* parent : {&app, app.get_subcommand("container")}) {
    CLI::App* cmd = parent->add_subcommand("export", "Export a container's filesystem as a tar archive");
    cmd->add_option("-o,--output", opts->output, "Write to a file, instead of STDOUT");
    cmd->add_option("container", opts->container, "Container")->required();
    cmd->callback([opts, &ctx] { RunExport(*opts, ctx); });
  }
}

}  // namespace cli
