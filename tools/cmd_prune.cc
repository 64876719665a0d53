#include <unistd.h>

#include <iostream>
#include <string>

#include "commands.h"
#include "output.h"

namespace cli {
namespace {

struct PruneOptions {
  bool all = false;
  bool force = false;
};

void RunPrune(const PruneOptions& opts, Context& ctx) {
  if (!opts.force) {
    std::cerr << (opts.all ? "WARNING! This will remove all images without at least one container associated to them.\n"
                           : "WARNING! This will remove all dangling images.\n")
              << "Are you sure you want to continue? [y/N] " << std::flush;
    std::string answer;
    if (!std::getline(std::cin, answer) || (answer != "y" && answer != "Y")) return;
  }
  auto store = ctx.Store();
  if (!store.ok()) return ctx.Fail(store.status());
  auto report = (*store)->PruneImages(opts.all);
  if (!report.ok()) return ctx.Fail(report.status());
  if (!report->events.empty()) {
    std::cout << "Deleted Images:\n";
    for (const auto& e : report->events) {
      std::cout << (e.kind == layerstore::RemovalEvent::kUntagged ? "untagged: " : "deleted: ") << e.what << "\n";
    }
    std::cout << "\n";
  }
  std::cout << "Total reclaimed space: " << HumanSize(static_cast<double>(report->reclaimed_bytes)) << "\n";
}

}  // namespace

void RegisterPrune(CLI::App& image_app, Context& ctx) {
  auto opts = std::make_shared<PruneOptions>();
  CLI::App* cmd = image_app.add_subcommand("prune", "Remove unused images");
  cmd->add_flag("-a,--all", opts->all, "Remove all unused images, not just dangling ones");
  cmd->add_flag("-f,--force", opts->force, "Do not prompt for confirmation");
  cmd->callback([opts, &ctx] { RunPrune(*opts, ctx); });
}

}  // namespace cli
