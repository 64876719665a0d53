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
};

// The default root: $STRATA_ROOT, else /var/lib/strata for root, else
// ${XDG_DATA_HOME:-~/.local/share}/strata.
std::string DefaultStoreRoot();

}  // namespace layerstore
