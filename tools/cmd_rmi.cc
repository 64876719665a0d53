#include <iostream>

#include "commands.h"

namespace cli {
namespace {

struct RmiOptions {
  bool force = false;
  std::vector<std::string> images;
};

void RunRmi(const RmiOptions& opts, Context& ctx) {
  auto store = ctx.Store();
  if (!store.ok()) return ctx.Fail(store.status());
  // Like Docker: every argument is tried; the first failure decides the exit status.
  for (const std::string& name : opts.images) {
    auto events = (*store)->RemoveImage(name, opts.force);
    if (!events.ok()) {
      std::cerr << "Error: " << events.status().message() << "\n";
      if (ctx.status.ok()) ctx.Fail(layerstore::Status::FailedPrecondition(""));
      continue;
    }
    for (const auto& e : *events) {
      std::cout << (e.kind == layerstore::RemovalEvent::kUntagged ? "Untagged: " : "Deleted: ") << e.what << "\n";
    }
  }
}

}  // namespace

void RegisterRmi(CLI::App& app, Context& ctx) {
  auto opts = std::make_shared<RmiOptions>();
  CLI::App* rmi = app.add_subcommand("rmi", "Remove one or more images");
  CLI::App* rm = app.get_subcommand("image")->add_subcommand("rm", "Remove one or more images");
  rm->alias("remove");
  for (CLI::App* cmd : {rmi, rm}) {
    cmd->add_flag("-f,--force", opts->force, "Force removal of the image");
    cmd->add_option("images", opts->images, "Images to remove")->required();
    cmd->callback([opts, &ctx] { RunRmi(*opts, ctx); });
  }
}

}  // namespace cli
