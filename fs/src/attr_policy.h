// AttrPolicy: how owners and link counts on disk are shown in the mount, and how a caller's ids
// are written back: fuse-overlayfs' uidmapping=/gidmapping=, squash_to_* and static_nlink.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <optional>
#include <vector>

#include "layerfs/mount.h"

namespace layerfs {

class AttrPolicy {
 public:
  // The id the kernel shows for an id that no mapping covers (/proc/sys/kernel/overflowuid).
  static constexpr uint32_t kOverflowId = 65534;

  AttrPolicy() = default;
  explicit AttrPolicy(const OverlayOptions& o)
      : uid_map_(o.uid_mappings), gid_map_(o.gid_mappings), squash_uid_(o.squash_uid), squash_gid_(o.squash_gid),
        static_nlink_(o.static_nlink) {}

  // A stat as the mount shows it.
  void Present(struct stat* st) const {
    st->st_uid = squash_uid_ ? *squash_uid_ : Inside(uid_map_, st->st_uid);
    st->st_gid = squash_gid_ ? *squash_gid_ : Inside(gid_map_, st->st_gid);
    if (static_nlink_ && S_ISDIR(st->st_mode)) st->st_nlink = 1;
  }
  // The ids a caller's file gets on disk.
  uid_t DiskUid(uid_t uid) const { return Outside(uid_map_, uid); }
  gid_t DiskGid(gid_t gid) const { return Outside(gid_map_, gid); }

 private:
  static uint32_t Inside(const std::vector<IdMapping>& map, uint32_t id) {
    if (map.empty()) return id;
    for (const auto& m : map) {
      if (id >= m.outside && id - m.outside < m.count) return m.inside + (id - m.outside);
    }
    return kOverflowId;
  }
  static uint32_t Outside(const std::vector<IdMapping>& map, uint32_t id) {
    if (map.empty()) return id;
    for (const auto& m : map) {
      if (id >= m.inside && id - m.inside < m.count) return m.outside + (id - m.inside);
    }
    return kOverflowId;
  }

  std::vector<IdMapping> uid_map_;
  std::vector<IdMapping> gid_map_;
  std::optional<uid_t> squash_uid_;
  std::optional<gid_t> squash_gid_;
  bool static_nlink_ = false;
};

}  // namespace layerfs
