// A lower-view node as struct stat, the same for image and container mounts.
#pragma once

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstring>

#include "layerstore/rootfs.h"

namespace layerfs {

inline void StatOfNode(const layerstore::RootfsNode& n, uint64_t ino, struct stat* st) {
  std::memset(st, 0, sizeof *st);
  st->st_ino = ino;
  st->st_mode = n.mode;
  st->st_nlink = n.nlink;
  st->st_uid = n.uid;
  st->st_gid = n.gid;
  st->st_size = static_cast<off_t>(n.size);
  st->st_blksize = 4096;
  st->st_blocks = static_cast<blkcnt_t>((n.size + 511) / 512);
  st->st_rdev = makedev(n.dev_major, n.dev_minor);
  st->st_mtim.tv_sec = n.mtime_sec;
  st->st_mtim.tv_nsec = n.mtime_nsec;
  // Layers record only mtime; atime and ctime follow it, as in an extracted layer.
  st->st_atim = st->st_mtim;
  st->st_ctim = st->st_mtim;
}

}  // namespace layerfs
