// Lower: what a mount shows beneath its writable layer, read-only: a store image's layer chain
// (StoreLower) or plain directories in overlayfs' format (DirectoryLayers). Both are a tree of
// dense node ids (a RootfsIndex) plus a way to read file content; Filesystem and UnionFs are
// written once against this and know nothing of where the layers live.
#pragma once

#include <sys/statvfs.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "layerstore/digest.h"
#include "layerstore/rootfs.h"
#include "layerstore/store.h"
#include "layerstore/unique_fd.h"

namespace layerfs {

class Lower {
 public:
  virtual ~Lower() = default;

  virtual const layerstore::RootfsIndex& index() const = 0;
  // The type bits of a node, without asking for its whole record (which a directory layer
  // would have to stat for).
  virtual mode_t Type(uint32_t node) const = 0;
  // The inode number a node shows (st_ino): the same on every mount.
  virtual uint64_t Ino(uint32_t node) const = 0;
  virtual uint32_t ChildCount(uint32_t dir) const = 0;
  // "/a/b" for a node's place in the merged tree; "/" for the root.
  virtual std::string Path(uint32_t node) const = 0;
  // A new fd to read a regular file's content: 0 or an errno.
  virtual int OpenContent(uint32_t node, layerstore::UniqueFd* fd) const = 0;
  // An fd on a regular file's content kept for the next reads of the same node, up to a bound;
  // past it *owned is set and the caller closes the fd.
  virtual int CachedContentFd(uint32_t node, int* fd, bool* owned) = 0;
  // Where content is addressed by digest (the store), a copy-up may keep only metadata and read
  // the object later (overlayfs' metacopy). nullopt: copy-ups copy the data.
  virtual std::optional<layerstore::Digest> Object(uint32_t node) const = 0;
  virtual int OpenObject(const layerstore::Digest& object, layerstore::UniqueFd* fd) const = 0;
  // Node ids name the same file on every mount (a stored index), so an upper may record them.
  virtual bool stable_ids() const = 0;
  // A file hardlinked in the lower view is one node under several names, so a copy-up can keep
  // the names linked.
  virtual bool shared_hardlinks() const = 0;
  virtual int StatFs(struct statvfs* st) const = 0;
  // Where node ids are not stable, what identifies a copy's lower file across mounts: the value
  // of the trusted.overlay.origin xattr that overlayfs writes on a copy of `node` (its file
  // handle), or nullopt when there is none to give.
  virtual std::optional<std::string> OverlayOrigin(uint32_t) const { return std::nullopt; }
  // Whether an upper entry whose origin xattr holds `origin` is a copy of `node`.
  virtual bool IsOriginOf(uint32_t, std::string_view) const { return false; }
  // The inode number (as Ino gives them) of the file an origin names, wherever it is now, if it
  // is a non-directory with no other names; for a copy renamed away from its lower file.
  virtual std::optional<uint64_t> OriginIno(std::string_view) const { return std::nullopt; }
};

// An image of the store: its chain's RootfsIndex, content from the store's objects.
class StoreLower final : public Lower {
 public:
  // REQUIRES: index belongs to store.
  StoreLower(std::unique_ptr<layerstore::Store> store, std::unique_ptr<layerstore::RootfsIndex> index);
  ~StoreLower() override;

  layerstore::Store& store() { return *store_; }

  const layerstore::RootfsIndex& index() const override { return *index_; }
  mode_t Type(uint32_t node) const override;
  uint64_t Ino(uint32_t node) const override { return uint64_t{node} + 1; }
  uint32_t ChildCount(uint32_t dir) const override;
  std::string Path(uint32_t node) const override;
  int OpenContent(uint32_t node, layerstore::UniqueFd* fd) const override;
  int CachedContentFd(uint32_t node, int* fd, bool* owned) override;
  std::optional<layerstore::Digest> Object(uint32_t node) const override;
  int OpenObject(const layerstore::Digest& object, layerstore::UniqueFd* fd) const override;
  bool stable_ids() const override { return true; }
  bool shared_hardlinks() const override { return true; }
  int StatFs(struct statvfs* st) const override;

 private:
  std::unique_ptr<layerstore::Store> store_;
  std::unique_ptr<layerstore::RootfsIndex> index_;
  struct FreeDeleter {
    void operator()(int* p) const noexcept { std::free(p); }
  };
  // By node: the cached fd + 1, 0 until the node's first read (accessed through atomic_ref). From
  // calloc, so that a mount touches only the pages of the nodes it reads: filling one entry per
  // file of the image was work that grew with the image at every mount.
  std::unique_ptr<int[], FreeDeleter> content_fds_;
  const uint32_t node_count_;
  std::atomic<size_t> cached_fds_{0};
  size_t max_cached_fds_;
};

// Half the fd limit: the rest is for LMDB, FUSE, the upper layer and spares.
size_t ContentFdBudget();

}  // namespace layerfs
