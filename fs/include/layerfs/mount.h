// layerfs: the FUSE filesystem that serves an image's merged layers straight from the store.
#pragma once

#include <string>

namespace layerfs {

struct MountOptions {
  std::string store_root;  // the layer store (layerstore::StoreOptions::root)
  std::string image;       // name or ID, resolved in the store
  std::string mountpoint;
  std::string layer;       // non-empty: show only this layer as stored (1-based index or diff_id prefix)
  bool foreground = false; // stay attached; else daemonize once the mount is ready
  bool debug = false;      // libfuse request tracing (implies foreground)
};

// Mounts and serves until unmounted. In the background mode, returns in the parent once the
// mount is ready (0) or failed (1, error on stderr); the daemon child never returns.
// Process exit code semantics: 0 success, 1 failure.
int RunMount(const MountOptions& options);

}  // namespace layerfs
