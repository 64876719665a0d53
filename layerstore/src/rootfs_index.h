// Building and opening RootfsIndex files (format in rootfs_index.cc).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "layerstore/layer.h"
#include "layerstore/rootfs.h"

namespace layerstore {

// Feeds every entry of one layer, in tar order, to `fn`.
using LayerEntries = std::function<Status(const std::function<Status(const Entry&)>& fn)>;

// Builds the merged index of `layers` (bottom first) and returns the file's bytes.
// `raw` builds the view of a single layer as it is, whiteouts shown as ".wh." files.
Result<std::string> BuildRootfsIndex(const Digest& chain_id, const std::vector<LayerEntries>& layers, bool raw);

// Opens an index file (mmap). Corruption when its header or sizes do not hold.
Result<std::unique_ptr<RootfsIndex>> OpenRootfsIndex(int dirfd, const std::string& path);

}  // namespace layerstore
