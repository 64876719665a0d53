#include <iostream>

#include "commands.h"

namespace cli {
namespace {

struct CreateOptions {
  std::string name;
  std::string image;
};

void RunCreate(const CreateOptions& opts, const std::vector<std::string>& command, Context& ctx) {
  auto store = ctx.Store();
  if (!store.ok()) return ctx.Fail(store.status());
  // The command is kept for `strata run`; `ps` shows it.
  nlohmann::json config = nlohmann::json::object();
  if (!command.empty()) config["Cmd"] = command;
  auto c = (*store)->CreateContainer(opts.name, opts.image, config.dump());
  if (!c.ok()) return ctx.Fail(c.status());
  std::cout << c->id << "\n";
}

}  // namespace

void RegisterCreate(CLI::App& app, Context& ctx) {
  auto opts = std::make_shared<CreateOptions>();
  for (CLI::App* parent : {&app, app.get_subcommand("container")}) {
    CLI::App* cmd = parent->add_subcommand("create", "Create a new container");
    cmd->add_option("--name", opts->name, "Assign a name to the container");
    cmd->add_option("image", opts->image, "Image; then COMMAND [ARG...]")->required();
    // Everything after IMAGE is the command and its arguments, options included (Docker's
    // "IMAGE [COMMAND] [ARG...]").
    cmd->prefix_command();
    cmd->callback([opts, cmd, &ctx] { RunCreate(*opts, cmd->remaining(), ctx); });
  }
}

}  // namespace cli
