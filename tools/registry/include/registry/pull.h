// Pull: registry -> store, the way `docker pull` does it, with every byte verified before
// anything becomes visible.
//
//   1. GET the manifest by tag or digest (verified); an index/manifest list is resolved to the
//      manifest for the requested platform (default: this machine's), fetched by digest.
//   2. GET the config (verified); its rootfs.diff_ids name the layers.
//   3. Layers the store already has (FindLayer by diff_id) are skipped: "Already exists".
//   4. The others download in parallel (max_concurrent_downloads), each streamed through a
//      BlobPipe straight into Store::ImportLayer, which verifies the blob digest, size and
//      diff_id; a cut transfer resumes with a Range request, transient errors are retried.
//   5. The manifest is stored (PutBlob, verified), then the image is recorded with its tag and
//      RepoDigest "<name>@<manifest digest>" (the index digest for multi-platform images, which
//      is what `docker pull NAME@DIGEST` takes), and each layer's location is recorded
//      (RecordRemoteBlob) so a later push can reuse it.
// A failure anywhere leaves no new image and no layer that failed verification.
#pragma once

#include <optional>
#include <string>

#include "layerstore/progress.h"
#include "layerstore/reference.h"
#include "layerstore/store.h"
#include "registry/client.h"
#include "registry/manifest.h"

namespace registry {

struct PullOptions {
  std::optional<Platform> platform;  // unset: HostPlatform()
  int max_concurrent_downloads = 3;
  bool keep_blobs = false;  // keep each layer's compressed blob (exact re-push, more disk)
};

struct PullResult {
  layerstore::Digest image_id;
  layerstore::Digest digest;       // the digest pulled by (index or manifest)
  layerstore::Digest manifest;     // the image manifest's digest
  std::string repo_digest;         // "docker.io/library/busybox@sha256:..."
  bool up_to_date = false;         // the tag already named this image
  int layers_downloaded = 0;
  int layers_existing = 0;
};

// REQUIRES: `client` is for ref.domain.
layerstore::Result<PullResult> Pull(layerstore::Store& store, Client& client, const layerstore::Reference& ref,
                                    const PullOptions& options, layerstore::ProgressSink* progress);

// Resolves `ref` to the manifest that would be pulled for `platform` (nullopt: no platform
// selection, the top-level manifest as served). Used by pull and `manifest inspect`.
struct ResolvedManifest {
  FetchedManifest top;                    // what the reference names (may be an index)
  std::optional<FetchedManifest> chosen;  // the platform's manifest when top is an index
  const FetchedManifest& image() const { return chosen ? *chosen : top; }
};
layerstore::Result<ResolvedManifest> ResolveManifest(Client& client, const layerstore::Reference& ref,
                                                     const std::optional<Platform>& platform);

}  // namespace registry
