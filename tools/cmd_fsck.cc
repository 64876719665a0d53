#include <iostream>

#include "commands.h"

namespace cli {
namespace {

struct FsckOptions {
  bool dry_run = false;
  bool verify_content = false;
};

void RunFsck(const FsckOptions& opts, Context& ctx) {
  auto store = ctx.Store();
  if (!store.ok()) return ctx.Fail(store.status());
  auto report = (*store)->Fsck({!opts.dry_run, opts.verify_content});
  if (!report.ok()) return ctx.Fail(report.status());
  for (const auto& r : report->repaired) std::cout << (opts.dry_run ? "repairable: " : "repaired: ") << r << "\n";
  for (const auto& p : report->problems) std::cout << "damaged: " << p << "\n";
  std::cout << report->images << " images, " << report->layers << " layers, " << report->objects << " objects, "
            << report->blobs << " blobs: "
            << (report->consistent() ? (report->repaired.empty() ? "consistent"
                                                                 : (opts.dry_run ? "repairable" : "repaired"))
                                     : "DAMAGED")
            << "\n";
  if (!report->consistent()) {
    ctx.Fail(layerstore::Status::Corruption("the store has damage fsck cannot repair (see above); remove the images "
                                            "using it with `strata rmi -f` and load them again"));
  }
}

}  // namespace

void RegisterFsck(CLI::App& app, Context& ctx) {
  auto opts = std::make_shared<FsckOptions>();
  CLI::App* cmd = app.add_subcommand("fsck", "Check the store, and repair what a crash can leave");
  cmd->add_flag("-n,--dry-run", opts->dry_run, "Only report; change nothing");
  cmd->add_flag("--verify-content", opts->verify_content, "Re-hash every file object");
  cmd->callback([opts, &ctx] { RunFsck(*opts, ctx); });
}

}  // namespace cli
