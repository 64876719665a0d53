// Image archives: load what `docker save`, `skopeo copy ... docker-archive:/oci-archive:/oci:`
// write, and save images in those formats. Both stream: layers are never held in memory.
#pragma once

#include <string>
#include <vector>

#include "layerstore/progress.h"
#include "layerstore/store.h"

namespace layerstore {

struct LoadedImage {
  Digest id;
  std::vector<Reference> tags;
};

struct LoadArchiveOptions {
  // Also keep each new layer's blob as read from the archive under blobs/ when it is compressed
  // with gzip or zstd (LayerExpectation::keep_blob, as pull --keep-blobs), so a later push can
  // send the exact bytes. Uncompressed layers are never kept: the store regenerates them byte for
  // byte. Layers already in the store are not read again to keep their blob.
  bool keep_blobs = false;
};

// Loads every image of the archive at `path`: a docker-archive or OCI layout, as a tar
// (optionally compressed) or as a directory. Layers already in the store are not read again.
Result<std::vector<LoadedImage>> LoadImageArchive(Store& store, const std::string& path,
                                                  ProgressSink* progress, const LoadArchiveOptions& options = {});

enum class ArchiveFormat { kDockerArchive, kOciArchive };

struct SaveItem {
  Digest id;
  std::vector<Reference> tags;  // the names to record (RepoTags / ref.name annotations)
};

// Writes `items` as one archive to `fd` (a file or a pipe; written sequentially).
Status SaveImageArchive(Store& store, const std::vector<SaveItem>& items, ArchiveFormat format, int fd,
                        ProgressSink* progress);

}  // namespace layerstore
