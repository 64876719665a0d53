#include <limits.h>
#include <stdlib.h>

#include <chrono>

#include "commands.h"
#include "layerfs/mount.h"
#include "mounts.h"

namespace cli {
namespace {

struct MountOptions {
  bool read_only = false;
  bool foreground = false;
  bool no_passthrough = false;
  bool no_io_uring = false;
  std::string layer;
  std::string container;
  std::vector<std::string> args;  // IMAGE DIR, or DIR with --container
};

void RunMount(const MountOptions& opts, Context& ctx) {
  const bool container = !opts.container.empty();
  auto usage = [&](const std::string& msg) { ctx.FailUsage(layerstore::Status::InvalidArgument(msg)); };
  if (opts.args.size() != (container ? 1u : 2u)) {
    return usage(container ? "\"strata mount --container\" requires exactly 1 argument: DIR"
                           : "\"strata mount\" requires exactly 2 arguments: IMAGE DIR");
  }
  if (container && !opts.layer.empty())
    return usage("--layer shows a layer of an image: it does not go with --container");
  layerfs::MountOptions options;
  options.store_root = ctx.StoreRoot();
  options.layer = opts.layer;
  if (container) {
    options.container = opts.container;
    options.read_only = opts.read_only;
  } else {
    options.image = opts.args[0];
  }
  options.mountpoint = opts.args.back();
  options.foreground = opts.foreground;
  options.passthrough = !opts.no_passthrough;
  options.io_uring = !opts.no_io_uring;
  // Returns once the mount is ready or failed (the driver has said why on stderr); in the
  // foreground, once unmounted.
  if (layerfs::RunMount(options) != 0) ctx.Fail(layerstore::Status::FailedPrecondition(""));
}

struct UmountOptions {
  std::string mountpoint;
};

void RunUmount(const UmountOptions& opts, Context& ctx) {
  auto store = ctx.Store();
  layerstore::UniqueFd daemon;
  char path[PATH_MAX];
  if (store.ok() && ::realpath(opts.mountpoint.c_str(), path)) daemon = DaemonOf(**store, path);
  std::string real;
  auto s = Unmount(opts.mountpoint, false, &real);
  if (!s.ok()) return ctx.Fail(s);
  if (store.ok()) (void)(*store)->RemoveMountLease(real);
  // Returns once the daemon is gone, so that what it held is free: `strata umount` then `strata
  // rm` or `strata start` of the container finds it unlocked.
  AwaitExit(daemon, std::chrono::seconds(10));
}

}  // namespace

void RegisterMount(CLI::App& app, Context& ctx) {
  auto opts = std::make_shared<MountOptions>();
  CLI::App* cmd =
      app.add_subcommand("mount", "Mount an image read-only, or a container, as a directory served from the store");
  cmd->add_flag("--read-only", opts->read_only, "Mount read-only (image mounts always are)");
  cmd->add_option("--layer", opts->layer,
                  "Show one layer alone, as stored: 1-based from the bottom, or a diff_id prefix");
  cmd->add_option("--container", opts->container,
                  "Mount this container (name or ID): its image plus its writable layer");
  cmd->add_flag("-f,--foreground", opts->foreground, "Stay in the foreground until unmounted");
  cmd->add_flag("--no-passthrough", opts->no_passthrough,
                "Read and write files through the driver, not by FUSE passthrough (an image mount then answers no OPEN)");
  cmd->add_flag("--no-io-uring", opts->no_io_uring,
                "Read requests from /dev/fuse, not from per-CPU io_uring queues (and leave the kernel's enable_uring as it is)");
  cmd->add_option("args", opts->args, "IMAGE DIR, or DIR with --container")->required()->expected(1, 2);
  cmd->callback([opts, &ctx] { RunMount(*opts, ctx); });

  auto uopts = std::make_shared<UmountOptions>();
  CLI::App* umount = app.add_subcommand("umount", "Unmount a directory mounted by strata mount");
  umount->alias("unmount");
  umount->add_option("dir", uopts->mountpoint, "Mount point")->required();
  umount->callback([uopts, &ctx] { RunUmount(*uopts, ctx); });
}

}  // namespace cli
