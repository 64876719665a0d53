// Layer entries and layer summaries as the store records them.
//
// A layer is identified by its diff_id: the sha256 of its uncompressed tar. The store keeps, per
// layer, every tar entry's metadata (an Entry, in tar order) and the tar headers/padding needed to
// regenerate the tar byte for byte; regular-file contents live once in the object store, named by
// their sha256 (Entry::object). Value types.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "layerstore/digest.h"

namespace layerstore {

enum class EntryType : uint8_t {
  kRegular = 1,
  kDirectory = 2,
  kSymlink = 3,
  kHardlink = 4,  // link_target names an earlier entry of the same layer; object is the target's
  kCharDevice = 5,
  kBlockDevice = 6,
  kFifo = 7,
  kWhiteout = 8,  // OCI ".wh.NAME": path is the hidden "dir/NAME"
  kOpaque = 9,    // OCI ".wh..wh..opq": path is the directory whose lower contents are hidden
};

const char* EntryTypeName(EntryType type);

struct Entry {
  std::string path;  // relative, cleaned, no leading "./" or "/"; "" never (root is ".")
  EntryType type = EntryType::kRegular;
  uint32_t mode = 0;  // permission bits incl. setuid/setgid/sticky (no S_IFMT)
  uint32_t uid = 0;
  uint32_t gid = 0;
  int64_t mtime_sec = 0;
  uint32_t mtime_nsec = 0;
  uint64_t size = 0;  // content bytes for regular files and hardlinks, else 0
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  std::string link_target;  // symlink target, or hardlink target path
  Digest object;            // regular files and hardlinks: sha256 of the content
  bool sparse = false;      // stored sparse in the tar (the object holds the full content)
  std::vector<std::pair<std::string, std::string>> xattrs;  // name -> value, as in the tar

  // Whether the record carries an object digest (the codec's rule, by type alone).
  bool HasObject() const { return type == EntryType::kRegular || type == EntryType::kHardlink; }
  // Whether the entry uses a file object: a hardlink to a symlink, device or fifo carries an
  // empty digest and names none, so it must not be counted as a reference.
  bool NamesObject() const { return HasObject() && !object.empty(); }
};

struct LayerInfo {
  Digest diff_id;            // sha256 of the uncompressed tar
  uint64_t tar_size = 0;     // bytes of the uncompressed tar
  uint64_t content_size = 0; // regular-file bytes plus symlink target lengths (Docker's layer size)
  uint64_t entry_count = 0;
  Digest blob_digest;        // the compressed blob it was imported from (== diff_id if none)
  uint64_t blob_size = 0;
  std::string compression;   // "none", "gzip", "zstd", "bzip2", "xz"
  uint64_t refcount = 0;     // images referencing it
  uint64_t new_bytes = 0;    // bytes of file objects this import added (0 when all were shared)
};

}  // namespace layerstore
