// The LMDB schema: every table, its key and its value. Keep this drawing true; a change of any
// record's encoding bumps its version byte and adds a decode path (or a migration in store.cc).
//
//   meta      "format"                      -> "1" (kFormatVersion)
//   images    image id (32 raw bytes)       -> ImageRecord   v1: layers, repo digests, manifest, times, size
//   tags      "docker.io/library/x:tag"     -> image id (32 raw bytes)
//   layers    diff_id (32)                  -> LayerRecord   v1: refcount (images), sizes, blob, compression
//   entries   diff_id (32) + seq (BE u32)   -> Entry         v1: one row per tar entry, in tar order
//   objects   content digest (32)           -> ObjectRecord  v1: refcount (entries naming it), size
//   blobs     blob digest (32)              -> BlobRecord    v1: refcount (images naming it), size, media type
//   leases    (unused: mount leases were rows here up to 2026-11-29; they are files under mounts/
//             now, src/leases.cc. A store made before keeps the table, never read again.)
//   containers  container id (64 hex chars) -> ContainerRecord v1: name, image id, image as named,
//                                                               created (unix s), config JSON
//               (src/containers.cc; names are unique, checked by scanning inside the write txn)
//   remote_blobs  diff_id (32) + "registry/repository"
//                                           -> RemoteBlobRecord v1: blob digest, media type, size
//                 (src/distribution.cc: where registries hold each layer; push skips, mounts and
//                 keeps digests with it. Describes registries, not local data: rows outlive the layer.)
//
// A blob row may also belong to a layer: the compressed blob kept by a --keep-blobs pull, keyed
// by the layer's blob_digest, refcount 1 per layer keeping it, removed with the layer.
//
// Invariants (checked by Fsck): every layer named by an image has a row in `layers` whose refcount
// equals the number of times images name it; every object named by an entry has a row in
// `objects` whose refcount equals the number of entries naming it, and a file of that size under
// objects/; every blob row has its file under blobs/; every tag names an existing image; every
// container row has its directory containers/<id>/ and names an existing image, and every
// directory under containers/ has a row.
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "layerstore/layer.h"
#include "layerstore/status.h"
#include "layerstore/store.h"
#include "lmdb_env.h"

namespace layerstore {

inline constexpr std::string_view kFormatVersion = "1";

struct Tables {
  MDB_dbi meta, images, tags, layers, entries, objects, blobs, remote_blobs, containers;
  // Opens all tables in `txn` (creating them when it is a write txn).
  static Result<Tables> Open(lmdb::Txn& txn);
};

struct LayerRecord {
  uint64_t refcount = 0;
  uint64_t tar_size = 0;
  uint64_t content_size = 0;
  uint64_t entry_count = 0;
  Digest blob_digest;
  uint64_t blob_size = 0;
  std::string compression;
};

struct ObjectRecord {
  uint64_t refcount = 0;
  uint64_t size = 0;
};

struct BlobRecord {
  uint64_t refcount = 0;
  uint64_t size = 0;
  std::string media_type;
};

std::string EncodeLayer(const LayerRecord& r);
Result<LayerRecord> DecodeLayer(std::string_view v);
std::string EncodeObject(const ObjectRecord& r);
Result<ObjectRecord> DecodeObject(std::string_view v);
std::string EncodeBlob(const BlobRecord& r);
Result<BlobRecord> DecodeBlob(std::string_view v);
std::string EncodeImage(const ImageRecord& r);
Result<ImageRecord> DecodeImage(std::string_view key, std::string_view v);
std::string EncodeEntry(const Entry& e);
Result<Entry> DecodeEntry(std::string_view v);


std::string EncodeContainer(const ContainerRecord& c);
Result<ContainerRecord> DecodeContainer(std::string_view key, std::string_view v);

std::string EntryKey(const Digest& diff_id, uint32_t seq);

}  // namespace layerstore
