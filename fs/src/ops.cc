// Trampolines from libfuse to Filesystem. Each sends exactly one reply, never lets an exception
// escape into libfuse's C code (bad_alloc becomes ENOMEM, anything else EIO), and logs nothing
// on the hot path.
#include "ops.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <new>
#include <vector>

#include "filesystem.h"
#include "passthrough.h"
#include "reply.h"

namespace layerfs {
namespace {

ImageSession& Session(fuse_req_t req) { return *static_cast<ImageSession*>(fuse_req_userdata(req)); }
Filesystem& Fs(fuse_req_t req) { return *Session(req).fs; }

void Init(void*, fuse_conn_info* conn) {
  // Reads come straight from object fds: let libfuse splice them to the kernel.
  if (conn->capable & FUSE_CAP_SPLICE_WRITE) conn->want |= FUSE_CAP_SPLICE_WRITE;
  if (conn->capable & FUSE_CAP_SPLICE_MOVE) conn->want |= FUSE_CAP_SPLICE_MOVE;
  // One round trip lists a directory with its attributes (find, ls -l, tar).
  if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS;
  conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
  // Symlink targets never change: let the kernel keep them.
  if (conn->capable & FUSE_CAP_CACHE_SYMLINKS) conn->want |= FUSE_CAP_CACHE_SYMLINKS;
  // Nothing here serialises lookups of one directory: let them run in parallel.
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  // Large reads: fewer round trips on sequential reads.
  conn->max_read = 0;  // no limit beyond max_pages
  conn->max_readahead = 1 << 20;
}

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) noexcept {
  Guard(req, [&] {
    fuse_entry_param e{};
    uint64_t ino = 0;
    int err = Fs(req).Lookup(parent, name, &ino, &e.attr);
    if (err == ENOENT) {
      // A negative entry: the kernel remembers the name is absent (it cannot appear).
      e.ino = 0;
      e.entry_timeout = kForever;
      fuse_reply_entry(req, &e);
      return;
    }
    if (err) {
      fuse_reply_err(req, err);
      return;
    }
    FillEntry(&e, ino, e.attr);
    fuse_reply_entry(req, &e);
  });
}

// Without passthrough, opens need no state (reads find the content fd by inode), so the first
// OPEN and OPENDIR answer ENOSYS: the kernel then stops sending OPEN, OPENDIR, RELEASE and
// RELEASEDIR altogether, and treats every open as keep_cache (and directories as cache_readdir):
// nothing here can change.
void NoOpen(fuse_req_t req, fuse_ino_t, fuse_file_info*) noexcept { fuse_reply_err(req, ENOSYS); }

// With passthrough, an OPEN round trip buys reads with none: the kernel reads the object itself,
// from the page cache every mount of it shares.
void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) noexcept {
  Guard(req, [&] {
    ImageSession& session = Session(req);
    PassthroughFiles* files = session.passthrough;
    if (!files || files->refused()) {
      fuse_reply_err(req, ENOSYS);
      return;
    }
    // Without a content fd (an object missing from the store) the open is cached: reads go
    // through the daemon and report the error there, as they would without passthrough.
    int fd = -1;
    bool owned = false;
    if (session.fs->ContentFd(ino, &fd, &owned) != 0) fd = -1;
    int32_t backing_id = 0;
    const IoMode mode = files->Open(ino, fd, &backing_id);
    if (owned) ::close(fd);
    int sent;
    if (mode == IoMode::kPassthrough) {
      sent = ReplyPassthroughOpen(req, kPassthroughFh, backing_id);
    } else if (files->refused()) {
      // The kernel refuses backing files to this daemon: the mount goes on without opens. Files
      // opened with a backing file keep it; the kernel opens the others in cached mode without
      // asking, which does not conflict with passthrough files when the daemon has no open.
      files->Release(ino, mode);
      fuse_reply_err(req, ENOSYS);
      return;
    } else {
      sent = ReplyCachedOpen(req, kCachedFh);
    }
    if (sent != 0) files->Release(ino, mode);
  });
}

void Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept {
  if (PassthroughFiles* files = Session(req).passthrough) {
    files->Release(ino, fi->fh == kPassthroughFh ? IoMode::kPassthrough : IoMode::kCached);
  }
  fuse_reply_err(req, 0);
}

void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) noexcept {
  Guard(req, [&] {
    int fd = -1;
    bool owned = false;
    if (int err = Fs(req).ContentFd(ino, &fd, &owned)) {
      fuse_reply_err(req, err);
      return;
    }
    fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
    buf.buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
    buf.buf[0].fd = fd;
    buf.buf[0].pos = off;
    fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
    if (owned) ::close(fd);
  });
}

// Offsets: 1 after ".", 2 after "..", 2 + i + 1 after child i. Stable since listings never change.
void DoReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus) {
  Filesystem& fs = Fs(req);
  uint32_t count;
  if (int err = fs.ChildCount(ino, &count)) {
    fuse_reply_err(req, err);
    return;
  }
  std::vector<char> buf(size);
  size_t used = 0;
  for (off_t pos = off; pos < static_cast<off_t>(count) + 2; ++pos) {
    std::string_view name;
    uint64_t child = 0;
    std::string name_storage;
    if (pos == 0) {
      name = ".";
      child = ino;
    } else if (pos == 1) {
      name = "..";
      if (fs.Parent(ino, &child) != 0) child = ino;
    } else if (fs.Child(ino, static_cast<uint32_t>(pos - 2), &name, &child) != 0) {
      break;  // return what was packed: an error now would break the lookup counts already sent
    }
    name_storage.assign(name);
    struct stat st;
    if (fs.GetAttr(child, &st) != 0) break;
    size_t n;
    if (plus) {
      fuse_entry_param e{};
      // "." and ".." carry no lookup: reply them without an entry (ino 0 tells the kernel so).
      if (pos >= 2) FillEntry(&e, child, st);
      else e.attr = st;
      n = fuse_add_direntry_plus(req, buf.data() + used, size - used, name_storage.c_str(), &e, pos + 1);
    } else {
      n = fuse_add_direntry(req, buf.data() + used, size - used, name_storage.c_str(), &st, pos + 1);
    }
    if (n > size - used) break;
    used += n;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) noexcept {
  Guard(req, [&] { DoReadDir(req, ino, size, off, false); });
}

void ReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) noexcept {
  Guard(req, [&] { DoReadDir(req, ino, size, off, true); });
}

}  // namespace

fuse_lowlevel_ops MakeOperations() {
  fuse_lowlevel_ops ops{};
  ops.init = Init;
  ops.lookup = Lookup;
  ops.getattr = GetAttrOp<ImageSession>;
  ops.readlink = ReadLinkOp<ImageSession>;
  ops.open = Open;
  ops.release = Release;
  ops.read = Read;
  ops.opendir = NoOpen;
  ops.readdir = ReadDir;
  ops.readdirplus = ReadDirPlus;
  ops.statfs = StatFsOp<ImageSession>;
  ops.getxattr = GetXattrOp<ImageSession>;
  ops.listxattr = ListXattrOp<ImageSession>;
  return ops;
}

}  // namespace layerfs
