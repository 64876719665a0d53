// stratafs: mounts an image of a strata store, or a container (image + writable layer), or,
// as a drop-in for fuse-overlayfs, plain directories in overlayfs' format.
//   stratafs [--root STORE] [--layer N|DIGEST] [-f] [-d] IMAGE MOUNTPOINT
//   stratafs [--root STORE] --container NAME [--read-only] [-f] [-d] MOUNTPOINT
//   stratafs [--root STORE] --upper DIR --work DIR [--read-only] [-f] [-d] IMAGE MOUNTPOINT
//   stratafs [-f] [-d] -o lowerdir=DIR[:DIR...][,upperdir=DIR,workdir=DIR][,...] [-o ...] MOUNTPOINT
//   stratafs SOURCE MOUNTPOINT -o OPTIONS      (how mount.fuse3 runs it for mount -t fuse.stratafs)
#include <CLI/CLI.hpp>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <system_error>

#include "layerfs/mount.h"
#include "layerstore/options.h"
#include "overlay_options.h"

namespace {

// The fuse-overlayfs forms: everything comes from -o, nothing from the store.
int MountDirectories(const CLI::App& app, const std::vector<std::string>& option_groups,
                     const std::vector<std::string>& positional, layerfs::MountOptions& opts) {
  for (const char* store_flag : {"--root", "--layer", "--container", "--upper", "--work", "--read-only"}) {
    if (app.count(store_flag) > 0) {
      std::cerr << "stratafs: " << store_flag << " is for store images; with -o use lowerdir=, upperdir=, workdir=, ro\n";
      return 2;
    }
  }
  if (auto s = layerfs::ParseOverlayCommandLine(option_groups, positional, &opts); !s.ok()) {
    std::cerr << "stratafs: " << s.message() << "\n";
    return 2;
  }
  // containers/storage runs its mount program in the store's directory with relative layer
  // paths; the daemon must not depend on the directory it was started in.
  std::error_code ec;
  auto anchor = [&ec](std::string& dir) {
    if (!dir.empty() && dir.front() != '/') dir = std::filesystem::absolute(dir, ec).string();
    return !ec;
  };
  if (!anchor(opts.upper_dir) || !anchor(opts.work_dir) || !std::all_of(opts.lower_dirs.begin(), opts.lower_dirs.end(), anchor)) {
    std::cerr << "stratafs: the current directory: " << ec.message() << "\n";
    return 1;
  }
  return layerfs::RunMount(opts);
}

}  // namespace

int main(int argc, char** argv) {
  layerfs::MountOptions opts;
  CLI::App app{"stratafs: serve an image of a strata store, or overlayfs-format directories as fuse-overlayfs "
               "does, as a directory (FUSE). See stratafs(1).",
               "stratafs"};
  app.add_option("--root", opts.store_root, "Store root (default $STRATA_ROOT, /var/lib/strata as root)");
  app.add_option("--layer", opts.layer, "Show one layer alone, as stored (1-based from the bottom, or a diff_id prefix)");
  app.add_option("--container", opts.container, "Mount this container: its image under its writable layer");
  app.add_option("--upper", opts.upper_dir, "Writable layer over the image: an overlayfs-format upper directory");
  app.add_option("--work", opts.work_dir, "Scratch directory for --upper, on the same filesystem");
  app.add_flag("--read-only", opts.read_only, "Refuse changes (with --upper)");
  app.add_flag("--volatile", opts.volatile_layer,
               "With --container: sync nothing, and mark the container so that no later mount accepts its layer");
  app.add_flag("-f,--foreground", opts.foreground, "Stay in the foreground");
  app.add_flag("-d,--debug", opts.debug, "Trace FUSE requests (implies -f)");
  bool no_passthrough = false;
  app.add_flag("--no-passthrough", no_passthrough,
               "Read and write files through the driver, not by FUSE passthrough (an image mount then answers no OPEN)");
  bool no_io_uring = false;
  app.add_flag("--no-io-uring", no_io_uring,
               "Read requests from /dev/fuse, not from per-CPU io_uring queues (and leave the kernel's enable_uring as it is)");
  // One value per -o, never split by CLI11: the commas are the option parser's.
  std::vector<std::string> option_groups;
  app.add_option("-o", option_groups,
                 "fuse-overlayfs options, comma-separated, repeatable: lowerdir=DIR[:DIR...] (top first), "
                 "upperdir=DIR, workdir=DIR, uidmapping=, gidmapping=, squash_to_root, squash_to_uid=, "
                 "squash_to_gid=, static_nlink, volatile, fsync=0|1, passthrough=0|1, io_uring=0|1, fsname=, ro, allow_other, nodev, ... "
                 "(the full list: stratafs(1)). Without upperdir the mount is read-only.")
      ->allow_extra_args(false);
  std::vector<std::string> positional;
  app.add_option("args", positional,
                 "IMAGE MOUNTPOINT, or MOUNTPOINT with --container; with -o: MOUNTPOINT, or SOURCE MOUNTPOINT "
                 "(SOURCE is the fsname)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  opts.passthrough = !no_passthrough;
  opts.io_uring = !no_io_uring;
  if (!option_groups.empty()) return MountDirectories(app, option_groups, positional, opts);
  const size_t want = opts.container.empty() ? 2 : 1;
  if (positional.size() != want) {
    std::cerr << "stratafs: expected " << (want == 2 ? "IMAGE MOUNTPOINT" : "MOUNTPOINT (with --container)") << "\n";
    return 2;
  }
  opts.mountpoint = positional.back();
  if (want == 2) opts.image = positional.front();
  if (!opts.container.empty() && (!opts.upper_dir.empty() || !opts.layer.empty())) {
    std::cerr << "stratafs: --container brings its own layer: no --upper or --layer with it\n";
    return 2;
  }
  if (opts.volatile_layer && (opts.container.empty() || opts.read_only)) {
    std::cerr << "stratafs: --volatile is for a writable --container mount\n";
    return 2;
  }
  if (opts.upper_dir.empty() != opts.work_dir.empty()) {
    std::cerr << "stratafs: --upper and --work go together\n";
    return 2;
  }
  if (!opts.upper_dir.empty() && !opts.layer.empty()) {
    std::cerr << "stratafs: --layer shows a stored layer alone and takes no --upper\n";
    return 2;
  }
  if (opts.store_root.empty()) opts.store_root = layerstore::DefaultStoreRoot();
  return layerfs::RunMount(opts);
}
