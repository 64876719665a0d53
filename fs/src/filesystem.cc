#include "filesystem.h"

#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "node_stat.h"

namespace layerfs {

Filesystem::Filesystem(std::unique_ptr<Lower> lower, AttrPolicy policy)
    : lower_(std::move(lower)), index_(lower_->index()), policy_(std::move(policy)) {}

Filesystem::~Filesystem() = default;

int Filesystem::Node(uint64_t ino, uint32_t* node) const {
  if (ino == 0 || ino > index_.node_count()) return ESTALE;
  *node = static_cast<uint32_t>(ino - 1);
  return 0;
}

int Filesystem::GetAttr(uint64_t ino, struct stat* st) const {
  uint32_t node;
  if (int err = Node(ino, &node)) return err;
  auto n = index_.Node(node);
  if (!n.ok()) return EIO;
  StatOfNode(*n, ino, st);
  st->st_ino = lower_->Ino(node);
  policy_.Present(st);
  return 0;
}

int Filesystem::Lookup(uint64_t parent, const char* name, uint64_t* ino, struct stat* st) const {
  uint32_t dir;
  if (int err = Node(parent, &dir)) return err;
  if (std::strlen(name) > 255) return ENAMETOOLONG;
  auto child = index_.Lookup(dir, name);
  if (!child) {
    return lower_->Type(dir) == S_IFDIR ? ENOENT : ENOTDIR;
  }
  *ino = InoOf(*child);
  return GetAttr(*ino, st);
}

int Filesystem::ReadLink(uint64_t ino, std::string* target) const {
  uint32_t node;
  if (int err = Node(ino, &node)) return err;
  auto t = index_.SymlinkTarget(node);
  if (!t.ok()) return EINVAL;
  *target = std::string(*t);
  return 0;
}

int Filesystem::ContentFd(uint64_t ino, int* fd, bool* owned) {
  uint32_t node;
  if (int err = Node(ino, &node)) return err;
  return lower_->CachedContentFd(node, fd, owned);
}

int Filesystem::ChildCount(uint64_t dir, uint32_t* count) const {
  uint32_t node;
  if (int err = Node(dir, &node)) return err;
  if (lower_->Type(node) != S_IFDIR) return ENOTDIR;
  *count = lower_->ChildCount(node);
  return 0;
}

int Filesystem::Child(uint64_t dir, uint32_t i, std::string_view* name, uint64_t* ino) const {
  uint32_t node;
  if (int err = Node(dir, &node)) return err;
  auto child = index_.Child(node, i);
  if (!child.ok()) return EIO;
  *name = child->first;
  *ino = InoOf(child->second);
  return 0;
}

int Filesystem::Parent(uint64_t dir, uint64_t* parent) const {
  uint32_t node;
  if (int err = Node(dir, &node)) return err;
  auto n = index_.Node(node);
  if (!n.ok()) return EIO;
  *parent = InoOf(n->parent);
  return 0;
}

int Filesystem::GetXattr(uint64_t ino, const char* name, std::string* value) const {
  uint32_t node;
  if (int err = Node(ino, &node)) return err;
  auto xattrs = index_.Xattrs(node);
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
  auto xattrs = index_.Xattrs(node);
  if (!xattrs.ok()) return EIO;
  names->clear();
  for (const auto& [n, v] : *xattrs) {
    names->append(n);
    names->push_back('\0');
  }
  return 0;
}

int Filesystem::StatFs(struct statvfs* st) const {
  if (int err = lower_->StatFs(st)) return err;
  st->f_namemax = 255;
  return 0;
}

}  // namespace layerfs
