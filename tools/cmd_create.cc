#include <iostream>

#include "commands.h"
#include "runner.h"

namespace cli {
namespace {

void RunCreate(const RunFlags& flags, const std::vector<std::string>& command, Context& ctx) {
  if (layerstore::Status s = CheckNoUnknownFlag(ctx, flags.image, command); !s.ok()) {
    ctx.Fail(s);
    ctx.exit_code = kExitUsage;
    return;
  }
  auto config = ConfigFromFlags(flags, command);
  if (!config.ok()) return ctx.Fail(config.status());
  auto store = ctx.Store();
  if (!store.ok()) return ctx.Fail(store.status());
  // The flags are kept for `strata start`, which runs the same thing again; `ps` shows the command.
  auto c = (*store)->CreateContainer(flags.name, flags.image, config->ToJson().dump(),
                                     layerstore::ContainerDurability::kSynced);
  if (!c.ok()) return ctx.Fail(c.status());
  std::cout << c->id << "\n";
}

}  // namespace

void RegisterCreate(CLI::App& app, Context& ctx) {
  auto flags = std::make_shared<RunFlags>();
  for (CLI::App* parent : {&app, app.get_subcommand("container")}) {
    CLI::App* cmd = parent->add_subcommand("create", "Create a new container");
    AddRunFlags(cmd, *flags);
    cmd->callback([flags, cmd, &ctx] { RunCreate(*flags, cmd->remaining(), ctx); });
  }
}

}  // namespace cli
