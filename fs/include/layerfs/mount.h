// layerfs: the FUSE filesystem that serves an image's merged layers straight from the store.
#pragma once

#include <string>

namespace layerfs {

struct MountOptions {
  std::string store_root;  // the layer store (layerstore::StoreOptions::root)
  std::string image;       // name or ID, resolved in the store
  std::string container;   // instead of image: a container of the store (its image + its layer)
  std::string mountpoint;
  std::string layer;       // non-empty: show only this layer as stored (1-based index or diff_id prefix)
  // A writable layer over the image, in overlayfs' upper format. work_dir: scratch space on the
  // same filesystem. Both set: the image plus that layer; both empty: the image alone, read-only.
  // Set from the container's directory when `container` is given.
  std::string upper_dir;
  std::string work_dir;
  bool read_only = false;  // with upper_dir: show the layer but refuse changes
  bool foreground = false; // stay attached; else daemonize once the mount is ready
  bool debug = false;      // libfuse request tracing (implies foreground)
};

// Mounts and serves until unmounted. In the background mode, returns in the parent once the
// mount is ready (0) or failed (1, error on stderr); the daemon child never returns.
// Process exit code semantics: 0 success, 1 failure.
int RunMount(const MountOptions& options);

}  // namespace layerfs
