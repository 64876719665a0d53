// Streams one layer into objects/ and a tar-split temp file, and returns its entries.
// It does not touch the metadata: the Store commits what this returns in one transaction.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "layerstore/io.h"
#include "layerstore/layer.h"
#include "layerstore/options.h"
#include "layerstore/progress.h"
#include "layerstore/store.h"
#include "object_writer.h"

namespace layerstore {

struct ImportedLayer {
  LayerInfo info;
  std::vector<std::string> encoded_entries;  // EncodeEntry rows, tar order
  std::map<Digest, std::pair<uint64_t, uint64_t>> objects;  // digest -> (entries naming it, size)
  std::string tarsplit_temp;                 // tmp/ path of the tar-split, relative to the root
  std::string blob_temp;                     // tmp/ path of the kept blob (expect.keep_blob), else ""
};

// Reads the whole stream. On error, removes its temp files; objects it created are reported
// through writer.created() for the caller to clean up.
Result<ImportedLayer> ImportLayerStream(int root_fd, const ImportLimits& limits, ObjectWriter& writer,
                                        ByteSource& source, const LayerExpectation& expect,
                                        ProgressSink* progress, const std::string& progress_id);

}  // namespace layerstore
