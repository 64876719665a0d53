#include <limits.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "commands.h"

namespace cli {
namespace {

struct MountOptions {
  bool read_only = false;
  bool foreground = false;
  std::string layer;
  std::string image;
  std::string mountpoint;
};

// stratafs is installed beside strata; in a build tree it sits in ../fs.
std::string FindStratafs() {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  for (const auto& candidate : {self.parent_path() / "stratafs", self.parent_path().parent_path() / "fs" / "stratafs"}) {
    if (!ec && ::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "stratafs";  // from PATH
}

void RunMount(const MountOptions& opts, Context& ctx) {
  std::string root = ctx.store_options.root.empty() ? layerstore::DefaultStoreRoot() : ctx.store_options.root;
  std::string stratafs = FindStratafs();
  std::vector<std::string> args = {stratafs, "--root", root};
  if (!opts.layer.empty()) args.insert(args.end(), {"--layer", opts.layer});
  if (opts.foreground) args.push_back("-f");
  args.insert(args.end(), {opts.image, opts.mountpoint});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  if (opts.foreground) {
    ::execvp(argv[0], argv.data());
    return ctx.Fail(layerstore::Status::FromErrno("running " + stratafs, errno));
  }
  // stratafs returns once the mount is ready (or failed, saying why on stderr).
  pid_t pid = ::fork();
  if (pid < 0) return ctx.Fail(layerstore::Status::FromErrno("fork", errno));
  if (pid == 0) {
    ::execvp(argv[0], argv.data());
    std::fprintf(stderr, "Error: running %s: %s\n", stratafs.c_str(), std::strerror(errno));
    std::_Exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    ctx.Fail(layerstore::Status::FailedPrecondition(""));  // stratafs already said why
  }
}

struct UmountOptions {
  std::string mountpoint;
};

void RunUmount(const UmountOptions& opts, Context& ctx) {
  char real[PATH_MAX];
  if (!::realpath(opts.mountpoint.c_str(), real)) {
    // A mount whose daemon died answers ENOTCONN to stat: detach it by the name given.
    if (errno != ENOTCONN || ::umount2(opts.mountpoint.c_str(), MNT_DETACH) != 0) {
      return ctx.Fail(layerstore::Status::FromErrno("umount " + opts.mountpoint, errno));
    }
    std::strncpy(real, opts.mountpoint.c_str(), sizeof real - 1);
    real[sizeof real - 1] = '\0';
  } else if (::umount2(real, 0) != 0) {
    int err = errno;
    if (err == ENOTCONN && ::umount2(real, MNT_DETACH) == 0) {
      // the daemon was dead: the lease below is stale
    } else if (err == EPERM && ::geteuid() != 0) {
      std::string cmd = "fusermount3 -u '" + std::string(real) + "'";
      if (std::system(cmd.c_str()) != 0) return ctx.Fail(layerstore::Status::FromErrno("umount " + std::string(real), err));
    } else {
      return ctx.Fail(layerstore::Status::FromErrno("umount " + std::string(real), err));
    }
  }
  auto store = ctx.Store();
  if (store.ok()) (*store)->RemoveMountLease(real);
}

}  // namespace

void RegisterMount(CLI::App& app, Context& ctx) {
  auto opts = std::make_shared<MountOptions>();
  CLI::App* cmd = app.add_subcommand("mount", "Mount an image as a read-only directory, served from the store");
  cmd->add_flag("--read-only", opts->read_only, "Mount read-only (image mounts always are)");
  cmd->add_option("--layer", opts->layer, "Show one layer alone, as stored: 1-based from the bottom, or a diff_id prefix");
  cmd->add_flag("-f,--foreground", opts->foreground, "Stay in the foreground until unmounted");
  cmd->add_option("image", opts->image, "Image")->required();
  cmd->add_option("dir", opts->mountpoint, "Mount point")->required();
  cmd->callback([opts, &ctx] { RunMount(*opts, ctx); });

  auto uopts = std::make_shared<UmountOptions>();
  CLI::App* umount = app.add_subcommand("umount", "Unmount a directory mounted by strata mount");
  umount->alias("unmount");
  umount->add_option("dir", uopts->mountpoint, "Mount point")->required();
  umount->callback([uopts, &ctx] { RunUmount(*uopts, ctx); });
}

}  // namespace cli
