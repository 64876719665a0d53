#include <iostream>

#include "commands.h"
#include "layerstore/changes.h"
#include "run_state.h"

namespace cli {
namespace {

struct DiffOptions {
  std::string container;
};

void RunDiff(const DiffOptions& opts, Context& ctx) {
  auto store = ctx.Store();
  if (!store.ok()) return ctx.Fail(store.status());
  auto c = (*store)->ResolveContainer(opts.container);
  if (!c.ok()) return ctx.Fail(c.status());
  auto image = (*store)->ResolveImage(c->image_id.str());
  if (!image.ok()) return ctx.Fail(image.status().WithContext("image of container " + c->name));
  auto index = (*store)->OpenRootfs(image->record.layers, false);
  if (!index.ok()) return ctx.Fail(index.status());
  const std::string dir = (*store)->ContainerDir(c->id);
  auto init = ReadInitPaths(dir);
  if (!init.ok()) return ctx.Fail(init.status());
  auto changes = layerstore::ContainerChanges(**index, dir + "/upper", *init);
  if (!changes.ok()) return ctx.Fail(changes.status());
  for (const auto& change : *changes) std::cout << static_cast<char>(change.kind) << " " << change.path << "\n";
}

}  // namespace

void RegisterDiff(CLI::App& app, Context& ctx) {
  auto opts = std::make_shared<DiffOptions>();
  for (CLI::App* parent : {&app, app.get_subcommand("container")}) {
    CLI::App* cmd =
        parent->add_subcommand("diff", "Inspect changes to files or directories on a container's filesystem");
    cmd->add_option("container", opts->container, "Container")->required();
    cmd->callback([opts, &ctx] { RunDiff(*opts, ctx); });
  }
}

}  // namespace cli
