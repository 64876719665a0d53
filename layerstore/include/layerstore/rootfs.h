// RootfsIndex: the merged, read-only view of an image's layer chain, as one mmap'd file.
//
// Built once per chain (Docker's chain ID: the identity of "these layers in this order") by
// applying each layer's whiteouts and opaque markers to the layers below it and then its
// additions, exactly as OCI layer semantics say; then kept in the store and reused by every
// mount, so mounting costs one mmap however many files and layers there are, and a lookup is one
// binary search in its directory however many layers there are.
//
// Node ids are dense: 0 is the root. Every access is bounds-checked against the file, so a
// damaged index yields Corruption, never a wild read. Immutable after Open: all methods are
// const and safe to call from any number of threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "layerstore/digest.h"
#include "layerstore/status.h"

namespace layerstore {

struct RootfsNode {
  uint32_t mode = 0;  // S_IFMT type bits | permission bits
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t nlink = 1;
  uint64_t size = 0;
  int64_t mtime_sec = 0;
  uint32_t mtime_nsec = 0;
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  uint32_t parent = 0;      // the root is its own parent
  uint32_t child_count = 0; // directories
};

class RootfsIndex {
 public:
  static constexpr uint32_t kRoot = 0;

  virtual ~RootfsIndex() = default;

  virtual uint32_t node_count() const = 0;
  virtual const Digest& chain_id() const = 0;

  // REQUIRES for all: node < node_count() (else Corruption / nullopt).
  virtual Result<RootfsNode> Node(uint32_t node) const = 0;
  // The child named `name` of directory `dir`.
  virtual std::optional<uint32_t> Lookup(uint32_t dir, std::string_view name) const = 0;
  // The i-th child of `dir` in name order: (name, node). Stable for the life of the index.
  virtual Result<std::pair<std::string_view, uint32_t>> Child(uint32_t dir, uint32_t i) const = 0;
  virtual Result<std::string_view> SymlinkTarget(uint32_t node) const = 0;
  // The content object of a regular file.
  virtual Result<Digest> Object(uint32_t node) const = 0;
  virtual Result<std::vector<std::pair<std::string_view, std::string_view>>> Xattrs(uint32_t node) const = 0;
};

// The node at `path`, following symbolic links as a lookup confined to the root does
// (RESOLVE_IN_ROOT): absolute targets and ".." stop at the root. nullopt when a component is
// missing; FailedPrecondition when a non-directory is in the way or links nest over 40 deep.
Result<std::optional<uint32_t>> ResolvePath(const RootfsIndex& index, std::string_view path);

// Docker's chain ID of layers (bottom first): chain(1) = diff_id(1), chain(n) =
// sha256(chain(n-1) + " " + diff_id(n)).
Digest ChainId(const std::vector<Digest>& diff_ids);

}  // namespace layerstore
