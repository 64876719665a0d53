// stratafs: mounts an image from a strata store as a read-only directory.
//   stratafs [--root STORE] [--layer N|DIGEST] [-f] [-d] IMAGE MOUNTPOINT
#include <CLI/CLI.hpp>

#include <iostream>

#include "layerfs/mount.h"
#include "layerstore/options.h"

int main(int argc, char** argv) {
  layerfs::MountOptions opts;
  CLI::App app{"stratafs: serve an image of a strata store as a directory (FUSE)", "stratafs"};
  app.add_option("--root", opts.store_root, "Store root (default $STRATA_ROOT, /var/lib/strata as root)");
  app.add_option("--layer", opts.layer, "Show one layer alone, as stored (1-based from the bottom, or a diff_id prefix)");
  app.add_option("--upper", opts.upper_dir, "Writable layer over the image: an overlayfs-format upper directory");
  app.add_option("--work", opts.work_dir, "Scratch directory for --upper, on the same filesystem");
  app.add_flag("--read-only", opts.read_only, "Refuse changes (with --upper)");
  app.add_flag("-f,--foreground", opts.foreground, "Stay in the foreground");
  app.add_flag("-d,--debug", opts.debug, "Trace FUSE requests (implies -f)");
  app.add_option("image", opts.image, "Image name or ID")->required();
  app.add_option("mountpoint", opts.mountpoint, "Directory to mount on")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
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
