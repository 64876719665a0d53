#include <chrono>
#include <iostream>
#include <thread>

#include "commands.h"
#include "mounts.h"
#include "run_state.h"
#include "runner.h"

namespace cli {
namespace {

struct RmOptions {
  bool force = false;
  std::vector<std::string> containers;
};

// Removes one container; with `force` a mounted one is unmounted first.
layerstore::Status RemoveOne(layerstore::Store& store, const std::string& name, bool force) {
  LS_ASSIGN_OR_RETURN(layerstore::ContainerRecord c, store.ResolveContainer(name));
  LS_ASSIGN_OR_RETURN(RunState state, ReadRunState(store.ContainerDir(c.id)));
  if (state.Alive()) {
    if (!force) {
      return layerstore::Status::FailedPrecondition("cannot remove container \"/" + c.name +
                                                    "\": container is running: stop the container before removing or force remove");
    }
    // Docker's rm -f kills at once; the container's supervisor then unmounts.
    LS_RETURN_IF_ERROR(StopContainer(store, c, 0));
  }
  LS_ASSIGN_OR_RETURN(auto mounted, LiveContainerMount(store, c.id));
  if (mounted) {
    if (!force) {
      return layerstore::Status::FailedPrecondition("cannot remove container \"/" + c.name +
                                                    "\": container is mounted at " + mounted->mountpoint +
                                                    ": unmount it before removing or force remove");
    }
    std::string real;
    LS_RETURN_IF_ERROR(Unmount(mounted->mountpoint, true, &real));
    (void)store.RemoveMountLease(real);
  }
  // The daemon lets go of the container's lock as it exits, a moment after the unmount.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(mounted ? 10 : 0);
  for (;;) {
    layerstore::Status s = store.RemoveContainer(c.id);
    if (s.code() != layerstore::Code::kUnavailable || std::chrono::steady_clock::now() >= deadline) {
      if (s.code() == layerstore::Code::kUnavailable) {
        return layerstore::Status::Unavailable("cannot remove container \"/" + c.name +
                                               "\": a stratafs daemon still serves it: unmount it before removing");
      }
      return s;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void RunRm(const RmOptions& opts, Context& ctx) {
  auto store = ctx.Store();
  if (!store.ok()) return ctx.Fail(store.status());
  // Like Docker: every argument is tried, each removed one is printed as it was named, and any
  // failure makes the exit status 1.
  for (const std::string& name : opts.containers) {
    layerstore::Status s = RemoveOne(**store, name, opts.force);
    if (!s.ok()) {
      std::cerr << "Error: " << s.message() << "\n";
      if (ctx.status.ok()) ctx.Fail(layerstore::Status::FailedPrecondition(""));
      continue;
    }
    std::cout << name << "\n";
  }
}

}  // namespace

void RegisterRm(CLI::App& app, Context& ctx) {
  auto opts = std::make_shared<RmOptions>();
  CLI::App* rm = app.add_subcommand("rm", "Remove one or more containers");
  CLI::App* crm = app.get_subcommand("container")->add_subcommand("rm", "Remove one or more containers");
  crm->alias("remove");
  for (CLI::App* cmd : {rm, crm}) {
    cmd->add_flag("-f,--force", opts->force, "Force the removal of a running or mounted container (kills and unmounts it)");
    cmd->add_option("containers", opts->containers, "Containers to remove")->required();
    cmd->callback([opts, &ctx] { RunRm(*opts, ctx); });
  }
}

}  // namespace cli
