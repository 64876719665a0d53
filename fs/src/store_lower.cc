#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <new>

#include "lower.h"

namespace layerfs {

size_t ContentFdBudget() {
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  return lim.rlim_cur == RLIM_INFINITY ? 1 << 20 : static_cast<size_t>(lim.rlim_cur / 2);
}

StoreLower::StoreLower(std::unique_ptr<layerstore::Store> store, std::unique_ptr<layerstore::RootfsIndex> index)
    : store_(std::move(store)),
      index_(std::move(index)),
      content_fds_(static_cast<int*>(std::calloc(std::max<uint32_t>(index_->node_count(), 1), sizeof(int)))),
      node_count_(index_->node_count()),
      max_cached_fds_(ContentFdBudget()) {
  if (!content_fds_) throw std::bad_alloc();
}

StoreLower::~StoreLower() {
  if (cached_fds_.load(std::memory_order_relaxed) == 0) return;
  for (uint32_t i = 0; i < node_count_; ++i) {
    int fd = std::atomic_ref<int>(content_fds_[i]).load(std::memory_order_relaxed) - 1;
    if (fd >= 0) ::close(fd);
  }
}

mode_t StoreLower::Type(uint32_t node) const {
  auto n = index_->Node(node);
  return n.ok() ? static_cast<mode_t>(n->mode & S_IFMT) : 0;
}

uint32_t StoreLower::ChildCount(uint32_t dir) const {
  auto n = index_->Node(dir);
  return n.ok() ? n->child_count : 0;
}

std::string StoreLower::Path(uint32_t node) const {
  // The index keeps no names by node: find each one among its parent's children. Only renames of
  // lower directories and hardlink copy-ups ask, never a read.
  std::vector<std::string> parts;
  while (node != layerstore::RootfsIndex::kRoot) {
    auto n = index_->Node(node);
    if (!n.ok()) break;
    const uint32_t count = ChildCount(n->parent);
    for (uint32_t i = 0; i < count; ++i) {
      auto c = index_->Child(n->parent, i);
      if (c.ok() && c->second == node) {
        parts.emplace_back(c->first);
        break;
      }
    }
    node = n->parent;
  }
  std::string path;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) path += "/" + *it;
  return path.empty() ? "/" : path;
}

int StoreLower::OpenContent(uint32_t node, layerstore::UniqueFd* fd) const {
  auto object = index_->Object(node);
  if (!object.ok()) return EIO;
  return OpenObject(*object, fd);
}

int StoreLower::OpenObject(const layerstore::Digest& object, layerstore::UniqueFd* fd) const {
  auto opened = store_->OpenObject(object);
  if (!opened.ok()) return opened.status().posix_errno() ? opened.status().posix_errno() : EIO;
  *fd = std::move(*opened);
  return 0;
}

int StoreLower::CachedContentFd(uint32_t node, int* fd, bool* owned) {
  if (node >= node_count_) return ESTALE;
  std::atomic_ref<int> slot(content_fds_[node]);
  int cached = slot.load(std::memory_order_acquire) - 1;
  if (cached >= 0) {
    *fd = cached;
    *owned = false;
    return 0;
  }
  if (Type(node) != S_IFREG) return EISDIR;
  layerstore::UniqueFd opened;
  if (int err = OpenContent(node, &opened)) return err;
  if (cached_fds_.fetch_add(1, std::memory_order_relaxed) >= max_cached_fds_) {
    cached_fds_.fetch_sub(1, std::memory_order_relaxed);
    *fd = opened.Release();
    *owned = true;
    return 0;
  }
  int expected = 0;
  int mine = opened.Release();
  if (slot.compare_exchange_strong(expected, mine + 1, std::memory_order_acq_rel)) {
    *fd = mine;
  } else {  // another thread cached one first
    ::close(mine);
    cached_fds_.fetch_sub(1, std::memory_order_relaxed);
    *fd = expected - 1;
  }
  *owned = false;
  return 0;
}

std::optional<layerstore::Digest> StoreLower::Object(uint32_t node) const {
  auto object = index_->Object(node);
  if (!object.ok()) return std::nullopt;
  return *object;
}

int StoreLower::StatFs(struct statvfs* st) const {
  if (::statvfs(store_->root().c_str(), st) != 0) return errno;
  st->f_files = node_count_;
  st->f_ffree = 0;
  st->f_favail = 0;
  return 0;
}

}  // namespace layerfs
