// Push: store -> registry, as `docker push` does, uploading only what the registry lacks.
//
// Per layer, in order of preference:
//   1. the target repository already has it (a remote_blobs record for this location, confirmed
//      by HEAD): nothing to send, "Layer already exists";
//   2. another repository of the same registry has it (a record from an earlier pull or push):
//      cross-repository mount (POST ?mount=&from=), "Mounted from <repo>";
//   3. the compressed blob was kept (pull --keep-blobs): its exact bytes, monolithic upload;
//   4. otherwise the layer is regenerated from the store (ExportLayer gives the exact tar) and
//      recompressed while uploading in chunks (POST, PATCH..., PUT), hashing the compressed
//      bytes as they go.
// Layers upload in parallel; then the config, then the manifest (PUT with its media type).
//
// Manifest digest stability: when the image was pulled, its manifest is kept; if every layer
// blob it names is available by 1-3, that manifest is pushed byte for byte and the digest does
// not change. Otherwise a new manifest names the recompressed blobs (a new digest; the image ID,
// which is the config digest, never changes). Recompression is deterministic, and step 1 reuses
// what an earlier push uploaded, so pushing the same image again uploads nothing and yields the
// same digest. Each layer's location is recorded afterwards (RecordRemoteBlob).
#pragma once

#include <optional>
#include <string>

#include "layerstore/progress.h"
#include "layerstore/reference.h"
#include "layerstore/store.h"
#include "registry/client.h"
#include "registry/compress.h"

namespace registry {

struct PushOptions {
  // --compression-format: when set, only blobs of this compression are reused and new ones use
  // it; when unset, any reusable blob is taken and new ones are gzip (what every client reads).
  std::optional<Compression> compression;
  int max_concurrent_uploads = 3;
  size_t chunk_size = size_t{8} << 20;  // PATCH size of chunked uploads ($STRATA_REGISTRY_CHUNK_SIZE)
};

struct PushResult {
  layerstore::Digest digest;  // of the manifest pushed
  uint64_t size = 0;          // its size in bytes
  std::string media_type;
  bool manifest_kept = false;  // the pulled manifest was pushed unchanged
  int uploaded = 0, mounted = 0, existed = 0;
};

// Pushes `image` as target (domain/path:tag). REQUIRES: `client` is for target.domain;
// target has a tag and no digest.
layerstore::Result<PushResult> Push(layerstore::Store& store, Client& client, const layerstore::Reference& target,
                                    const layerstore::ImageView& image, const PushOptions& options,
                                    layerstore::ProgressSink* progress);

// The compression a layer media type implies: "gzip", "zstd" or "none"; "" when unknown.
std::string MediaTypeCompression(std::string_view media_type);

}  // namespace registry
