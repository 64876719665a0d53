// UnionFs: a lower view (a store image's chain, or directory layers: see lower.h) plus a writable
// upper directory in overlayfs' on-disk format, as one tree; the logic of a container mount, in errno terms and
// free of fuse_req_t so tests can drive it without a kernel.
//
// Upper format (what kernel overlayfs writes, so tools that know overlay read it):
//   whiteout            character device 0:0 named as the deleted entry
//   opaque directory    xattr trusted.overlay.opaque = "y": nothing below shows through
//   renamed lower dir   xattr trusted.overlay.redirect = its absolute path in the lower view
//   metadata-only copy  xattr trusted.overlay.metacopy (empty) + trusted.strata.object =
//                       "sha256:<hex>": size and metadata in upper, content still the object;
//                       an upper file longer than the object holds what was written past the
//                       object's end there (an append), the rest of it being a hole
//                       (store lowers only: over directory layers every copy-up copies data).
//                       With the value "sha256:<hex>;overrides", whole blocks of the upper file
//                       below the object's end that hold data (SEEK_DATA) replace the object's
//                       bytes there: a write inside a large image file copies the blocks it
//                       touches, not the file
//   origin              xattr trusted.strata.origin = lower node id: keeps st_ino across copy-up
//                       (store lowers, whose node ids are the same on every mount); over
//                       directory layers, overlayfs' own trusted.overlay.origin (the lower file's
//                       handle) on non-directories, read back from either driver's copies
//   user trusted.overlay.X xattrs are stored escaped as trusted.overlay.overlay.X, as overlayfs does.
// Every upper entry appears complete or not at all: copies, and entries that replace a whiteout,
// are made in the work directory and renamed into place; a new file is made at its name in one
// step (O_EXCL with its final owner and mode, or unnamed with O_TMPFILE and then linked).
//
// Identity: an inode that exists in the lower view keeps nodeid = st_ino = lower node + 1, before
// and after copy-up (stable across remounts); one that exists only in upper gets kUpperBase + its
// upper st_ino. Over directory layers a copy is recognised by its origin where it was copied up
// (and where it is renamed to, while the kernel knows it: by its upper inode number), so that one
// file never gets a second node id, which the kernel would take for a second file with a cache
// of its own. A known inode's upper entry is reached through a bounded cache of O_PATH fds,
// found again by parent and name on a miss; an inode that loses a name while the kernel knows it
// holds its fd until forgotten, so the upper filesystem cannot reuse its inode number meanwhile.
//
// Concurrency: namespace operations and copy-up take one mutex; data reads and writes on open
// handles do not.
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "attr_policy.h"
#include "layerstore/rootfs.h"
#include "layerstore/unique_fd.h"
#include "lower.h"

namespace layerfs {

using layerstore::UniqueFd;

// Who asks: files they create are theirs (the kernel already applied their umask).
struct Caller {
  uid_t uid = 0;
  gid_t gid = 0;
};

struct EntryOut {
  uint64_t nodeid = 0;
  struct stat attr {};
};

class UnionFs {
 public:
  static constexpr uint32_t kNoNode = UINT32_MAX;
  static constexpr uint64_t kUpperBase = uint64_t{1} << 32;

  struct Inode;

  // An open file: the fd to read and write. A handle opened on lower content before the file was
  // copied up switches to the upper copy at its next read, so no reader sees stale data.
  //
  // A large file whose content is a store object stays a metadata-only copy when opened for
  // writing (Options::copy_at_open_below): its bytes past the object's end are the upper file's,
  // and below it the object's, except in the blocks a write has put in the upper file (the
  // "overrides": a write there copies in the rest of the blocks it touches, not the file). So
  // an append, or a write inside a large file, copies next to nothing. Reads of such a file are
  // planned by PlanRead, writes go through WriteAt.
  class FileHandle {
   public:
    int fd() const { return fd_.get(); }
    // Whether fd() reads lower content (a store object or a lower file), not the upper layer's
    // copy. Only meaningful before the handle is shared: ReadFd may switch it.
    bool lower_content() const { return lower_content_; }
    // Whether the handle's content is, or may come to be, pieced together from an object and
    // upper bytes: it cannot be handed to the kernel as one backing file.
    bool spans_object_end() const { return spans_object_end_; }

   private:
    friend class UnionFs;
    // The fd of the store object the content starts with (see object_size_).
    int object_fd() const { return lower_content_ ? fd_.get() : object_fd_.get(); }

    UniqueFd fd_;
    Inode* inode_ = nullptr;
    bool lower_content_ = false;
    // Content from a store object: its size (-1: none), and for a handle that writes the upper
    // file, the object's own fd. upper_read_fd_: the upper file, once a read needed it;
    // upper_rw_fd_: the upper file, read and written block-wise by WriteAt (fd_ may be O_APPEND).
    off_t object_size_ = -1;
    UniqueFd object_fd_;
    UniqueFd upper_read_fd_;
    UniqueFd upper_rw_fd_;
    bool spans_object_end_ = false;
    std::mutex mu_;
  };

  // Where a read finds its bytes: all in fd at the read's offset, or, where a metadata-only
  // copy's content is an object and upper bytes, in these pieces one after another.
  struct ReadPlan {
    struct Piece {
      int fd = -1;
      off_t pos = 0;
      size_t len = 0;
    };
    int fd = -1;
    std::vector<Piece> pieces;
  };

  // An open directory: its merged listing, taken at opendir so offsets stay stable while the
  // directory changes (entries made or removed later may or may not show, as POSIX allows).
  struct DirHandle {
    struct Item {
      std::string name;
      mode_t type;
    };
    std::vector<Item> items;
  };

  struct Options {
    AttrPolicy policy;  // owners and link counts as shown; callers' ids as written
    bool sync = true;   // false: fsync, fsyncdir and copy-up syncs do nothing (overlayfs' volatile)
    // A store file at least this large opened for writing stays a metadata-only copy until a
    // write lands inside its object (see FileHandle); a smaller one is copied up at the open, so
    // that its writes go straight to the upper file (passthrough) instead of each being a round
    // trip through the daemon. Below 8 MiB the copy and its sync cost about what a few hundred
    // such round trips do, which an appending program soon spends.
    uint64_t copy_at_open_below = 8 << 20;
  };

  // upper and work are directories on one filesystem.
  static layerstore::Result<std::unique_ptr<UnionFs>> Open(std::unique_ptr<Lower> lower, const std::string& upper_dir,
                                                           const std::string& work_dir, const Options& options);

  const AttrPolicy& policy() const { return policy_; }
  bool sync() const { return sync_; }
  ~UnionFs();

  int Lookup(uint64_t parent, const char* name, EntryOut* out);
  void Forget(uint64_t nodeid, uint64_t nlookup);
  int GetAttr(uint64_t nodeid, struct stat* st);
  // to_set: FUSE_SET_ATTR_* bits (mode, uid, gid, size, atime, mtime, *_NOW).
  int SetAttr(uint64_t nodeid, const struct stat& in, int to_set, struct stat* out);
  int ReadLink(uint64_t nodeid, std::string* target);
  int MkNod(uint64_t parent, const char* name, mode_t mode, dev_t rdev, const Caller& caller, EntryOut* out);
  int MkDir(uint64_t parent, const char* name, mode_t mode, const Caller& caller, EntryOut* out);
  int Symlink(const char* target, uint64_t parent, const char* name, const Caller& caller, EntryOut* out);
  int Link(uint64_t nodeid, uint64_t new_parent, const char* new_name, EntryOut* out);
  int Unlink(uint64_t parent, const char* name);
  int RmDir(uint64_t parent, const char* name);
  int Rename(uint64_t parent, const char* name, uint64_t new_parent, const char* new_name, unsigned flags);
  int Open(uint64_t nodeid, int flags, std::unique_ptr<FileHandle>* fh);
  int Create(uint64_t parent, const char* name, mode_t mode, int flags, const Caller& caller, EntryOut* out,
             std::unique_ptr<FileHandle>* fh);
  // The fd a read should use (switches a pre-copy-up handle to the upper copy).
  int ReadFd(FileHandle& fh);
  // Where a read of [off, off + size) finds its bytes.
  int PlanRead(FileHandle& fh, off_t off, size_t size, ReadPlan* plan);
  // Runs write(fd), a write of len bytes at off, on the fd it must go to; for a metadata-only
  // copy, first copies into the upper file the object's bytes of the blocks the write covers
  // only in part. Returns write's result, or -errno.
  ssize_t WriteAt(FileHandle& fh, off_t off, size_t len, const std::function<ssize_t(int fd)>& write);
  // Runs allocate(fd), an fallocate at off, on the fd it must go to, first filling in a
  // metadata-only copy's data when it lands on its object's bytes.
  int AllocateAt(FileHandle& fh, off_t off, const std::function<int(int fd)>& allocate);
  // lseek(SEEK_DATA / SEEK_HOLE) of the union's content.
  int Seek(FileHandle& fh, off_t off, int whence, off_t* result);
  int OpenDir(uint64_t nodeid, std::unique_ptr<DirHandle>* dh);
  int Parent(uint64_t nodeid, uint64_t* parent);
  // fsyncdir in two steps, so that the sync itself holds no lock: the directory's upper entry
  // opened for reading, or no fd when there is nothing to sync.
  int OpenForFsyncDir(uint64_t nodeid, UniqueFd* dir);
  int GetXattr(uint64_t nodeid, const char* name, std::string* value);
  int ListXattr(uint64_t nodeid, std::string* names);  // NUL-separated
  int SetXattr(uint64_t nodeid, const char* name, const std::string& value, int flags);
  int RemoveXattr(uint64_t nodeid, const char* name);
  int StatFs(struct statvfs* st);

 private:
  struct Found;
  class Locked;
  UnionFs() = default;

  Inode* Get(uint64_t nodeid);
  // The O_PATH fd of an upper entry, from the cache or found again by parent and name (checked to
  // be the same inode: ESTALE otherwise). Stays open until the running operation's Locked ends.
  // REQUIRES: mu_ held through Locked; inode->in_upper.
  int UpperFd(Inode* inode, int* fd);
  void CacheFd(Inode* inode, UniqueFd fd);
  // Records that inode now has an upper entry, reached through fd.
  int Adopt(Inode* inode, UniqueFd fd);
  // Keeps the inode's fd until it is forgotten: call before removing one of its names.
  int Hold(Inode* inode);
  int HoldIfKnown(uint64_t nodeid);
  void DropFd(Inode* inode);
  void TrimFds();
  int Resolve(Inode* dir, const char* name, Found* found);
  Inode* Intern(Found& found, Inode* parent, const char* name);
  void Unref(Inode* inode, uint64_t n);
  int StatOf(Inode* inode, struct stat* st);
  int LowerStat(uint32_t node, uint64_t nodeid, struct stat* st);
  int CopyUp(Inode* inode, bool with_data);
  int MakeUpperCopy(int parent_fd, const std::string& name, uint32_t node, bool with_data, UniqueFd* out);
  int CopyUpAliases(Inode* inode);
  void NoteCopy(Inode* inode);
  void MarkImpure(int dir_fd);
  uint32_t DirectoryCopyOrigin(Found* f, const std::string& path, bool no_follow);
  int FillData(Inode* inode);
  // The unit in which the upper filesystem tells data from holes (what an override covers), or 0
  // where it cannot (writes inside an object then fill the copy in). Probed once.
  // REQUIRES: mu_ held.
  off_t OverrideBlock();
  // Turns on overrides for a metadata-only copy (fh writes it; rw: its upper file).
  // REQUIRES: mu_ held.
  int StartOverrides(FileHandle& fh, int rw, off_t block);
  // SEEK_DATA / SEEK_HOLE of a metadata-only copy. REQUIRES: mu_ held.
  int SeekPieced(FileHandle& fh, off_t off, int whence, off_t* result);
  // Opens the store object that is a regular file's content, and gives its size.
  int OpenObjectOf(Inode* inode, UniqueFd* fd, off_t* size);
  // A metadata-only copy's data is now in its upper file (upper_fd): its markers go.
  // REQUIRES: mu_ held.
  int EndMetacopy(Inode* inode, int upper_fd);
  // The size of the inode's upper file. REQUIRES: mu_ held; inode->in_upper.
  int UpperSize(Inode* inode, off_t* size);
  int ReplaceWithWhiteout(int parent_fd, const std::string& name, bool is_dir);
  int RemoveUpper(int parent_fd, const std::string& name, bool is_dir);
  int IsUnionEmpty(Inode* dir, bool* empty);
  int ListUnion(Inode* dir, std::vector<DirHandle::Item>* items);
  int CreateAtName(Inode* dir, const char* name, mode_t perms, int flags, const Caller& caller, EntryOut* out,
                   std::unique_ptr<FileHandle>* fh);
  int InstallNew(Inode* parent, const char* name, const Caller& caller, mode_t mode,
                 const std::function<int(int work_fd, const std::string& tmp)>& make, EntryOut* out);
  std::optional<uint32_t> LowerLookupPath(const std::string& path);
  std::string TempName();
  // A path that xattr calls (the following variants) take to the inode's own upper entry.
  int UpperXattrPath(Inode* inode, std::string* path);
  uint32_t MergedLowerDir(const std::string& path, uint32_t lower_here, uint32_t parent_lower);
  int MovedLowerDir(uint32_t dir_node, UniqueFd* out);
  // Copies the inode up and runs change(path), an xattr call on UpperXattrPath returning 0 or
  // -1/errno. removed: the xattr a removal is for (nullptr for a setting), which a lower entry
  // must have to be copied up at all.
  int ChangeXattr(uint64_t nodeid, const char* removed, const std::function<int(const char*)>& change);

  std::unique_ptr<Lower> lower_;
  const layerstore::RootfsIndex* index_ = nullptr;  // lower_'s
  AttrPolicy policy_;
  bool sync_ = true;
  uint64_t copy_at_open_below_ = 0;
  off_t override_block_ = -1;  // guarded by mu_; -1 until probed
  UniqueFd upper_root_;  // O_PATH
  UniqueFd work_;        // O_PATH
  std::string upper_dir_;
  uid_t uid_ = 0;  // whom a file this daemon creates belongs to, before any chown
  gid_t gid_ = 0;
  mode_t umask_ = 0;
  size_t max_cached_fds_ = 0;
  std::mutex mu_;  // taken through Locked; after FileHandle::mu_
  std::unordered_map<uint64_t, std::unique_ptr<Inode>> inodes_;  // guarded by mu_
  // Guarded by mu_: over directory layers, the node id of each known inode that was copied up, by
  // its upper file's inode number.
  std::unordered_map<ino_t, uint64_t> copies_by_upper_ino_;
  std::list<Inode*> fd_lru_;  // guarded by mu_: inodes with a cached (not held) fd, latest first
  std::atomic<uint64_t> temp_counter_{0};
};

}  // namespace layerfs
