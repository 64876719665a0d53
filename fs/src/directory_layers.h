// DirectoryLayers: plain directories in overlayfs' on-disk format, top first, as one merged
// read-only tree (fuse-overlayfs' and kernel overlayfs' lowerdir=).
//
// Read as overlayfs reads them: a whiteout is a 0:0 character device, a `.wh.NAME` file, or (in a
// directory whose overlay.opaque is "x") a file with an overlay.whiteout xattr; a directory is
// opaque when its overlay.opaque is "y" or it holds `.wh..wh..opq`; a directory with an
// overlay.redirect merges the lower directories at that path instead of its own (absolute paths,
// or a name in the directory its parent merges in each layer below). Every marker is read in both
// the trusted. and user. namespace.
//
// Lazy: a directory's merged listing (with a stat of each entry) is built the first time it is
// asked for, so a mount costs nothing however large the layers are. Node ids are given out in
// that order: stable for the life of the mount, not across mounts (st_ino is: see Ino).
// Layers must not change while mounted (as with overlayfs). Thread-safe: one mutex.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <array>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lower.h"

namespace layerfs {

class DirectoryLayers final : public Lower {
 public:
  // dirs: top first. Fails naming the directory that cannot be opened. upper_dev: the device of
  // the writable layer above, if any, whose inode numbers then pass unchanged (see Ino).
  static layerstore::Result<std::unique_ptr<DirectoryLayers>> Open(const std::vector<std::string>& dirs,
                                                                   std::optional<dev_t> upper_dev = std::nullopt);
  ~DirectoryLayers() override;

  const layerstore::RootfsIndex& index() const override { return index_; }
  mode_t Type(uint32_t node) const override;
  uint64_t Ino(uint32_t node) const override;
  uint32_t ChildCount(uint32_t dir) const override;
  std::string Path(uint32_t node) const override;
  int OpenContent(uint32_t node, layerstore::UniqueFd* fd) const override;
  int CachedContentFd(uint32_t node, int* fd, bool* owned) override;
  std::optional<layerstore::Digest> Object(uint32_t) const override { return std::nullopt; }
  int OpenObject(const layerstore::Digest&, layerstore::UniqueFd*) const override;
  bool stable_ids() const override { return false; }
  bool shared_hardlinks() const override { return false; }
  int StatFs(struct statvfs* st) const override;
  std::optional<std::string> OverlayOrigin(uint32_t node) const override;
  bool IsOriginOf(uint32_t node, std::string_view origin) const override;
  std::optional<uint64_t> OriginIno(std::string_view origin) const override;

 private:
  struct Source {
    uint32_t layer;
    std::string path;  // within the layer, no leading slash; "" is its root
  };
  struct Dir {
    std::vector<Source> sources;     // every layer's directory merged here, top first
    bool have_children = false;
    std::vector<uint32_t> children;  // node ids, by name (each name its own node, hardlinks too)
  };
  // One per entry listed: kept small (a listing of 40,000 entries is 40,000 of them), with what
  // only some nodes need behind pointers and the entry's path made when needed (TopOf).
  struct Node {
    std::string name;
    uint32_t parent = 0;
    mode_t type = 0;
    uint32_t top_source = 0;  // the parent's source this entry was found in (see TopOf)
    int content_fd = -1;
    bool have_attr = false;
    layerstore::RootfsNode attr;
    dev_t dev = 0;  // the top entry's, once have_attr
    ino_t ino = 0;
    std::unique_ptr<Dir> dir;                     // directories
    std::unique_ptr<std::string> symlink_target;  // symlinks, once read
    std::unique_ptr<std::vector<std::pair<std::string, std::string>>> xattrs;  // once read
  };

  // The tree as a RootfsIndex, answered from the lazily built nodes.
  class Index final : public layerstore::RootfsIndex {
   public:
    explicit Index(const DirectoryLayers* layers) : layers_(layers) {}
    uint32_t node_count() const override;
    const layerstore::Digest& chain_id() const override { return chain_id_; }
    layerstore::Result<layerstore::RootfsNode> Node(uint32_t node) const override;
    std::optional<uint32_t> Lookup(uint32_t dir, std::string_view name) const override;
    layerstore::Result<std::pair<std::string_view, uint32_t>> Child(uint32_t dir, uint32_t i) const override;
    layerstore::Result<std::string_view> SymlinkTarget(uint32_t node) const override;
    layerstore::Result<layerstore::Digest> Object(uint32_t node) const override;
    layerstore::Result<std::vector<std::pair<std::string_view, std::string_view>>> Xattrs(uint32_t node) const override;

   private:
    const DirectoryLayers* layers_;
    layerstore::Digest chain_id_;  // none: nothing is stored by chain
  };

  DirectoryLayers() = default;

  // REQUIRES: mu_ held.
  // The entry that is this node: its layer, and its path in that layer (which the node's own
  // path is not, below a renamed directory).
  Source TopOf(uint32_t node) const;
  int LoadChildren(uint32_t dir) const;
  int LoadAttr(uint32_t node) const;
  void SetAttr(struct Node& n, const struct stat& st) const;
  const std::array<uint8_t, 16>& UuidOf(uint32_t layer) const;
  std::vector<Source> RedirectSources(const std::vector<Source>& targets) const;
  // The number Ino shows for a file of a layer (no lock: devices_ never changes).
  uint64_t InoOf(dev_t dev, ino_t ino) const;

  std::vector<layerstore::UniqueFd> layers_;  // O_PATH, top first
  // By layer, once asked for (guarded by mu_): its filesystem's UUID as overlayfs records it in
  // an origin (null when the filesystem has none to give).
  mutable std::vector<std::optional<std::array<uint8_t, 16>>> layer_uuids_;
  std::vector<dev_t> devices_;  // the upper's first: an inode number's high byte is its index here
  Index index_{this};
  size_t max_cached_fds_ = 0;
  mutable size_t cached_fds_ = 0;
  mutable std::mutex mu_;
  mutable std::deque<struct Node> nodes_;  // a deque: names and targets handed out stay put
};

}  // namespace layerfs
