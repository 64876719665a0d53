// stratafs: mounts an image of a strata store, or a container (image + writable layer).
//   stratafs [--root STORE] [--layer N|DIGEST] [-f] [-d] IMAGE MOUNTPOINT
//   stratafs [--root STORE] --container NAME [--read-only] [-f] [-d] MOUNTPOINT
//   stratafs [--root STORE] --upper DIR --work DIR [--read-only] [-f] [-d] IMAGE MOUNTPOINT
#include <CLI/CLI.hpp>

#include <iostream>

#include "layerfs/mount.h"
#include "layerstore/options.h"

int main(int argc, char** argv) {
  layerfs::MountOptions opts;
  CLI::App app{"stratafs: serve an image of a strata store as a directory (FUSE)", "stratafs"};
  app.add_option("--root", opts.store_root, "Store root (default $STRATA_ROOT, /var/lib/strata as root)");
  app.add_option("--layer", opts.layer, "Show one layer alone, as stored (1-based from the bottom, or a diff_id prefix)");
  app.add_option("--container", opts.container, "Mount this container: its image under its writable layer");
  app.add_option("--upper", opts.upper_dir, "Writable layer over the image: an overlayfs-format upper directory");
  app.add_option("--work", opts.work_dir, "Scratch directory for --upper, on the same filesystem");
  app.add_flag("--read-only", opts.read_only, "Refuse changes (with --upper)");
  app.add_flag("-f,--foreground", opts.foreground, "Stay in the foreground");
  app.add_flag("-d,--debug", opts.debug, "Trace FUSE requests (implies -f)");
  std::vector<std::string> positional;
  app.add_option("args", positional, "IMAGE MOUNTPOINT, or MOUNTPOINT with --container");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
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
