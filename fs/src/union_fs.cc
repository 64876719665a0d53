#include "union_fs.h"

#include "node_stat.h"
#include "path_util.h"
#include "ops.h"  // FUSE_ROOT_ID, FUSE_SET_ATTR_*

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>

namespace layerfs {
namespace {

constexpr char kOpaque[] = "trusted.overlay.opaque";
constexpr char kRedirect[] = "trusted.overlay.redirect";
constexpr char kOverlayOrigin[] = "trusted.overlay.origin";  // overlayfs' file handle of the lower file
// On a directory holding copies with an origin, whose inode numbers are not their upper files':
// overlayfs then gives each listed entry's own number in readdir (d_ino), not the upper file's.
constexpr char kImpure[] = "trusted.overlay.impure";
constexpr char kMetacopy[] = "trusted.overlay.metacopy";
constexpr char kOverlayPrefix[] = "trusted.overlay.";
constexpr char kEscapedPrefix[] = "trusted.overlay.overlay.";
constexpr char kObject[] = "trusted.strata.object";
// Appended to kObject's value once blocks of the upper file below the object's end replace the
// object's bytes (an older daemon then fails on the value, rather than showing the object there).
constexpr std::string_view kOverridesSuffix = ";overrides";
// Larger units than this (ZFS records, tmpfs huge pages) cost too much to copy at a write's edges.
constexpr off_t kMaxOverrideBlock = 1 << 20;
constexpr char kOrigin[] = "trusted.strata.origin";
constexpr char kStrataPrefix[] = "trusted.strata.";
constexpr char kCapabilityXattr[] = "security.capability";

// The fd cache takes a quarter of the fd limit (the rest is for open files, held inodes, the
// store and FUSE), within these bounds: more fds save little once directories stay cached.
constexpr rlim_t kMinCachedFds = 16;
constexpr rlim_t kMaxCachedFds = 4096;

// What a user calls trusted.overlay.X is stored as trusted.overlay.overlay.X, so it can never be
// mistaken for the union's own markers (overlayfs' convention).
std::string EscapeXattr(std::string_view name) {
  if (StartsWith(name, kOverlayPrefix)) return std::string(kEscapedPrefix) + std::string(name.substr(16));
  return std::string(name);
}

// The user-visible name of a stored xattr, or nullopt for the union's own.
std::optional<std::string> UnescapeXattr(std::string_view stored) {
  if (StartsWith(stored, kEscapedPrefix)) return std::string(kOverlayPrefix) + std::string(stored.substr(24));
  if (StartsWith(stored, kOverlayPrefix) || StartsWith(stored, kStrataPrefix)) return std::nullopt;
  return std::string(stored);
}

// Names a user cannot use: the union's own bookkeeping (trusted.overlay.* are escaped instead).
bool IsReservedXattr(std::string_view name) { return StartsWith(name, kStrataPrefix); }

// Once a metacopy's data is in upper: its markers go (kernel overlayfs' metacopy has no object).
int DropMetacopyMarkers(int fd) {
  if (::fremovexattr(fd, kMetacopy) != 0) return -1;
  if (::fremovexattr(fd, kObject) != 0 && errno != ENODATA) return -1;
  return 0;
}

// Runs `change` (0 or an errno), an entry made in the upper directory `dir_fd` that the union does
// not show as a change of that directory (a copy-up, the other name of a copied-up hardlink), and
// puts the directory's atime and mtime back, best effort, as overlayfs does (ovl_set_timestamps):
// otherwise every copy-up would show as a change of its parent.
template <class Change>
int KeepingDirTimes(int dir_fd, Change change) {
  struct stat before;
  const bool known = ::fstat(dir_fd, &before) == 0;
  if (int err = change()) return err;
  const timespec times[2] = {before.st_atim, before.st_mtim};
  if (known) (void)::utimensat(AT_FDCWD, ProcPath(dir_fd).c_str(), times, 0);
  return 0;
}

// The process umask, read without changing it (umask(2) can only set it, racing other threads
// that create files); 0777 when unknown, which sends every new file the O_TMPFILE way.
mode_t CurrentUmask() {
  std::FILE* status = std::fopen("/proc/self/status", "re");
  if (!status) return 0777;
  mode_t mask = 0777;
  char line[256];
  while (std::fgets(line, sizeof line, status)) {
    if (std::strncmp(line, "Umask:", 6) == 0) {
      mask = static_cast<mode_t>(std::strtoul(line + 6, nullptr, 8));
      break;
    }
  }
  std::fclose(status);
  return mask;
}

// Copies [from, to) of src into dst keeping holes: only data extents are copied. With
// `start_writeback` (the caller syncs dst next) each 8 MiB copied is handed to writeback at once,
// so that the disk writes while the copy goes on and the sync waits for the tail only (a 200 MiB
// copy-up from tmpfs to ext4, copy and fsync: 0.18-0.23 s in one piece, 0.15-0.16 s so).
int CopySparseRange(int src, int dst, off_t from, off_t size, bool start_writeback) {
  constexpr size_t kWritebackChunk = 8 << 20;
  off_t pos = from;
  bool in_kernel = true;
  while (pos < size) {
    off_t data = ::lseek(src, pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // only a hole remains
      return errno;
    }
    if (data >= size) break;
    off_t hole = ::lseek(src, data, SEEK_HOLE);
    if (hole < 0) return errno;
    if (hole > size) hole = size;
    off_t in = data, out = data;
    while (in < hole) {
      const size_t want = start_writeback ? std::min(kWritebackChunk, static_cast<size_t>(hole - in))
                                          : static_cast<size_t>(hole - in);
      ssize_t n = -1;
      if (in_kernel) {
        n = ::copy_file_range(src, &in, dst, &out, want, 0);
        // Across filesystems (store and upper on different ones) it never works: stop asking.
        if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) in_kernel = false;
      }
      if (!in_kernel) {
        // Still in the kernel, page cache to page cache, but at dst's file position.
        if (::lseek(dst, out, SEEK_SET) < 0) return errno;
        n = ::sendfile(dst, src, &in, want);
        if (n > 0) out += n;
      }
      if (n < 0) return errno;
      if (n == 0) return EIO;  // the object is shorter than its recorded size
      if (start_writeback) ::sync_file_range(dst, out - n, n, SYNC_FILE_RANGE_WRITE);  // a hint: the sync decides
    }
    pos = hole;
  }
  return 0;
}

// The same for [0, size), dst then exactly `size` long.
int CopySparse(int src, int dst, off_t size, bool start_writeback) {
  if (int err = CopySparseRange(src, dst, 0, size, start_writeback)) return err;
  return ::ftruncate(dst, size) == 0 ? 0 : errno;
}

// Copies src's [0, end) into the holes dst has there, keeping src's own holes: a metadata-only
// copy's object filled in around the blocks that override it.
int CopyIntoHoles(int src, int dst, off_t end, bool start_writeback) {
  off_t pos = 0;
  while (pos < end) {
    off_t hole = ::lseek(dst, pos, SEEK_HOLE);
    if (hole < 0) return errno;
    if (hole >= end) break;
    off_t data = ::lseek(dst, hole, SEEK_DATA);
    if (data < 0) {
      if (errno != ENXIO) return errno;
      data = end;
    }
    data = std::min(data, end);
    if (int err = CopySparseRange(src, dst, hole, data, start_writeback)) return err;
    pos = data;
  }
  return 0;
}

// Exactly len bytes at pos, or an errno (EIO for a file shorter than that).
int PreadAll(int fd, char* buf, size_t len, off_t pos) {
  while (len > 0) {
    ssize_t n = ::pread(fd, buf, len, pos);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return EIO;
    buf += n;
    len -= static_cast<size_t>(n);
    pos += n;
  }
  return 0;
}

int PwriteAll(int fd, const char* buf, size_t len, off_t pos) {
  while (len > 0) {
    ssize_t n = ::pwrite(fd, buf, len, pos);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    buf += n;
    len -= static_cast<size_t>(n);
    pos += n;
  }
  return 0;
}

// Whether fd holds data at pos (as SEEK_DATA sees it), or an errno.
int HasDataAt(int fd, off_t pos, bool* has) {
  off_t data = ::lseek(fd, pos, SEEK_DATA);
  if (data < 0 && errno != ENXIO) return errno;
  *has = data == pos;
  return 0;
}

// The pieces of [from, to), below the end of a metadata-only copy's object whose blocks in the
// upper file override it: the upper file where it holds data, the object elsewhere.
int PieceTogether(int object, int upper, off_t from, off_t to, std::vector<UnionFs::ReadPlan::Piece>* pieces) {
  off_t pos = from;
  while (pos < to) {
    off_t data = ::lseek(upper, pos, SEEK_DATA);
    if (data < 0 && errno != ENXIO) return errno;
    if (data < 0 || data >= to) {
      pieces->push_back({object, pos, static_cast<size_t>(to - pos)});
      break;
    }
    if (data > pos) pieces->push_back({object, pos, static_cast<size_t>(data - pos)});
    off_t hole = ::lseek(upper, data, SEEK_HOLE);
    if (hole < 0) return errno;
    hole = std::min(hole, to);
    pieces->push_back({upper, data, static_cast<size_t>(hole - data)});
    pos = hole;
  }
  return 0;
}

// Removes name under dirfd, recursively for directories (upper trees hold whiteouts and markers).
int RemoveTree(int dirfd, const std::string& name) {
  struct stat st;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return errno == ENOENT ? 0 : errno;
  if (!S_ISDIR(st.st_mode)) return ::unlinkat(dirfd, name.c_str(), 0) == 0 ? 0 : errno;
  int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno;
  DIR* dir = ::fdopendir(fd);
  if (!dir) {
    int err = errno;
    ::close(fd);
    return err;
  }
  std::vector<std::string> names;
  while (dirent* d = ::readdir(dir)) {
    if (std::strcmp(d->d_name, ".") != 0 && std::strcmp(d->d_name, "..") != 0) names.emplace_back(d->d_name);
  }
  int err = 0;
  for (const auto& n : names) {
    if (int e = RemoveTree(::dirfd(dir), n)) err = e;
  }
  ::closedir(dir);
  if (err) return err;
  return ::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) == 0 ? 0 : errno;
}

}  // namespace

struct UnionFs::Inode {
  uint64_t nodeid = 0;
  mode_t type = 0;
  uint32_t lower = kNoNode;      // the lower node it is (or was copied up from): its identity
  uint32_t lower_dir = kNoNode;  // directories: the lower directory merged under it
  Inode* parent = nullptr;       // pinned while this inode lives (copy-up needs the way up)
  std::string name;              // its name in parent (for hardlinks: the name it was found by)
  bool in_upper = false;         // it has an upper entry
  ino_t upper_ino = 0;           // that entry's inode number: what parent/name must lead to
  UniqueFd fd;                   // O_PATH to the upper entry, while cached or held
  bool held = false;             // fd kept until forgotten: parent/name may no longer lead here
  std::list<Inode*>::iterator lru;  // its place in fd_lru_ while fd is cached and not held
  // Upper holds metadata only. Atomic: a read past a store object's end checks it without the
  // lock (it is set and cleared under it).
  std::atomic<bool> metacopy{false};
  // Its upper file has no security.capability, which the kernel asks for before every write(2):
  // known for a file this daemon made, or once read absent, until an xattr change through here.
  // (Kernel overlayfs caches the same answer in S_NOSEC.)
  bool no_capability = false;
  std::optional<layerstore::Digest> object;  // regular files whose content is (still) an object
  // A metacopy whose upper file's data blocks below the object's end override it (kObject's
  // suffix). Atomic: reads check it without the lock; it is set under the lock before the first
  // such block is written.
  std::atomic<bool> overrides{false};
  uint32_t data_lower = kNoNode;  // a metacopy over directory layers: the lower file with the data
  std::atomic<bool> data_in_upper{false};
  // Over directory layers, once in the upper layer: the st_ino it shows, its lower file's (a copy
  // renamed away from it too); 0: the upper file's own. Set by NoteCopy.
  uint64_t shown_ino = 0;
  uint64_t nlookup = 0;
  uint64_t pins = 0;  // children in the table whose parent this is
};

struct UnionFs::Found {
  UniqueFd upper;
  // In upper but not opened: a file made here, reached by its parent and name once an fd is needed.
  bool upper_unopened = false;
  struct stat upper_stat {};
  bool whiteout = false;
  uint32_t lower_here = kNoNode;  // what the lower view has at this position, hidden or not
  uint64_t nodeid = 0;
  mode_t type = 0;
  uint32_t lower = kNoNode;
  uint32_t lower_dir = kNoNode;
  bool metacopy = false;
  std::optional<layerstore::Digest> object;
  bool overrides = false;
  uint32_t data_lower = kNoNode;
  uint64_t origin_ino = 0;
};

// Holds mu_ for one operation. Fds taken from the cache during the operation stay open until it
// ends (callers use them as plain ints); only then is the cache trimmed back to its bound.
class UnionFs::Locked {
 public:
  explicit Locked(UnionFs* fs) : fs_(fs) { fs_->mu_.lock(); }
  ~Locked() {
    fs_->TrimFds();
    fs_->mu_.unlock();
  }
  Locked(const Locked&) = delete;
  Locked& operator=(const Locked&) = delete;

 private:
  UnionFs* fs_;
};

layerstore::Result<std::unique_ptr<UnionFs>> UnionFs::Open(std::unique_ptr<Lower> lower, const std::string& upper_dir,
                                                           const std::string& work_dir, const Options& options) {
  std::unique_ptr<UnionFs> fs(new UnionFs());
  fs->lower_ = std::move(lower);
  fs->index_ = &fs->lower_->index();
  fs->policy_ = options.policy;
  fs->sync_ = options.sync;
  fs->copy_at_open_below_ = options.copy_at_open_below;
  fs->upper_dir_ = upper_dir;
  fs->upper_root_.Reset(::open(upper_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fs->upper_root_) return layerstore::Status::FromErrno("upper directory " + upper_dir, errno);
  fs->work_.Reset(::open(work_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fs->work_) return layerstore::Status::FromErrno("work directory " + work_dir, errno);
  struct stat us, ws;
  if (::fstat(fs->upper_root_.get(), &us) != 0 || ::fstat(fs->work_.get(), &ws) != 0) {
    return layerstore::Status::FromErrno("stat " + upper_dir, errno);
  }
  if (us.st_dev != ws.st_dev) {
    return layerstore::Status::InvalidArgument("upper " + upper_dir + " and work " + work_dir +
                                               " must be on one filesystem");
  }
  // Leftovers of an interrupted copy-up or removal: never visible, safe to drop.
  int scan = ::openat(fs->work_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (scan >= 0) {
    DIR* dir = ::fdopendir(scan);
    std::vector<std::string> names;
    while (dirent* d = dir ? ::readdir(dir) : nullptr) {
      if (std::strcmp(d->d_name, ".") != 0 && std::strcmp(d->d_name, "..") != 0) names.emplace_back(d->d_name);
    }
    for (const auto& n : names) RemoveTree(::dirfd(dir), n);
    if (dir) ::closedir(dir);
    else ::close(scan);
  }

  fs->uid_ = ::geteuid();
  fs->gid_ = ::getegid();
  fs->umask_ = CurrentUmask();
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  fs->max_cached_fds_ = static_cast<size_t>(std::clamp(lim.rlim_cur / 4, kMinCachedFds, kMaxCachedFds));

  auto root = std::make_unique<Inode>();
  root->nodeid = FUSE_ROOT_ID;
  root->type = S_IFDIR;
  root->lower = layerstore::RootfsIndex::kRoot;
  root->in_upper = true;
  root->upper_ino = us.st_ino;
  root->fd.Reset(::open(upper_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root->fd) return layerstore::Status::FromErrno("upper directory " + upper_dir, errno);
  root->held = true;  // the way to everything else
  bool opaque = ReadXattr(ProcPath(root->fd.get()), kOpaque, false) == "y";
  root->lower_dir = opaque ? kNoNode : layerstore::RootfsIndex::kRoot;
  root->nlookup = 1;  // never forgotten
  fs->NoteCopy(root.get());
  fs->inodes_.emplace(FUSE_ROOT_ID, std::move(root));
  return fs;
}

UnionFs::~UnionFs() = default;

std::string UnionFs::TempName() {
  return "strata." + std::to_string(::getpid()) + "." + std::to_string(temp_counter_.fetch_add(1));
}

UnionFs::Inode* UnionFs::Get(uint64_t nodeid) {
  auto it = inodes_.find(nodeid);
  return it == inodes_.end() ? nullptr : it->second.get();
}

int UnionFs::UpperFd(Inode* inode, int* fd) {
  if (inode->fd) {
    if (!inode->held) fd_lru_.splice(fd_lru_.begin(), fd_lru_, inode->lru);
    *fd = inode->fd.get();
    return 0;
  }
  if (!inode->in_upper || !inode->parent) return EIO;
  int parent_fd;
  if (int err = UpperFd(inode->parent, &parent_fd)) return err;
  UniqueFd found(::openat(parent_fd, inode->name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!found) return errno == ENOENT ? ESTALE : errno;
  struct stat st;
  if (::fstatat(found.get(), "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return errno;
  // Every change of the namespace keeps parent and name right, and an inode that loses its name
  // is held; anything else there means that bookkeeping failed: never act on the wrong file.
  if (st.st_ino != inode->upper_ino) return ESTALE;
  *fd = found.get();
  CacheFd(inode, std::move(found));
  return 0;
}

void UnionFs::CacheFd(Inode* inode, UniqueFd fd) {
  if (inode->fd) return;
  inode->fd = std::move(fd);
  inode->lru = fd_lru_.insert(fd_lru_.begin(), inode);
}

int UnionFs::Adopt(Inode* inode, UniqueFd fd) {
  struct stat st;
  if (::fstatat(fd.get(), "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return errno;
  inode->in_upper = true;
  inode->upper_ino = st.st_ino;
  CacheFd(inode, std::move(fd));
  NoteCopy(inode);
  return 0;
}

// From now on the fd is the only sure way to the inode (the name it was known by is about to go),
// and it keeps the inode allocated, so the upper filesystem cannot give its number, which is an
// upper-only inode's node id, to a new file while the kernel still uses the id. The kernel
// forgets a removed inode once nothing has it open, so held fds do not pile up.
int UnionFs::Hold(Inode* inode) {
  if (inode->held || !inode->in_upper) return 0;
  int fd;
  if (int err = UpperFd(inode, &fd)) return err;
  fd_lru_.erase(inode->lru);
  inode->held = true;
  return 0;
}

int UnionFs::HoldIfKnown(uint64_t nodeid) {
  Inode* inode = Get(nodeid);
  return inode ? Hold(inode) : 0;
}

void UnionFs::DropFd(Inode* inode) {
  if (inode->fd && !inode->held) fd_lru_.erase(inode->lru);
  inode->fd.Reset();
}

void UnionFs::TrimFds() {
  while (fd_lru_.size() > max_cached_fds_) {
    Inode* oldest = fd_lru_.back();
    fd_lru_.pop_back();
    oldest->fd.Reset();
  }
}

int UnionFs::UpperXattrPath(Inode* inode, std::string* path) {
  // The f*xattr calls refuse O_PATH fds, but the fd's /proc link, followed, lands on the entry
  // itself, a symlink included, without following a symlink's target (which may point back into
  // this mount). It is the inode's own fd: right also when the name it was found by now belongs
  // to another file (a hardlinked symlink whose other name was renamed over).
  int fd;
  if (int err = UpperFd(inode, &fd)) return err;
  *path = ProcPath(fd);
  return 0;
}

std::optional<uint32_t> UnionFs::LowerLookupPath(const std::string& path) {
  uint32_t node = layerstore::RootfsIndex::kRoot;
  size_t pos = 0;
  while (pos < path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string::npos) end = path.size();
    if (end > pos) {
      auto child = index_->Lookup(node, std::string_view(path).substr(pos, end - pos));
      if (!child) return std::nullopt;
      node = *child;
    }
    pos = end + 1;
  }
  return node;
}

int UnionFs::Resolve(Inode* dir, const char* name, Found* f) {
  if (std::strlen(name) > 255) return ENAMETOOLONG;
  if (dir->type != S_IFDIR) return ENOTDIR;
  if (dir->lower_dir != kNoNode) {
    if (auto c = index_->Lookup(dir->lower_dir, name)) f->lower_here = *c;
  }
  int dir_fd = -1;
  if (dir->in_upper) {
    if (int err = UpperFd(dir, &dir_fd)) return err;
    int fd = ::openat(dir_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      if (errno != ENOENT) return errno;
    } else {
      UniqueFd upper(fd);
      if (::fstatat(fd, "", &f->upper_stat, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return errno;
      if (IsWhiteout(f->upper_stat)) {
        f->whiteout = true;
        return ENOENT;
      }
      f->upper = std::move(upper);
    }
  }
  if (f->upper) {
    f->type = f->upper_stat.st_mode & S_IFMT;
    std::string path;
    bool no_follow = f->type == S_IFLNK;
    path = no_follow ? ProcPath(dir_fd) + "/" + name : ProcPath(f->upper.get());
    if (!lower_->stable_ids()) {
      if (f->type != S_IFDIR) f->lower = DirectoryCopyOrigin(f, path, no_follow);
    } else if (auto origin = ReadXattr(path, kOrigin, no_follow)) {
      unsigned long v = std::strtoul(origin->c_str(), nullptr, 10);
      if (v < index_->node_count()) f->lower = static_cast<uint32_t>(v);
    }
    if (f->type == S_IFDIR) {
      f->lower_dir = MergedLowerDir(path, f->lower_here, dir->lower_dir);
      if (f->lower == kNoNode) f->lower = f->lower_dir;
    } else if (f->type == S_IFREG && ReadXattr(path, kMetacopy, false)) {
      f->metacopy = true;
      if (auto object = ReadXattr(path, kObject, false)) {
        if (object->ends_with(kOverridesSuffix)) {
          object->resize(object->size() - kOverridesSuffix.size());
          f->overrides = true;
        }
        auto digest = layerstore::Digest::Parse(*object);
        if (!digest.ok()) return EIO;
        f->object = *digest;
      } else {
        // Kernel overlayfs' metacopy (metacopy=on): the data is the lower file at the redirect's
        // path, or at this one.
        std::optional<uint32_t> data;
        if (auto redirect = ReadXattr(path, kRedirect, false)) {
          data = StartsWith(*redirect, "/") ? LowerLookupPath(*redirect)
                 : dir->lower_dir != kNoNode ? index_->Lookup(dir->lower_dir, *redirect)
                                             : std::nullopt;
        } else if (f->lower_here != kNoNode) {
          data = f->lower_here;
        }
        if (!data || lower_->Type(*data) != S_IFREG) return EIO;  // a metacopy without its content
        f->data_lower = *data;
      }
    }
    f->nodeid = f->lower != kNoNode ? uint64_t{f->lower} + 1 : kUpperBase + f->upper_stat.st_ino;
    return 0;
  }
  if (f->lower_here == kNoNode) return ENOENT;
  f->type = lower_->Type(f->lower_here);
  if (f->type == 0) return EIO;
  f->lower = f->lower_here;
  if (f->type == S_IFDIR) f->lower_dir = f->lower_here;
  if (f->type == S_IFREG) f->object = lower_->Object(f->lower_here);
  f->nodeid = uint64_t{f->lower_here} + 1;
  return 0;
}

// Over directory layers, the lower node that the non-directory upper entry `f` is a copy of: the
// one a known inode was copied up from, or the one at its position if its origin names that one.
// A copy renamed away from its lower file is no node of the lower view's (its own node id is the
// upper file's), but shows the lower file's inode number, as in overlayfs: f->origin_ino.
uint32_t UnionFs::DirectoryCopyOrigin(Found* f, const std::string& path, bool no_follow) {
  if (auto it = copies_by_upper_ino_.find(f->upper_stat.st_ino); it != copies_by_upper_ino_.end()) {
    if (const Inode* known = Get(it->second)) return known->lower;
  }
  auto origin = ReadXattr(path, kOverlayOrigin, no_follow);
  if (!origin) return kNoNode;
  if (f->lower_here != kNoNode && lower_->Type(f->lower_here) == f->type && lower_->IsOriginOf(f->lower_here, *origin)) {
    return f->lower_here;
  }
  f->origin_ino = lower_->OriginIno(*origin).value_or(0);
  return kNoNode;
}

void UnionFs::MarkImpure(int dir_fd) {
  if (lower_->stable_ids()) return;  // (only directory layers' uppers are read by overlayfs)
  (void)::setxattr(ProcPath(dir_fd).c_str(), kImpure, "y", 1, XATTR_CREATE);
}

// Over directory layers, an inode now in the upper layer: the number it shows, once (the lower
// view never changes), and for a copy, its node id by upper inode number (DirectoryCopyOrigin).
void UnionFs::NoteCopy(Inode* inode) {
  if (lower_->stable_ids() || !inode->in_upper) return;
  if (inode->lower != kNoNode) {
    // The copy of a file with other names in the lower view shows its own: those names are
    // another file now.
    auto n = index_->Node(inode->lower);
    if (inode->type == S_IFDIR || (n.ok() && n->nlink == 1)) inode->shown_ino = lower_->Ino(inode->lower);
  }
  if (inode->type != S_IFDIR && inode->nodeid < kUpperBase) copies_by_upper_ino_[inode->upper_ino] = inode->nodeid;
}

UnionFs::Inode* UnionFs::Intern(Found& f, Inode* parent, const char* name) {
  auto it = inodes_.find(f.nodeid);
  const bool in_upper = f.upper.valid() || f.upper_unopened;
  Inode* inode;
  if (it != inodes_.end()) {
    inode = it->second.get();
    if (!inode->in_upper && in_upper) {
      inode->in_upper = true;
      inode->upper_ino = f.upper_stat.st_ino;
      inode->metacopy = f.metacopy;
      if (f.metacopy) inode->object = f.object;
      inode->overrides = f.overrides;
      if (f.metacopy) inode->data_lower = f.data_lower;
      inode->data_in_upper = inode->type == S_IFREG && !f.metacopy;
      NoteCopy(inode);
    }
    if (f.upper && f.upper_stat.st_ino == inode->upper_ino) CacheFd(inode, std::move(f.upper));
  } else {
    auto fresh = std::make_unique<Inode>();
    inode = fresh.get();
    inode->nodeid = f.nodeid;
    inode->type = f.type;
    inode->lower = f.lower;
    inode->lower_dir = f.lower_dir;
    inode->parent = parent;
    ++parent->pins;
    inode->name = name;
    inode->metacopy = f.metacopy;
    inode->object = f.object;
    inode->overrides = f.overrides;
    inode->data_lower = f.data_lower;
    inode->data_in_upper = in_upper && f.type == S_IFREG && !f.metacopy;
    inode->in_upper = in_upper;
    inode->upper_ino = f.upper_stat.st_ino;
    inode->shown_ino = f.origin_ino;
    if (f.upper) CacheFd(inode, std::move(f.upper));
    inodes_.emplace(f.nodeid, std::move(fresh));
    NoteCopy(inode);
  }
  ++inode->nlookup;
  return inode;
}

void UnionFs::Unref(Inode* inode, uint64_t n) {
  while (inode) {
    inode->nlookup -= std::min(n, inode->nlookup);
    if (inode->nlookup > 0 || inode->pins > 0 || inode->nodeid == FUSE_ROOT_ID) return;
    Inode* parent = inode->parent;
    DropFd(inode);
    if (auto it = copies_by_upper_ino_.find(inode->upper_ino);
        inode->in_upper && it != copies_by_upper_ino_.end() && it->second == inode->nodeid) {
      copies_by_upper_ino_.erase(it);
    }
    inodes_.erase(inode->nodeid);
    if (!parent) return;
    --parent->pins;
    inode = parent;
    n = 0;
  }
}

int UnionFs::LowerStat(uint32_t node, uint64_t nodeid, struct stat* st) {
  auto n = index_->Node(node);
  if (!n.ok()) return EIO;
  StatOfNode(*n, nodeid, st);
  st->st_ino = lower_->Ino(node);
  policy_.Present(st);
  return 0;
}

int UnionFs::StatOf(Inode* inode, struct stat* st) {
  if (!inode->in_upper) return LowerStat(inode->lower, inode->nodeid, st);
  int fd;
  if (int err = UpperFd(inode, &fd)) return err;
  if (::fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return errno;
  // Over a store image, st_ino is the node id; over directory layers, the lower file's number for
  // a copy of it (NoteCopy, see DirectoryLayers::Ino), else the upper file's.
  if (lower_->stable_ids()) st->st_ino = inode->nodeid;
  else if (inode->shown_ino) st->st_ino = inode->shown_ino;
  if (inode->metacopy) st->st_blocks = (st->st_size + 511) / 512;
  // Overlayfs' convention: a merged directory's link count is unknown; 1 tells find not to
  // use it to skip subdirectories.
  if (inode->type == S_IFDIR && inode->lower_dir != kNoNode) st->st_nlink = 1;
  policy_.Present(st);
  return 0;
}

int UnionFs::Lookup(uint64_t parent, const char* name, EntryOut* out) {
  Locked lock(this);
  Inode* dir = Get(parent);
  if (!dir) return ESTALE;
  Found f;
  if (int err = Resolve(dir, name, &f)) return err;
  Inode* inode = Intern(f, dir, name);
  out->nodeid = inode->nodeid;
  if (int err = StatOf(inode, &out->attr)) {
    Unref(inode, 1);
    return err;
  }
  return 0;
}

void UnionFs::Forget(uint64_t nodeid, uint64_t nlookup) {
  Locked lock(this);
  if (Inode* inode = Get(nodeid)) Unref(inode, nlookup);
}

int UnionFs::GetAttr(uint64_t nodeid, struct stat* st) {
  Locked lock(this);
  Inode* inode = Get(nodeid);
  if (!inode) return ESTALE;
  return StatOf(inode, st);
}

int UnionFs::ReadLink(uint64_t nodeid, std::string* target) {
  Locked lock(this);
  Inode* inode = Get(nodeid);
  if (!inode) return ESTALE;
  if (inode->type != S_IFLNK) return EINVAL;
  if (!inode->in_upper) {
    auto t = index_->SymlinkTarget(inode->lower);
    if (!t.ok()) return EIO;
    *target = std::string(*t);
    return 0;
  }
  int fd;
  if (int err = UpperFd(inode, &fd)) return err;
  char buf[PATH_MAX + 1];
  ssize_t n = ::readlinkat(fd, "", buf, sizeof buf);
  if (n < 0) return errno;
  target->assign(buf, static_cast<size_t>(n));
  return 0;
}

// --- copy-up -----------------------------------------------------------------------------------

int UnionFs::MakeUpperCopy(int parent_fd, const std::string& name, uint32_t node, bool with_data, UniqueFd* out) {
  auto n = index_->Node(node);
  if (!n.ok()) return EIO;
  const std::string tmp = TempName();
  const int work = work_.get();
  const mode_t type = n->mode & S_IFMT;
  UniqueFd file;
  bool copied_data = false;
  switch (type) {
    case S_IFDIR:
      if (::mkdirat(work, tmp.c_str(), 0700) != 0) return errno;
      break;
    case S_IFREG: {
      file.Reset(::openat(work, tmp.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600));
      if (!file) return errno;
      auto object = lower_->Object(node);
      int err = 0;
      if (with_data || !object) {
        UniqueFd src;
        err = lower_->OpenContent(node, &src);
        if (!err) err = CopySparse(src.get(), file.get(), static_cast<off_t>(n->size), sync_);
        copied_data = true;
      } else {
        // Metadata only: the size is right, the content stays the object until a data write.
        std::string digest = object->str();
        if (::ftruncate(file.get(), static_cast<off_t>(n->size)) != 0 ||
            ::fsetxattr(file.get(), kObject, digest.data(), digest.size(), 0) != 0 ||
            ::fsetxattr(file.get(), kMetacopy, "", 0, 0) != 0) {
          err = errno;
        }
      }
      if (err) {
        ::unlinkat(work, tmp.c_str(), 0);
        return err;
      }
      break;
    }
    case S_IFLNK: {
      auto target = index_->SymlinkTarget(node);
      if (!target.ok()) return EIO;
      if (::symlinkat(std::string(*target).c_str(), work, tmp.c_str()) != 0) return errno;
      break;
    }
    default:
      if (::mknodat(work, tmp.c_str(), type | 0600, makedev(n->dev_major, n->dev_minor)) != 0) return errno;
  }
  auto fail = [&](int err) {
    RemoveTree(work, tmp);
    return err;
  };
  const std::string path = ProcPath(work) + "/" + tmp;
  if (::fchownat(work, tmp.c_str(), n->uid, n->gid, AT_SYMLINK_NOFOLLOW) != 0) return fail(errno);
  if (type != S_IFLNK && ::fchmodat(work, tmp.c_str(), n->mode & 07777, 0) != 0) return fail(errno);
  auto xattrs = index_->Xattrs(node);
  if (!xattrs.ok()) return fail(EIO);
  for (const auto& [xname, value] : *xattrs) {
    std::string stored = EscapeXattr(xname);
    if (::lsetxattr(path.c_str(), stored.c_str(), value.data(), value.size(), 0) != 0) return fail(errno);
  }
  if (lower_->stable_ids()) {
    std::string origin = std::to_string(node);
    if (::lsetxattr(path.c_str(), kOrigin, origin.data(), origin.size(), 0) != 0) return fail(errno);
  } else if (auto origin = type != S_IFDIR ? lower_->OverlayOrigin(node) : std::nullopt) {
    if (::lsetxattr(path.c_str(), kOverlayOrigin, origin->data(), origin->size(), 0) != 0) return fail(errno);
  }
  timespec times[2];
  times[0].tv_sec = times[1].tv_sec = n->mtime_sec;
  times[0].tv_nsec = times[1].tv_nsec = n->mtime_nsec;
  if (::utimensat(work, tmp.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) return fail(errno);
  // Copied data reaches the disk before the name does: otherwise, after a crash of the machine,
  // the rename could be on disk without the blocks (delayed allocation), and an empty or short
  // file would hide the lower content. Kernel overlayfs syncs here too (ovl_copy_up_file).
  // Metadata-only copies need no sync: the size, xattrs and attributes set above are journaled
  // ahead of the rename, so they are never lost without it.
  // (volatile / fsync=0 mounts promise nothing across a crash, as overlayfs' volatile.)
  if (sync_ && copied_data && ::fsync(file.get()) != 0) return fail(errno);
  // The copy appears complete or not at all; NOREPLACE guards against ever clobbering upper data.
  if (::renameat2(work, tmp.c_str(), parent_fd, name.c_str(), RENAME_NOREPLACE) != 0) {
    // Only an entry removed or replaced while still open is copied up onto a taken name. A
    // directory's name then holds a whiteout: ENOTDIR, as overlayfs' rename gives.
    const int err = errno;
    struct stat there;
    if (err == EEXIST && type == S_IFDIR && ::fstatat(parent_fd, name.c_str(), &there, AT_SYMLINK_NOFOLLOW) == 0 &&
        !S_ISDIR(there.st_mode)) {
      return fail(ENOTDIR);
    }
    return fail(err);
  }
  out->Reset(::openat(parent_fd, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  return out->valid() ? 0 : errno;
}

int UnionFs::CopyUp(Inode* inode, bool with_data) {
  if (inode->in_upper) {
    if (with_data && inode->metacopy) return FillData(inode);
    return 0;
  }
  Inode* parent = inode->parent;
  if (!parent) return EIO;
  if (int err = CopyUp(parent, false)) return err;
  int parent_fd;
  if (int err = UpperFd(parent, &parent_fd)) return err;
  UniqueFd fd;
  // Without an object to name, a copy must hold the data (directory layers).
  bool data = inode->type == S_IFREG && (with_data || !inode->object);
  auto copy = [&] { return MakeUpperCopy(parent_fd, inode->name, inode->lower, data, &fd); };
  if (int err = KeepingDirTimes(parent_fd, copy)) return err;
  if (inode->type != S_IFDIR) MarkImpure(parent_fd);
  if (int err = Adopt(inode, std::move(fd))) return err;
  if (inode->type == S_IFREG) {
    inode->metacopy = !data;
    inode->data_in_upper = data;
    auto n = index_->Node(inode->lower);
    if (lower_->shared_hardlinks() && n.ok() && n->nlink > 1) return CopyUpAliases(inode);
  }
  return 0;
}

// A file hardlinked in the lower view is one inode under several names; once one name is copied
// up, every other name must become a link to the same upper file, or the names would part.
int UnionFs::CopyUpAliases(Inode* inode) {
  std::vector<std::pair<uint32_t, std::string>> aliases;
  for (uint32_t d = 0; d < index_->node_count(); ++d) {
    auto n = index_->Node(d);
    if (!n.ok() || (n->mode & S_IFMT) != S_IFDIR) continue;
    for (uint32_t i = 0; i < n->child_count; ++i) {
      auto c = index_->Child(d, i);
      if (c.ok() && c->second == inode->lower) aliases.emplace_back(d, std::string(c->first));
    }
  }
  for (const auto& [dir_node, name] : aliases) {
    // Walk the union along the alias' lower path; skip it if anything on the way was renamed,
    // replaced or deleted (the alias is then not where the lower view has it).
    std::string path = lower_->Path(dir_node);
    UniqueFd cur(::dup(upper_root_.get()));
    uint32_t lower = layerstore::RootfsIndex::kRoot;
    bool reachable = true;
    size_t pos = 0;
    while (reachable && pos < path.size()) {
      size_t end = path.find('/', pos);
      if (end == std::string::npos) end = path.size();
      if (end > pos) {
        std::string comp = path.substr(pos, end - pos);
        auto child = index_->Lookup(lower, comp);
        if (!child) return EIO;
        lower = *child;
        UniqueFd next(::openat(cur.get(), comp.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
        if (next) {
          struct stat st;
          std::string p = ProcPath(next.get());
          if (::fstatat(next.get(), "", &st, AT_EMPTY_PATH) != 0 || !S_ISDIR(st.st_mode) ||
              ReadXattr(p, kOpaque, false) || ReadXattr(p, kRedirect, false)) {
            reachable = false;
          }
        } else if (errno == ENOENT) {
          auto copy = [&] { return MakeUpperCopy(cur.get(), comp, lower, false, &next); };
          if (int err = KeepingDirTimes(cur.get(), copy)) return err;
          if (Inode* known = Get(uint64_t{lower} + 1); known && !known->in_upper) {
            if (int err = Adopt(known, UniqueFd(::dup(next.get())))) return err;
          }
        } else {
          return errno;
        }
        cur = std::move(next);
      }
      pos = end + 1;
    }
    if (!reachable) {
      // The alias' directory may have been renamed: it shows the same lower directory elsewhere.
      if (int err = MovedLowerDir(dir_node, &cur)) return err;
      if (!cur) continue;  // deleted, or replaced: the alias is gone from the view
    }
    struct stat st;
    if (::fstatat(cur.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) continue;  // already there, or deleted
    int fd;
    if (int err = UpperFd(inode, &fd)) return err;
    auto link = [&] {
      return ::linkat(AT_FDCWD, ProcPath(fd).c_str(), cur.get(), name.c_str(), AT_SYMLINK_FOLLOW) == 0 ? 0 : errno;
    };
    if (int err = KeepingDirTimes(cur.get(), link)) return err;
  }
  return 0;
}

// The lower directory an upper directory (its xattrs at `path`) merges, `lower_here` being what
// the lower view has at its position and `parent_lower` the lower directory its parent merges:
// none when it is opaque, the redirect's target when it has one (an absolute path, or, as kernel
// overlayfs writes for a rename within one directory, another name in the parent's lower
// directory), else the lower directory there.
uint32_t UnionFs::MergedLowerDir(const std::string& path, uint32_t lower_here, uint32_t parent_lower) {
  if (ReadXattr(path, kOpaque, false) == "y") return kNoNode;
  if (auto redirect = ReadXattr(path, kRedirect, false)) {
    std::optional<uint32_t> target = StartsWith(*redirect, "/")   ? LowerLookupPath(*redirect)
                                     : parent_lower != kNoNode ? index_->Lookup(parent_lower, *redirect)
                                                               : std::nullopt;
    return target && lower_->Type(*target) == S_IFDIR ? *target : kNoNode;
  }
  return lower_here != kNoNode && lower_->Type(lower_here) == S_IFDIR ? lower_here : kNoNode;
}

// The upper directory that merges the lower directory `dir_node` away from its own path (a lower
// directory renamed: moved by reference with a redirect), or no fd when none does. Asked only for
// the aliases of a hardlinked file that the walk along their lower path cannot reach, so rarely:
// a known inode answers at once; else the upper tree is walked, each directory's lower directory
// found as Find finds it.
int UnionFs::MovedLowerDir(uint32_t dir_node, UniqueFd* out) {
  out->Reset();
  for (auto& [id, known] : inodes_) {
    // (A held directory has lost its name: removed, or renamed over.)
    if (known->type != S_IFDIR || known->lower_dir != dir_node || known->held) continue;
    if (int err = CopyUp(known.get(), false)) return err;
    int fd;
    if (int err = UpperFd(known.get(), &fd)) return err;
    out->Reset(::dup(fd));
    return *out ? 0 : errno;
  }
  struct Dir {
    std::string path;    // in the upper tree ("" for its root)
    uint32_t lower_dir;  // the lower directory it merges, or kNoNode
  };
  // By path, not by fd, so that a wide upper tree costs no more descriptors than one level.
  std::vector<Dir> unvisited{{std::string(), Get(FUSE_ROOT_ID)->lower_dir}};
  while (!unvisited.empty()) {
    Dir dir = std::move(unvisited.back());
    unvisited.pop_back();
    const char* at = dir.path.empty() ? "." : dir.path.c_str();
    UniqueFd fd(::openat(upper_root_.get(), at, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) continue;  // gone meanwhile, or not a directory after all
    std::unique_ptr<DIR, DirCloser> listing(::fdopendir(fd.get()));
    if (!listing) return errno;
    fd.Release();
    while (dirent* e = ::readdir(listing.get())) {
      if ((e->d_type != DT_DIR && e->d_type != DT_UNKNOWN) || std::strcmp(e->d_name, ".") == 0 ||
          std::strcmp(e->d_name, "..") == 0) {
        continue;
      }
      UniqueFd child(::openat(::dirfd(listing.get()), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!child) continue;  // not a directory
      const uint32_t lower_here =
          dir.lower_dir != kNoNode ? index_->Lookup(dir.lower_dir, e->d_name).value_or(kNoNode) : kNoNode;
      const uint32_t lower_dir = MergedLowerDir(ProcPath(child.get()), lower_here, dir.lower_dir);
      if (lower_dir == dir_node) {
        *out = std::move(child);
        return 0;
      }
      unvisited.push_back({dir.path.empty() ? std::string(e->d_name) : dir.path + "/" + e->d_name, lower_dir});
    }
  }
  return 0;
}

int UnionFs::FillData(Inode* inode) {
  int upper;
  if (int err = UpperFd(inode, &upper)) return err;
  UniqueFd fd(::open(ProcPath(upper).c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return errno;
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return errno;
  UniqueFd src;
  if (int err = inode->object ? lower_->OpenObject(*inode->object, &src) : lower_->OpenContent(inode->data_lower, &src)) {
    return err;
  }
  struct stat os;
  if (::fstat(src.get(), &os) != 0) return errno;
  // The upper file is at least as long as the object (a metacopy is truncated only by filling
  // it in first); what lies past the object's end was written there and stays, and so do the
  // blocks that override the object. (Without overrides, a block the object ends in may hold
  // zeros below the end in the upper file, written there by an append: the object goes over them.)
  const off_t end = std::min(st.st_size, os.st_size);
  int err = inode->overrides ? CopyIntoHoles(src.get(), fd.get(), end, sync_)
                             : CopySparseRange(src.get(), fd.get(), 0, end, sync_);
  if (err) return err;
  // Filling in the data is no change of the file: it keeps its times (the write that asked for the
  // fill sets them itself, if it writes at all; an open for writing alone must not).
  const timespec times[2] = {st.st_atim, st.st_mtim};
  if (::futimens(fd.get(), times) != 0) return errno;
  // The markers go last, once the data is on disk: until then the content is still read from the
  // object, so neither an interrupted fill nor a crash of the machine shows a half-filled file.
  // (volatile / fsync=0 mounts promise nothing across a crash.)
  if (sync_ && ::fdatasync(fd.get()) != 0) return errno;
  return EndMetacopy(inode, fd.get());
}

// --- namespace changes -------------------------------------------------------------------------

int UnionFs::ReplaceWithWhiteout(int parent_fd, const std::string& name, bool is_dir) {
  const std::string tmp = TempName();
  if (::mknodat(work_.get(), tmp.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0) return errno;
  // Swap atomically: the name never stops hiding the lower entry.
  if (::renameat2(work_.get(), tmp.c_str(), parent_fd, name.c_str(), RENAME_EXCHANGE) != 0) {
    int err = errno;
    ::unlinkat(work_.get(), tmp.c_str(), 0);
    return err;
  }
  (void)is_dir;
  return RemoveTree(work_.get(), tmp);
}

int UnionFs::RemoveUpper(int parent_fd, const std::string& name, bool is_dir) {
  if (!is_dir) return ::unlinkat(parent_fd, name.c_str(), 0) == 0 ? 0 : errno;
  // Move it out of sight first, so a crash mid-removal leaves nothing half-deleted in view.
  const std::string tmp = TempName();
  if (::renameat(parent_fd, name.c_str(), work_.get(), tmp.c_str()) != 0) return errno;
  return RemoveTree(work_.get(), tmp);
}

int UnionFs::ListUnion(Inode* dir, std::vector<DirHandle::Item>* items) {
  std::set<std::string> hidden;
  if (dir->in_upper) {
    int dir_fd;
    if (int err = UpperFd(dir, &dir_fd)) return err;
    int fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno;
    DIR* d = ::fdopendir(fd);
    if (!d) {
      int err = errno;
      ::close(fd);
      return err;
    }
    while (dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      mode_t type = DTTOIF(e->d_type);
      if (e->d_type == DT_CHR || e->d_type == DT_UNKNOWN) {
        struct stat st;
        if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        type = st.st_mode & S_IFMT;
        if (IsWhiteout(st)) {
          hidden.insert(e->d_name);
          continue;
        }
      }
      hidden.insert(e->d_name);
      items->push_back({e->d_name, type});
    }
    ::closedir(d);
  }
  if (dir->lower_dir != kNoNode) {
    const uint32_t count = lower_->ChildCount(dir->lower_dir);
    for (uint32_t i = 0; i < count; ++i) {
      auto c = index_->Child(dir->lower_dir, i);
      if (!c.ok()) return EIO;
      if (hidden.count(std::string(c->first))) continue;
      items->push_back({std::string(c->first), lower_->Type(c->second)});
    }
  }
  return 0;
}

int UnionFs::IsUnionEmpty(Inode* dir, bool* empty) {
  std::vector<DirHandle::Item> items;
  if (int err = ListUnion(dir, &items)) return err;
  *empty = items.empty();
  return 0;
}

int UnionFs::InstallNew(Inode* parent, const char* name, const Caller& caller, mode_t mode,
                        const std::function<int(int, const std::string&)>& make, EntryOut* out) {
  Found f;
  int err = Resolve(parent, name, &f);
  if (err == 0) return EEXIST;
  if (err != ENOENT) return err;
  if (int e = CopyUp(parent, false)) return e;
  int parent_fd;
  if (int e = UpperFd(parent, &parent_fd)) return e;
  struct stat pst;
  if (int e = StatOf(parent, &pst)) return e;
  const std::string tmp = TempName();
  if (int e = make(work_.get(), tmp)) return e;
  auto fail = [&](int e) {
    RemoveTree(work_.get(), tmp);
    return e;
  };
  // BSD group semantics of a setgid directory: new entries take its group, new dirs its bit.
  gid_t gid = (pst.st_mode & S_ISGID) ? pst.st_gid : caller.gid;
  if (::fchownat(work_.get(), tmp.c_str(), caller.uid, gid, AT_SYMLINK_NOFOLLOW) != 0) return fail(errno);
  const mode_t type = mode & S_IFMT;
  if (type != S_IFLNK) {
    mode_t perms = mode & 07777;
    if (type == S_IFDIR && (pst.st_mode & S_ISGID)) perms |= S_ISGID;
    if (::fchmodat(work_.get(), tmp.c_str(), perms, 0) != 0) return fail(errno);
  }
  if (type == S_IFDIR && f.lower_here != kNoNode) {
    // A directory made where the lower view had one (deleted): nothing of it may show through.
    if (lower_->Type(f.lower_here) == S_IFDIR &&
        ::setxattr((ProcPath(work_.get()) + "/" + tmp).c_str(), kOpaque, "y", 1, 0) != 0) {
      return fail(errno);
    }
  }
  if (!f.whiteout) {
    if (::renameat2(work_.get(), tmp.c_str(), parent_fd, name, RENAME_NOREPLACE) != 0) return fail(errno);
  } else {
    // Replace the whiteout in one step; a directory cannot be renamed over a device, so swap the
    // two and remove the whiteout afterwards.
    if (::renameat2(work_.get(), tmp.c_str(), parent_fd, name, RENAME_EXCHANGE) != 0) return fail(errno);
    if (::unlinkat(work_.get(), tmp.c_str(), 0) != 0) return errno;
  }
  Found made;
  if (int e = Resolve(parent, name, &made)) return e;
  Inode* inode = Intern(made, parent, name);
  out->nodeid = inode->nodeid;
  return StatOf(inode, &out->attr);
}

int UnionFs::MkNod(uint64_t parent, const char* name, mode_t mode, dev_t rdev, const Caller& caller, EntryOut* out) {
  // A 0:0 character device would read back as a whiteout: refused, as kernel overlayfs does.
  if (S_ISCHR(mode) && rdev == makedev(0, 0)) return EPERM;
  Locked lock(this);
  Inode* dir = Get(parent);
  if (!dir) return ESTALE;
  return InstallNew(dir, name, caller, mode, [&](int work, const std::string& tmp) {
    return ::mknodat(work, tmp.c_str(), (mode & S_IFMT) | 0600, rdev) == 0 ? 0 : errno;
  }, out);
}

int UnionFs::MkDir(uint64_t parent, const char* name, mode_t mode, const Caller& caller, EntryOut* out) {
  Locked lock(this);
  Inode* dir = Get(parent);
  if (!dir) return ESTALE;
  return InstallNew(dir, name, caller, S_IFDIR | (mode & 07777), [&](int work, const std::string& tmp) {
    return ::mkdirat(work, tmp.c_str(), 0700) == 0 ? 0 : errno;
  }, out);
}

int UnionFs::Symlink(const char* target, uint64_t parent, const char* name, const Caller& caller, EntryOut* out) {
  Locked lock(this);
  Inode* dir = Get(parent);
  if (!dir) return ESTALE;
  return InstallNew(dir, name, caller, S_IFLNK | 0777, [&](int work, const std::string& tmp) {
    return ::symlinkat(target, work, tmp.c_str()) == 0 ? 0 : errno;
  }, out);
}

// A new file at its name, complete in one step: created there with O_EXCL when it comes out with
// its final owner and mode by itself (the caller is this daemon's user, and the umask takes
// nothing from the mode), else made unnamed with O_TMPFILE, given its owner and mode, and linked
// in. Either way no work/ entry and no rename. EEXIST: the upper has an entry or a whiteout at
// the name; EOPNOTSUPP: no O_TMPFILE on this filesystem; nothing was made on either.
// REQUIRES: dir is in upper.
int UnionFs::CreateAtName(Inode* dir, const char* name, mode_t perms, int flags, const Caller& caller,
                          EntryOut* out, std::unique_ptr<FileHandle>* fh) {
  int dir_fd;
  if (int err = UpperFd(dir, &dir_fd)) return err;
  const int open_flags = (flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_NOFOLLOW | O_TRUNC)) | O_CLOEXEC;
  UniqueFd file;
  if (caller.uid == uid_ && caller.gid == gid_ && (perms & umask_) == 0) {
    // Its group is this daemon's, or that of a setgid directory: what InstallNew gives too.
    file.Reset(::openat(dir_fd, name, open_flags | O_CREAT | O_EXCL, perms));
    if (!file) return errno;
  } else {
    struct stat pst;
    if (int err = StatOf(dir, &pst)) return err;
    UniqueFd unnamed(::openat(dir_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, perms));
    if (!unnamed) return errno;
    const gid_t gid = (pst.st_mode & S_ISGID) ? pst.st_gid : caller.gid;
    if (::fchown(unnamed.get(), caller.uid, gid) != 0 || ::fchmod(unnamed.get(), perms) != 0) return errno;
    const std::string path = ProcPath(unnamed.get());
    if (::linkat(AT_FDCWD, path.c_str(), dir_fd, name, AT_SYMLINK_FOLLOW) != 0) return errno;
    file.Reset(::open(path.c_str(), open_flags));  // with the caller's flags
    if (!file) return errno;
  }
  // No O_PATH fd for the fd cache yet: most new files are written and closed through their
  // handle and never need one, and opening it (and, past the cache's bound, closing another)
  // cost a path walk and two more system calls per file.
  Found made;
  if (::fstat(file.get(), &made.upper_stat) != 0) return errno;
  // A default ACL on the directory sets the mode instead of the umask: put it right.
  if ((made.upper_stat.st_mode & 07777) != perms) {
    if (::fchmod(file.get(), perms) != 0) return errno;
    made.upper_stat.st_mode = (made.upper_stat.st_mode & S_IFMT) | perms;
  }
  made.upper_unopened = true;
  made.type = S_IFREG;
  made.nodeid = kUpperBase + made.upper_stat.st_ino;
  Inode* inode = Intern(made, dir, name);
  inode->no_capability = true;
  out->nodeid = inode->nodeid;
  out->attr = made.upper_stat;
  if (lower_->stable_ids()) out->attr.st_ino = inode->nodeid;
  policy_.Present(&out->attr);
  auto handle = std::make_unique<FileHandle>();
  handle->inode_ = inode;
  handle->fd_ = std::move(file);
  *fh = std::move(handle);
  return 0;
}

int UnionFs::Create(uint64_t parent, const char* name, mode_t mode, int flags, const Caller& caller, EntryOut* out,
                    std::unique_ptr<FileHandle>* fh) {
  Locked lock(this);
  Inode* dir = Get(parent);
  if (!dir) return ESTALE;
  if (std::strlen(name) > 255) return ENAMETOOLONG;
  if (dir->type != S_IFDIR) return ENOTDIR;
  // Where the lower view has nothing at the name there is no whiteout to replace, so the file is
  // made at its name directly. EEXIST there, a whiteout left where the lower view no longer has
  // anything, and filesystems without O_TMPFILE take the way through work/ below.
  if (dir->lower_dir == kNoNode || !index_->Lookup(dir->lower_dir, name)) {
    if (int err = CopyUp(dir, false)) return err;
    int err = CreateAtName(dir, name, mode & 07777, flags, caller, out, fh);
    if (err != EEXIST && err != EOPNOTSUPP) return err;
  }
  int err = InstallNew(dir, name, caller, S_IFREG | (mode & 07777), [&](int work, const std::string& tmp) {
    int fd = ::openat(work, tmp.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) return errno;
    ::close(fd);
    return 0;
  }, out);
  if (err) return err;
  Inode* inode = Get(out->nodeid);
  inode->no_capability = true;
  auto handle = std::make_unique<FileHandle>();
  handle->inode_ = inode;
  int upper;
  err = UpperFd(inode, &upper);
  if (!err) {
    handle->fd_.Reset(::open(ProcPath(upper).c_str(),
                             (flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_NOFOLLOW | O_TRUNC)) | O_CLOEXEC));
    if (!handle->fd_) err = errno;
  }
  if (err) {
    Unref(inode, 1);
    return err;
  }
  *fh = std::move(handle);
  return 0;
}

int UnionFs::Link(uint64_t nodeid, uint64_t new_parent, const char* new_name, EntryOut* out) {
  Locked lock(this);
  Inode* inode = Get(nodeid);
  Inode* dir = Get(new_parent);
  if (!inode || !dir) return ESTALE;
  if (inode->type == S_IFDIR) return EPERM;
  Found f;
  int err = Resolve(dir, new_name, &f);
  if (err == 0) return EEXIST;
  if (err != ENOENT) return err;
  if (int e = CopyUp(inode, false)) return e;
  if (int e = CopyUp(dir, false)) return e;
  int inode_fd, dir_fd;
  if (int e = UpperFd(inode, &inode_fd)) return e;
  if (int e = UpperFd(dir, &dir_fd)) return e;
  const std::string source = ProcPath(inode_fd);
  if (f.whiteout) {
    const std::string tmp = TempName();
    if (::linkat(AT_FDCWD, source.c_str(), work_.get(), tmp.c_str(), AT_SYMLINK_FOLLOW) != 0) return errno;
    if (::renameat(work_.get(), tmp.c_str(), dir_fd, new_name) != 0) {
      int e = errno;
      ::unlinkat(work_.get(), tmp.c_str(), 0);
      return e;
    }
  } else if (::linkat(AT_FDCWD, source.c_str(), dir_fd, new_name, AT_SYMLINK_FOLLOW) != 0) {
    return errno;
  }
  ++inode->nlookup;
  out->nodeid = inode->nodeid;
  return StatOf(inode, &out->attr);
}

int UnionFs::Unlink(uint64_t parent, const char* name) {
  Locked lock(this);
  Inode* dir = Get(parent);
  if (!dir) return ESTALE;
  Found f;
  if (int err = Resolve(dir, name, &f)) return err;
  if (f.type == S_IFDIR) return EISDIR;
  if (!f.upper && f.type == S_IFREG && lower_->shared_hardlinks()) {
    auto n = index_->Node(f.lower);
    if (n.ok() && n->nlink > 1) {
      // Copy the other names up first, so their link count drops by one as it should.
      Inode* inode = Intern(f, dir, name);
      int err = CopyUp(inode, false);
      Unref(inode, 1);
      if (err) return err;
      if (int e = CopyUp(dir, false)) return e;
      int dir_fd;
      if (int e = UpperFd(dir, &dir_fd)) return e;
      struct stat st;
      if (::fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (int e = HoldIfKnown(f.nodeid)) return e;
        return ReplaceWithWhiteout(dir_fd, name, false);
      }
      // This name was not reachable as an alias (a directory on its way was renamed).
    }
  }
  if (int err = CopyUp(dir, false)) return err;
  int dir_fd;
  if (int err = UpperFd(dir, &dir_fd)) return err;
  if (f.upper) {
    if (int err = HoldIfKnown(f.nodeid)) return err;
    if (f.lower_here != kNoNode) return ReplaceWithWhiteout(dir_fd, name, false);
    return ::unlinkat(dir_fd, name, 0) == 0 ? 0 : errno;
  }
  return ::mknodat(dir_fd, name, S_IFCHR | 0, makedev(0, 0)) == 0 ? 0 : errno;
}

int UnionFs::RmDir(uint64_t parent, const char* name) {
  Locked lock(this);
  Inode* dir = Get(parent);
  if (!dir) return ESTALE;
  Found f;
  if (int err = Resolve(dir, name, &f)) return err;
  if (f.type != S_IFDIR) return ENOTDIR;
  Inode* victim = Intern(f, dir, name);
  bool empty = false;
  int err = IsUnionEmpty(victim, &empty);
  bool in_upper = victim->in_upper;
  Unref(victim, 1);
  if (err) return err;
  if (!empty) return ENOTEMPTY;
  if (int e = CopyUp(dir, false)) return e;
  int dir_fd;
  if (int e = UpperFd(dir, &dir_fd)) return e;
  if (in_upper) {
    if (int e = HoldIfKnown(f.nodeid)) return e;
    if (f.lower_here != kNoNode) return ReplaceWithWhiteout(dir_fd, name, true);
    return RemoveUpper(dir_fd, name, true);
  }
  return ::mknodat(dir_fd, name, S_IFCHR | 0, makedev(0, 0)) == 0 ? 0 : errno;
}

int UnionFs::Rename(uint64_t parent, const char* name, uint64_t new_parent, const char* new_name, unsigned flags) {
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) return EINVAL;
  Locked lock(this);
  Inode* dir = Get(parent);
  Inode* new_dir = Get(new_parent);
  if (!dir || !new_dir) return ESTALE;
  Found fs, ft;
  if (int err = Resolve(dir, name, &fs)) return err;
  int terr = Resolve(new_dir, new_name, &ft);
  if (terr && terr != ENOENT) return terr;
  const bool target_exists = terr == 0;
  if ((flags & RENAME_NOREPLACE) && target_exists) return EEXIST;
  if ((flags & RENAME_EXCHANGE) && !target_exists) return ENOENT;
  if (target_exists && ft.nodeid == fs.nodeid) return 0;  // two names of one file: POSIX says do nothing
  Inode* source = Intern(fs, dir, name);
  Inode* target = target_exists ? Intern(ft, new_dir, new_name) : nullptr;
  auto done = [&](int err) {
    Unref(source, 1);
    if (target) Unref(target, 1);
    return err;
  };
  if (target && !(flags & RENAME_EXCHANGE)) {
    if (source->type == S_IFDIR && target->type != S_IFDIR) return done(ENOTDIR);
    if (source->type != S_IFDIR && target->type == S_IFDIR) return done(EISDIR);
    if (target->type == S_IFDIR) {
      bool empty = false;
      if (int err = IsUnionEmpty(target, &empty)) return done(err);
      if (!empty) return done(ENOTEMPTY);
    }
    // The target's upper name is about to be removed or replaced.
    if (int err = Hold(target)) return done(err);
    if (target->type == S_IFDIR && target->in_upper) {
      // Its upper copy may still hold whiteouts, which would make the rename fail.
      // Whatever the lower view has at the new name stays hidden: the source carries a redirect
      // (its lower part comes from elsewhere) or is made opaque below.
      int new_dir_fd;
      if (int err = UpperFd(new_dir, &new_dir_fd)) return done(err);
      if (int err = RemoveUpper(new_dir_fd, new_name, true)) return done(err);
    }
  }
  if (int err = CopyUp(dir, false)) return done(err);
  if (int err = CopyUp(new_dir, false)) return done(err);
  int dir_fd, new_dir_fd;
  if (int err = UpperFd(dir, &dir_fd)) return done(err);
  if (int err = UpperFd(new_dir, &new_dir_fd)) return done(err);
  // Directories that carry lower content move by reference: the upper copy records where its
  // lower part lives (overlayfs' redirect), so nothing below is copied.
  auto prepare = [&](Inode* inode) -> int {
    if (int err = CopyUp(inode, false)) return err;
    if (inode->type == S_IFDIR && inode->lower_dir != kNoNode) {
      int fd;
      if (int err = UpperFd(inode, &fd)) return err;
      std::string redirect = lower_->Path(inode->lower_dir);
      if (::setxattr(ProcPath(fd).c_str(), kRedirect, redirect.data(), redirect.size(), 0) != 0) return errno;
    }
    return 0;
  };
  // A directory without lower content that lands where the lower view has a directory is made
  // opaque, or that directory's entries would show through it.
  auto hide_lower_at_destination = [&](Inode* inode, uint32_t lower_there) -> int {
    if (inode->type != S_IFDIR || inode->lower_dir != kNoNode || lower_there == kNoNode) return 0;
    auto n = index_->Node(lower_there);
    if (!n.ok() || (n->mode & S_IFMT) != S_IFDIR) return 0;
    int fd;
    if (int err = UpperFd(inode, &fd)) return err;
    return ::setxattr(ProcPath(fd).c_str(), kOpaque, "y", 1, 0) == 0 ? 0 : errno;
  };
  if (int err = prepare(source)) return done(err);
  if (int err = hide_lower_at_destination(source, ft.lower_here)) return done(err);
  if (flags & RENAME_EXCHANGE) {
    if (int err = prepare(target)) return done(err);
    if (int err = hide_lower_at_destination(target, fs.lower_here)) return done(err);
    if (::renameat2(dir_fd, name, new_dir_fd, new_name, RENAME_EXCHANGE) != 0) return done(errno);
  } else {
    // Where the lower view has something at the old name, a whiteout must take the file's place
    // in the same step.
    unsigned rflags = fs.lower_here != kNoNode ? RENAME_WHITEOUT : 0;
    if (ft.whiteout) {
      // Onto a whiteout: swap the two (a directory cannot replace a device), then the whiteout,
      // now at the old name, stays only if the lower view has something there.
      if (::renameat2(dir_fd, name, new_dir_fd, new_name, RENAME_EXCHANGE) != 0) return done(errno);
      if (fs.lower_here == kNoNode && ::unlinkat(dir_fd, name, 0) != 0) return done(errno);
    } else if (::renameat2(dir_fd, name, new_dir_fd, new_name, rflags) != 0) {
      if (errno != EINVAL || rflags == 0) return done(errno);
      if (::renameat(dir_fd, name, new_dir_fd, new_name) != 0) return done(errno);
      if (::mknodat(dir_fd, name, S_IFCHR | 0, makedev(0, 0)) != 0) return done(errno);
    }
  }
  auto move = [](Inode* inode, Inode* to, const char* to_name) {
    if (inode->parent != to) {
      --inode->parent->pins;
      ++to->pins;
      inode->parent = to;
    }
    inode->name = to_name;
  };
  if (flags & RENAME_EXCHANGE) move(target, dir, name);
  move(source, new_dir, new_name);
  // A copy's directory is marked at its copy-up; one it moves to, here.
  if (dir != new_dir) {
    if (source->type != S_IFDIR && source->lower != kNoNode) MarkImpure(new_dir_fd);
    if ((flags & RENAME_EXCHANGE) && target->type != S_IFDIR && target->lower != kNoNode) MarkImpure(dir_fd);
  }
  return done(0);
}

// --- attributes and data -----------------------------------------------------------------------

int UnionFs::SetAttr(uint64_t nodeid, const struct stat& in, int to_set, struct stat* out) {
  Locked lock(this);
  Inode* inode = Get(nodeid);
  if (!inode) return ESTALE;
  if (to_set & FUSE_SET_ATTR_SIZE) {
    if (inode->type != S_IFREG) return EISDIR;
    if (in.st_size == 0 && (!inode->in_upper || inode->metacopy)) {
      // Truncating to nothing needs none of the old content.
      if (int err = CopyUp(inode, false)) return err;
      int upper;
      if (int err = UpperFd(inode, &upper)) return err;
      UniqueFd fd(::open(ProcPath(upper).c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
      if (!fd) return errno;
      if (inode->metacopy) {
        if (int err = EndMetacopy(inode, fd.get())) return err;
      }
    } else {
      // Cutting into the object's bytes needs them in the upper file; a size at or past the
      // object's end leaves them to the object (a metadata-only copy), as an append does.
      bool keeps_object = false;
      if (inode->object && !inode->data_in_upper) {
        UniqueFd object;
        off_t object_size;
        if (int err = OpenObjectOf(inode, &object, &object_size)) return err;
        keeps_object = in.st_size >= object_size;
      }
      if (int err = CopyUp(inode, !keeps_object)) return err;
      int upper;
      if (int err = UpperFd(inode, &upper)) return err;
      if (::truncate(ProcPath(upper).c_str(), in.st_size) != 0) return errno;
    }
  } else if (int err = CopyUp(inode, false)) {
    return err;
  }
  int fd;
  if (int err = UpperFd(inode, &fd)) return err;
  if (to_set & FUSE_SET_ATTR_MODE) {
    if (::chmod(ProcPath(fd).c_str(), in.st_mode & 07777) != 0) return errno;
  }
  if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
    uid_t uid = (to_set & FUSE_SET_ATTR_UID) ? in.st_uid : static_cast<uid_t>(-1);
    gid_t gid = (to_set & FUSE_SET_ATTR_GID) ? in.st_gid : static_cast<gid_t>(-1);
    if (::fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return errno;
  }
  if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
    timespec times[2];
    times[0].tv_nsec = times[1].tv_nsec = UTIME_OMIT;
    if (to_set & FUSE_SET_ATTR_ATIME) times[0] = (to_set & FUSE_SET_ATTR_ATIME_NOW) ? timespec{0, UTIME_NOW} : in.st_atim;
    if (to_set & FUSE_SET_ATTR_MTIME) times[1] = (to_set & FUSE_SET_ATTR_MTIME_NOW) ? timespec{0, UTIME_NOW} : in.st_mtim;
    // Through the /proc link, followed: the entry itself, a symlink too (see UpperXattrPath).
    if (::utimensat(AT_FDCWD, ProcPath(fd).c_str(), times, 0) != 0) return errno;
  }
  return StatOf(inode, out);
}

int UnionFs::Open(uint64_t nodeid, int flags, std::unique_ptr<FileHandle>* fh) {
  Locked lock(this);
  Inode* inode = Get(nodeid);
  if (!inode) return ESTALE;
  auto handle = std::make_unique<FileHandle>();
  handle->inode_ = inode;
  const bool writes = (flags & O_ACCMODE) != O_RDONLY;
  const int open_flags = (flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_NOFOLLOW)) | O_CLOEXEC;
  if (writes || (flags & O_TRUNC)) {
    // A file about to be emptied needs none of its old content copied.
    if ((flags & O_TRUNC) && (!inode->in_upper || inode->metacopy)) {
      if (int err = CopyUp(inode, false)) return err;
      if (inode->metacopy) {
        int upper;
        if (int err = UpperFd(inode, &upper)) return err;
        UniqueFd fd(::open(ProcPath(upper).c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
        if (!fd) return errno;
        if (int err = EndMetacopy(inode, fd.get())) return err;
      }
    } else if (inode->type == S_IFREG && inode->object && !inode->data_in_upper) {
      UniqueFd object;
      off_t object_size;
      if (int err = OpenObjectOf(inode, &object, &object_size)) return err;
      if (static_cast<uint64_t>(object_size) >= copy_at_open_below_) {
        // Writes past the object's end need none of its content (an append): the copy stays
        // metadata-only until a write lands below the end (WriteAt).
        if (int err = CopyUp(inode, false)) return err;
        handle->object_fd_ = std::move(object);
        handle->object_size_ = object_size;
        handle->spans_object_end_ = true;
      } else if (int err = CopyUp(inode, true)) {
        return err;
      }
    } else if (int err = CopyUp(inode, true)) {
      return err;
    }
    int upper;
    if (int err = UpperFd(inode, &upper)) return err;
    handle->fd_.Reset(::open(ProcPath(upper).c_str(), open_flags));
  } else if (inode->data_in_upper) {
    int upper;
    if (int err = UpperFd(inode, &upper)) return err;
    handle->fd_.Reset(::open(ProcPath(upper).c_str(), open_flags));
  } else if (inode->object) {
    if (int err = OpenObjectOf(inode, &handle->fd_, &handle->object_size_)) return err;
    handle->lower_content_ = true;
    if (inode->metacopy) {
      off_t upper_size;
      if (int err = UpperSize(inode, &upper_size)) return err;
      handle->spans_object_end_ = upper_size > handle->object_size_ || inode->overrides;
    }
  } else {
    int err = inode->data_lower != kNoNode ? lower_->OpenContent(inode->data_lower, &handle->fd_)
                                           : lower_->OpenContent(inode->lower, &handle->fd_);
    if (err) return err;
    handle->lower_content_ = true;
  }
  if (!handle->fd_) return errno;
  *fh = std::move(handle);
  return 0;
}

int UnionFs::ReadFd(FileHandle& fh) {
  if (!fh.lower_content_ || !fh.inode_->data_in_upper.load(std::memory_order_acquire)) return fh.fd();
  std::lock_guard lock(fh.mu_);
  if (fh.lower_content_) {
    Locked tree(this);
    int upper;
    UniqueFd fd(UpperFd(fh.inode_, &upper) == 0 ? ::open(ProcPath(upper).c_str(), O_RDONLY | O_CLOEXEC) : -1);
    if (fd) {
      fh.fd_ = std::move(fd);
      fh.lower_content_ = false;
    }
  }
  return fh.fd();
}

int UnionFs::EndMetacopy(Inode* inode, int upper_fd) {
  if (DropMetacopyMarkers(upper_fd) != 0) return errno;
  // data_in_upper first: a reader that sees metacopy cleared without the lock (PlanRead) must
  // also see the data in the upper file.
  inode->data_in_upper = true;
  inode->metacopy = false;
  inode->overrides = false;
  return 0;
}

int UnionFs::UpperSize(Inode* inode, off_t* size) {
  int upper;
  if (int err = UpperFd(inode, &upper)) return err;
  struct stat st;
  if (::fstatat(upper, "", &st, AT_EMPTY_PATH) != 0) return errno;
  *size = st.st_size;
  return 0;
}

int UnionFs::OpenObjectOf(Inode* inode, UniqueFd* fd, off_t* size) {
  if (int err = lower_->OpenObject(*inode->object, fd)) return err;
  struct stat st;
  if (::fstat(fd->get(), &st) != 0) return errno;
  *size = st.st_size;
  return 0;
}

int UnionFs::PlanRead(FileHandle& fh, off_t off, size_t size, ReadPlan* plan) {
  auto one = [&](int fd) {
    plan->fd = fd;
    return fd < 0 ? EBADF : 0;
  };
  Inode* inode = fh.inode_;
  if (fh.object_size_ < 0 || inode->data_in_upper.load(std::memory_order_acquire)) return one(ReadFd(fh));
  const int object = fh.object_fd();
  const off_t end = off + static_cast<off_t>(size);
  const bool overrides = inode->overrides.load(std::memory_order_acquire);
  if (end <= fh.object_size_ && !overrides) return one(object);
  // Past the object's end (every file's last read), or a copy with overrides. A file that is no
  // metadata-only copy has nothing there, or has become a whole upper file: no lock. (A fill
  // sets data_in_upper before it clears metacopy, so a cleared metacopy shows data_in_upper set.)
  if (!inode->metacopy.load(std::memory_order_acquire)) {
    return one(inode->data_in_upper.load(std::memory_order_acquire) ? ReadFd(fh) : object);
  }
  int upper = -1;
  {
    std::lock_guard lock(fh.mu_);
    if (!fh.upper_read_fd_) {
      Locked tree(this);
      if (!inode->data_in_upper) {
        // Past the object's end: nothing in a lower file; in a metacopy, what was written there.
        if (!inode->in_upper || !inode->metacopy) return one(object);
        int fd;
        if (int err = UpperFd(inode, &fd)) return err;
        fh.upper_read_fd_.Reset(::open(ProcPath(fd).c_str(), O_RDONLY | O_CLOEXEC));
        if (!fh.upper_read_fd_) return errno;
      }
    }
    upper = fh.upper_read_fd_.get();
  }
  if (upper < 0 || inode->data_in_upper.load(std::memory_order_acquire)) return one(ReadFd(fh));
  // A fill in progress copies into the upper file's holes what the object has there, so a read
  // that takes a piece from either side meanwhile gets the same bytes.
  const off_t below = std::min(end, fh.object_size_);
  if (off < below) {
    if (overrides) {
      if (int err = PieceTogether(object, upper, off, below, &plan->pieces)) return err;
    } else {
      plan->pieces.push_back({object, off, static_cast<size_t>(below - off)});
    }
  }
  if (end > fh.object_size_) {
    const off_t from = std::max(off, fh.object_size_);
    plan->pieces.push_back({upper, from, static_cast<size_t>(end - from)});
  }
  if (plan->pieces.size() == 1 && plan->pieces[0].pos == off) {
    plan->fd = plan->pieces[0].fd;
    plan->pieces.clear();
  }
  return 0;
}

ssize_t UnionFs::WriteAt(FileHandle& fh, off_t off, size_t len, const std::function<ssize_t(int fd)>& write) {
  if (fh.object_size_ < 0 || fh.inode_->data_in_upper.load(std::memory_order_acquire)) return write(fh.fd());
  // Under the lock, so that a fill in progress neither misses this write nor puts back the
  // file's times over it, and two writes never copy in the same block.
  Locked tree(this);
  Inode* inode = fh.inode_;
  const off_t object_end = fh.object_size_;
  if (inode->data_in_upper || len == 0) return write(fh.fd());
  // An append to a copy without overrides needs nothing of the object.
  if (!inode->overrides && off >= object_end) return write(fh.fd());
  const off_t block = OverrideBlock();
  if (block == 0) {
    if (off < object_end) {
      if (int err = FillData(inode)) return -err;
    }
    return write(fh.fd());
  }
  if (!fh.upper_rw_fd_) {
    int fd;
    if (int err = UpperFd(inode, &fd)) return -err;
    fh.upper_rw_fd_.Reset(::open(ProcPath(fd).c_str(), O_RDWR | O_CLOEXEC));
    if (!fh.upper_rw_fd_) return -errno;
  }
  const int rw = fh.upper_rw_fd_.get();
  if (!inode->overrides) {
    if (int err = StartOverrides(fh, rw, block)) return -err;
  }
  // The blocks at the write's edges that hold object bytes it does not cover: in the upper file
  // they would read as zeros around the write, so the object's bytes of them go in first. (A
  // block the object ends in holds upper bytes past the end, which stay as they are.)
  // (A hole of the object there stays one until the write lands: writing any byte of a block
  // allocates all of it, zeros where nothing was written, as the object reads there.)
  const off_t end = off + static_cast<off_t>(len);
  const off_t edges[2] = {off / block * block, (end - 1) / block * block};
  for (int i = 0; i < (edges[0] == edges[1] ? 1 : 2); ++i) {
    const off_t start = edges[i];
    if (start >= object_end) continue;
    const off_t stop = std::min(start + block, object_end);
    if (off <= start && end >= stop) continue;
    bool has = false;
    if (int err = HasDataAt(rw, start, &has)) return -err;
    if (has) continue;
    if (int err = CopySparseRange(fh.object_fd(), rw, start, stop, false)) return -err;
  }
  return write(fh.fd());
}

int UnionFs::AllocateAt(FileHandle& fh, off_t off, const std::function<int(int fd)>& allocate) {
  if (fh.object_size_ < 0 || fh.inode_->data_in_upper.load(std::memory_order_acquire)) return allocate(fh.fd());
  Locked tree(this);
  // An allocation, hole or zeroed range below the end changes what the upper file's data says
  // about the blocks there: the object's bytes go in first.
  if (!fh.inode_->data_in_upper && off < fh.object_size_) {
    if (int err = FillData(fh.inode_)) return err;
  }
  return allocate(fh.fd());
}

off_t UnionFs::OverrideBlock() {
  if (override_block_ >= 0) return override_block_;
  override_block_ = 0;
  // A file with one byte written far into a hole, synced so that the blocks are allocated as they
  // will be: the data extent SEEK_DATA and SEEK_HOLE then show around it is the unit.
  const std::string name = TempName();
  UniqueFd probe(::openat(work_.get(), name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!probe) return 0;
  ::unlinkat(work_.get(), name.c_str(), 0);
  constexpr off_t kAt = (4 << 20) + 4097;
  if (::ftruncate(probe.get(), 8 << 20) != 0 || ::pwrite(probe.get(), "x", 1, kAt) != 1 ||
      ::fdatasync(probe.get()) != 0) {
    return 0;
  }
  const off_t data = ::lseek(probe.get(), 0, SEEK_DATA);
  const off_t hole = data >= 0 ? ::lseek(probe.get(), data, SEEK_HOLE) : -1;
  const off_t unit = hole - data;
  // A filesystem that cannot tell holes reports data from 0.
  if (data <= 0 || data > kAt || hole <= kAt || (unit & (unit - 1)) != 0 || data % unit != 0 ||
      unit > kMaxOverrideBlock) {
    return 0;
  }
  override_block_ = unit;
  return unit;
}

int UnionFs::StartOverrides(FileHandle& fh, int rw, off_t block) {
  Inode* inode = fh.inode_;
  const off_t object_end = fh.object_size_;
  // An append made before overrides may have left zeros below the end in the block the object
  // ends in, which would now read as the file's bytes: the object's go there first, and reach
  // the disk before the marker does.
  const off_t last = object_end / block * block;
  bool has = false;
  if (last < object_end) {
    if (int err = HasDataAt(rw, last, &has)) return err;
  }
  if (has) {
    std::vector<char> want(static_cast<size_t>(object_end - last)), there(want.size());
    if (int err = PreadAll(fh.object_fd(), want.data(), want.size(), last)) return err;
    if (int err = PreadAll(rw, there.data(), there.size(), last)) return err;
    if (want != there) {
      if (int err = PwriteAll(rw, want.data(), want.size(), last)) return err;
      if (sync_ && ::fdatasync(rw) != 0) return errno;
    }
  }
  const std::string value = inode->object->str() + std::string(kOverridesSuffix);
  if (::fsetxattr(rw, kObject, value.data(), value.size(), 0) != 0) return errno;
  inode->overrides.store(true, std::memory_order_release);
  return 0;
}

int UnionFs::Seek(FileHandle& fh, off_t off, int whence, off_t* result) {
  Inode* inode = fh.inode_;
  int fd = -1;
  if (fh.object_size_ >= 0 && !inode->data_in_upper.load(std::memory_order_acquire)) {
    Locked tree(this);
    if (!inode->data_in_upper) {
      if (inode->in_upper && inode->metacopy) return SeekPieced(fh, off, whence, result);
      fd = fh.object_fd();
    }
  }
  if (fd < 0) fd = ReadFd(fh);
  const off_t at = ::lseek(fd, off, whence);
  if (at < 0) return errno;
  *result = at;
  return 0;
}

int UnionFs::SeekPieced(FileHandle& fh, off_t off, int whence, off_t* result) {
  int fd;
  if (int err = UpperFd(fh.inode_, &fd)) return err;
  UniqueFd upper(::open(ProcPath(fd).c_str(), O_RDONLY | O_CLOEXEC));
  if (!upper) return errno;
  struct stat st;
  if (::fstat(upper.get(), &st) != 0) return errno;
  const off_t size = st.st_size;  // never shorter than the object
  const off_t object_end = fh.object_size_;
  const int object = fh.object_fd();
  if (off < 0) return EINVAL;
  if (off >= size) return ENXIO;
  // Where the upper file's data counts: everywhere with overrides, else past the object's end.
  const off_t upper_from = fh.inode_->overrides ? 0 : object_end;
  // Data wherever either side has some (a superset of the union's, which lseek allows: a hole
  // may always be reported as data).
  if (whence == SEEK_DATA) {
    off_t first = size;
    auto consider = [&](int file, off_t from) {
      const off_t data = ::lseek(file, from, SEEK_DATA);
      if (data < 0) return errno == ENXIO ? 0 : errno;
      first = std::min(first, data);
      return 0;
    };
    if (off < object_end) {
      if (int err = consider(object, off)) return err;
    }
    if (int err = consider(upper.get(), std::max(off, upper_from))) return err;
    if (first >= size) return ENXIO;
    *result = first;
    return 0;
  }
  if (whence != SEEK_HOLE) return EINVAL;
  off_t pos = off;
  while (pos < size) {
    const off_t was = pos;
    if (pos < object_end) {
      pos = ::lseek(object, pos, SEEK_HOLE);  // the object's end at the latest
      if (pos < 0) return errno;
    }
    if (pos >= upper_from && pos < size) {
      pos = ::lseek(upper.get(), pos, SEEK_HOLE);
      if (pos < 0) return errno;
    }
    if (pos == was) break;
  }
  *result = std::min(pos, size);
  return 0;
}

int UnionFs::OpenDir(uint64_t nodeid, std::unique_ptr<DirHandle>* dh) {
  Locked lock(this);
  Inode* inode = Get(nodeid);
  if (!inode) return ESTALE;
  if (inode->type != S_IFDIR) return ENOTDIR;
  auto handle = std::make_unique<DirHandle>();
  if (int err = ListUnion(inode, &handle->items)) return err;
  *dh = std::move(handle);
  return 0;
}

int UnionFs::Parent(uint64_t nodeid, uint64_t* parent) {
  Locked lock(this);
  Inode* inode = Get(nodeid);
  if (!inode) return ESTALE;
  *parent = inode->parent ? inode->parent->nodeid : FUSE_ROOT_ID;
  return 0;
}

int UnionFs::OpenForFsyncDir(uint64_t nodeid, UniqueFd* dir) {
  Locked lock(this);
  Inode* inode = Get(nodeid);
  if (!inode) return ESTALE;
  if (!inode->in_upper || !sync_) return 0;  // nothing of it was ever written, or nothing is promised
  int upper;
  if (int err = UpperFd(inode, &upper)) return err;
  *dir = UniqueFd(::open(ProcPath(upper).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  return *dir ? 0 : errno;
}

// --- xattrs ------------------------------------------------------------------------------------

int UnionFs::GetXattr(uint64_t nodeid, const char* name, std::string* value) {
  if (IsReservedXattr(name)) return ENODATA;
  Locked lock(this);
  Inode* inode = Get(nodeid);
  if (!inode) return ESTALE;
  if (!inode->in_upper) {
    auto xattrs = index_->Xattrs(inode->lower);
    if (!xattrs.ok()) return EIO;
    for (const auto& [n, v] : *xattrs) {
      if (n == name) {
        *value = std::string(v);
        return 0;
      }
    }
    return ENODATA;
  }
  const bool capability = std::strcmp(name, kCapabilityXattr) == 0;
  if (capability && inode->no_capability) return ENODATA;
  std::string path;
  if (int err = UpperXattrPath(inode, &path)) return err;
  int err = GetXattrValue(path, EscapeXattr(name).c_str(), false, value);
  if (capability && err == ENODATA) inode->no_capability = true;
  return err;
}

int UnionFs::ListXattr(uint64_t nodeid, std::string* names) {
  Locked lock(this);
  Inode* inode = Get(nodeid);
  if (!inode) return ESTALE;
  names->clear();
  if (!inode->in_upper) {
    auto xattrs = index_->Xattrs(inode->lower);
    if (!xattrs.ok()) return EIO;
    for (const auto& [n, v] : *xattrs) {
      names->append(n);
      names->push_back('\0');
    }
    return 0;
  }
  std::string path;
  if (int err = UpperXattrPath(inode, &path)) return err;
  std::string stored_names;
  if (int err = ListXattrNames(path, false, &stored_names)) return err;
  for (size_t pos = 0; pos < stored_names.size();) {
    std::string_view stored(stored_names.data() + pos);
    pos += stored.size() + 1;
    if (auto visible = UnescapeXattr(stored)) {
      names->append(*visible);
      names->push_back('\0');
    }
  }
  return 0;
}

int UnionFs::ChangeXattr(uint64_t nodeid, const char* removed, const std::function<int(const char*)>& change) {
  Locked lock(this);
  Inode* inode = Get(nodeid);
  if (!inode) return ESTALE;
  if (removed && !inode->in_upper) {
    // As kernel overlayfs: removing an xattr the lower entry does not have fails without copying
    // the entry up (which would cost a metadata copy, and a hardlinked file its shared inode).
    auto xattrs = index_->Xattrs(inode->lower);
    if (!xattrs.ok()) return EIO;
    if (std::none_of(xattrs->begin(), xattrs->end(), [&](const auto& x) { return x.first == removed; })) {
      return ENODATA;
    }
  }
  if (int err = CopyUp(inode, false)) return err;
  inode->no_capability = false;
  std::string path;
  if (int err = UpperXattrPath(inode, &path)) return err;
  return change(path.c_str()) == 0 ? 0 : errno;
}

int UnionFs::SetXattr(uint64_t nodeid, const char* name, const std::string& value, int flags) {
  if (IsReservedXattr(name)) return EPERM;
  const std::string stored = EscapeXattr(name);
  return ChangeXattr(nodeid, nullptr, [&](const char* path) {
    return ::setxattr(path, stored.c_str(), value.data(), value.size(), flags);
  });
}

int UnionFs::RemoveXattr(uint64_t nodeid, const char* name) {
  if (IsReservedXattr(name)) return ENODATA;
  const std::string stored = EscapeXattr(name);
  return ChangeXattr(nodeid, name, [&](const char* path) { return ::removexattr(path, stored.c_str()); });
}

int UnionFs::StatFs(struct statvfs* st) {
  if (::statvfs(upper_dir_.c_str(), st) != 0) return errno;
  st->f_namemax = 255;
  return 0;
}

}  // namespace layerfs
