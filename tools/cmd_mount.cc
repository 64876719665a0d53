#include <unistd.h>

#include <cerrno>

#include "commands.h"
#include "mounts.h"

namespace cli {
namespace {

struct MountOptions {
  bool read_only = false;
  bool foreground = false;
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
  std::string root = ctx.store_options.root.empty() ? layerstore::DefaultStoreRoot() : ctx.store_options.root;
  std::vector<std::string> args = {"--root", root};
  if (!opts.layer.empty()) args.insert(args.end(), {"--layer", opts.layer});
  if (container) {
    args.insert(args.end(), {"--container", opts.container});
    if (opts.read_only) args.push_back("--read-only");
  }
  if (opts.foreground) args.push_back("-f");
  args.insert(args.end(), opts.args.begin(), opts.args.end());
  if (opts.foreground) {
    std::string stratafs = FindStratafs();
    std::vector<std::string> storage = {stratafs};
    storage.insert(storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : storage) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    return ctx.Fail(layerstore::Status::FromErrno("running " + stratafs, errno));
  }
  // stratafs returns once the mount is ready (or failed, saying why on stderr).
  auto s = RunStratafs(args);
  if (!s.ok()) ctx.Fail(s);
}

struct UmountOptions {
  std::string mountpoint;
};

void RunUmount(const UmountOptions& opts, Context& ctx) {
  std::string real;
  auto s = Unmount(opts.mountpoint, false, &real);
  if (!s.ok()) return ctx.Fail(s);
  auto store = ctx.Store();
  if (store.ok()) (void)(*store)->RemoveMountLease(real);
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
  cmd->add_option("args", opts->args, "IMAGE DIR, or DIR with --container")->required()->expected(1, 2);
  cmd->callback([opts, &ctx] { RunMount(*opts, ctx); });

  auto uopts = std::make_shared<UmountOptions>();
  CLI::App* umount = app.add_subcommand("umount", "Unmount a directory mounted by strata mount");
  umount->alias("unmount");
  umount->add_option("dir", uopts->mountpoint, "Mount point")->required();
  umount->callback([uopts, &ctx] { RunUmount(*uopts, ctx); });
}

}  // namespace cli
