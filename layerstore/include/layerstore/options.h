// StoreOptions: where the store lives and the limits applied to untrusted archives.
#pragma once

#include <cstdint>
#include <string>

namespace layerstore {

// Bomb protection for layer import. Every limit names itself in the error when hit.
struct ImportLimits {
  uint64_t max_layer_bytes = 64ull << 30;  // uncompressed tar bytes of one layer
  uint64_t max_entries = 2'000'000;        // tar entries in one layer
  uint64_t max_file_bytes = 64ull << 30;   // one regular file's size
  uint64_t max_path_bytes = 4096;          // PATH_MAX: longer names cannot be served by the kernel
  uint64_t max_xattr_bytes = 64 << 10;     // all xattr names + values of one entry (XATTR_SIZE_MAX)
};

struct StoreOptions {
  std::string root;  // REQUIRES: non-empty; created on first use
  ImportLimits limits;
  // A commit syncs the data once and lets the metadata page follow unsynced (LMDB's
  // MDB_NOMETASYNC): the store stays consistent, but a system crash may undo this handle's last
  // commit. For the mount daemon, whose only writes are its mount lease, which a reboot voids
  // anyway: it saves a sync on each mount and each unmount.
  bool lazy_meta_sync = false;
};

// The default root: $STRATA_ROOT, else /var/lib/strata for root, else
// ${XDG_DATA_HOME:-~/.local/share}/strata.
std::string DefaultStoreRoot();

}  // namespace layerstore
