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
  // (digest, (entries naming it, size)), sorted by digest, each digest once.
  std::vector<std::pair<Digest, std::pair<uint64_t, uint64_t>>> objects;
  std::string tarsplit_temp;                 // tmp/ path of the tar-split, relative to the root
  std::string blob_temp;                     // tmp/ path of the kept blob (expect.keep_blob), else ""
};

// Reads the whole stream. When it returns, `writer` is finished and every object of the layer is
// written (not yet synced). On error, its temp files are removed and the objects written so far
// are reported through writer.created() for the caller to clean up.
Result<ImportedLayer> ImportLayerStream(int root_fd, const ImportLimits& limits, ObjectWriter& writer,
                                        ByteSource& source, const LayerExpectation& expect,
                                        ProgressSink* progress, const std::string& progress_id);

}  // namespace layerstore
