#include "filesystem.h"

#include <sys/resource.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "node_stat.h"

namespace layerfs {

Filesystem::Filesystem(std::unique_ptr<layerstore::Store> store, std::unique_ptr<layerstore::RootfsIndex> index)
    : store_(std::move(store)), index_(std::move(index)), content_fds_(new std::atomic<int>[index_->node_count()]) {
  for (uint32_t i = 0; i < index_->node_count(); ++i) content_fds_[i].store(-1, std::memory_order_relaxed);
  // Keep half the fd limit for cached content fds; the rest is for LMDB, FUSE and spares.
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  max_cached_fds_ = lim.rlim_cur == RLIM_INFINITY ? 1 << 20 : static_cast<size_t>(lim.rlim_cur / 2);
}

Filesystem::~Filesystem() {
  for (uint32_t i = 0; i < index_->node_count(); ++i) {
    int fd = content_fds_[i].load(std::memory_order_relaxed);
    if (fd >= 0) ::close(fd);
  }
}

int Filesystem::Node(uint64_t ino, uint32_t* node) const {
  if (ino == 0 || ino > index_->node_count()) return ESTALE;
  *node = static_cast<uint32_t>(ino - 1);
  return 0;
}

int Filesystem::GetAttr(uint64_t ino, struct stat* st) const {
  uint32_t node;
  if (int err = Node(ino, &node)) return err;
  auto n = index_->Node(node);
  if (!n.ok()) return EIO;
  StatOfNode(*n, ino, st);
  return 0;
}

int Filesystem::Lookup(uint64_t parent, const char* name, uint64_t* ino, struct stat* st) const {
  uint32_t dir;
  if (int err = Node(parent, &dir)) return err;
  if (std::strlen(name) > 255) return ENAMETOOLONG;
  auto child = index_->Lookup(dir, name);
  if (!child) {
    auto n = index_->Node(dir);
    if (n.ok() && (n->mode & S_IFMT) != S_IFDIR) return ENOTDIR;
    return ENOENT;
  }
  *ino = InoOf(*child);
  return GetAttr(*ino, st);
}

int Filesystem::ReadLink(uint64_t ino, std::string* target) const {
  uint32_t node;
  if (int err = Node(ino, &node)) return err;
  auto t = index_->SymlinkTarget(node);
  if (!t.ok()) return EINVAL;
  *target = std::string(*t);
  return 0;
}

int Filesystem::ContentFd(uint64_t ino, int* fd, bool* owned) {
  uint32_t node;
  if (int err = Node(ino, &node)) return err;
  int cached = content_fds_[node].load(std::memory_order_acquire);
  if (cached >= 0) {
    *fd = cached;
    *owned = false;
    return 0;
  }
  auto object = index_->Object(node);
  if (!object.ok()) return EISDIR;
  auto opened = store_->OpenObject(*object);
  if (!opened.ok()) return opened.status().posix_errno() ? opened.status().posix_errno() : EIO;
  if (cached_fds_.fetch_add(1, std::memory_order_relaxed) >= max_cached_fds_) {
    cached_fds_.fetch_sub(1, std::memory_order_relaxed);
    *fd = opened->Release();
    *owned = true;
    return 0;
  }
  int expected = -1;
  int mine = opened->Release();
  if (content_fds_[node].compare_exchange_strong(expected, mine, std::memory_order_acq_rel)) {
    *fd = mine;
  } else {  // another thread cached one first
    ::close(mine);
    cached_fds_.fetch_sub(1, std::memory_order_relaxed);
    *fd = expected;
  }
  *owned = false;
  return 0;
}

int Filesystem::ChildCount(uint64_t dir, uint32_t* count) const {
  uint32_t node;
  if (int err = Node(dir, &node)) return err;
  auto n = index_->Node(node);
  if (!n.ok()) return EIO;
  if ((n->mode & S_IFMT) != S_IFDIR) return ENOTDIR;
  *count = n->child_count;
  return 0;
}

int Filesystem::Child(uint64_t dir, uint32_t i, std::string_view* name, uint64_t* ino) const {
  uint32_t node;
  if (int err = Node(dir, &node)) return err;
  auto child = index_->Child(node, i);
  if (!child.ok()) return EIO;
  *name = child->first;
  *ino = InoOf(child->second);
  return 0;
}

int Filesystem::Parent(uint64_t dir, uint64_t* parent) const {
  uint32_t node;
  if (int err = Node(dir, &node)) return err;
  auto n = index_->Node(node);
  if (!n.ok()) return EIO;
  *parent = InoOf(n->parent);
  return 0;
}

int Filesystem::GetXattr(uint64_t ino, const char* name, std::string* value) const {
  uint32_t node;
  if (int err = Node(ino, &node)) return err;
  auto xattrs = index_->Xattrs(node);
  if (!xattrs.ok()) return EIO;
  for (const auto& [n, v] : *xattrs) {
    if (n == name) {
      *value = std::string(v);
      return 0;
    }
  }
  return ENODATA;
}

int Filesystem::ListXattr(uint64_t ino, std::string* names) const {
  uint32_t node;
  if (int err = Node(ino, &node)) return err;
  auto xattrs = index_->Xattrs(node);
  if (!xattrs.ok()) return EIO;
  names->clear();
  for (const auto& [n, v] : *xattrs) {
    names->append(n);
    names->push_back('\0');
  }
  return 0;
}

int Filesystem::StatFs(struct statvfs* st) const {
  if (::statvfs(store_->root().c_str(), st) != 0) return errno;
  st->f_files = index_->node_count();
  st->f_ffree = 0;
  st->f_favail = 0;
  st->f_namemax = 255;
  return 0;
}

}  // namespace layerfs
