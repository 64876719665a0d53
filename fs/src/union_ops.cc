// Trampolines from libfuse to UnionFs for container mounts. As in ops.cc: exactly one reply per
// request, no exception escapes into libfuse, nothing logged on the hot path.
#include <sys/file.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <new>
#include <vector>

#include "killpriv.h"
#include "ops.h"
#include "passthrough.h"
#include "reply.h"
#include "union_fs.h"

namespace layerfs {
namespace {

UnionSession& Session(fuse_req_t req) { return *static_cast<UnionSession*>(fuse_req_userdata(req)); }
UnionFs& Fs(fuse_req_t req) { return *Session(req).fs; }

// An open file: the union's handle and how the kernel does its I/O.
struct OpenFile {
  std::unique_ptr<UnionFs::FileHandle> handle;
  IoMode mode = IoMode::kCached;
};

// The caller's ids as the files it makes get them on disk (uidmapping=/gidmapping=).
Caller CallerOf(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  const AttrPolicy& policy = Fs(req).policy();
  return Caller{policy.DiskUid(ctx->uid), policy.DiskGid(ctx->gid)};
}

// Whether the request's caller is in group `gid` (its own or a supplementary one).
bool CallerInGroup(fuse_req_t req, gid_t gid) {
  if (fuse_req_ctx(req)->gid == gid) return true;
  gid_t groups[64];
  const int n = fuse_req_getgroups(req, 64, groups);
  for (int i = 0; i < std::min(n, 64); ++i) {
    if (groups[i] == gid) return true;
  }
  return false;
}

// Clears setuid and setgid by the kernel's rule (setattr_should_drop_suidgid): setuid always,
// setgid when the file is group-executable, or when the caller is not in its group and lacks
// CAP_FSETID (known to lack it when the request said so; otherwise taken as lacking it unless
// root). Returns whether the mode changed; `st` (optional) receives the attributes after.
bool KillSuidgid(fuse_req_t req, fuse_ino_t ino, bool lacks_fsetid, struct stat* st = nullptr) {
  struct stat now;
  if (Fs(req).GetAttr(ino, &now) != 0 || !S_ISREG(now.st_mode)) return false;
  mode_t kill = now.st_mode & S_ISUID;
  if (now.st_mode & S_ISGID) {
    const bool capable = !lacks_fsetid && fuse_req_ctx(req)->uid == 0;
    if ((now.st_mode & S_IXGRP) || (!capable && !CallerInGroup(req, now.st_gid))) kill |= S_ISGID;
  }
  if (kill == 0) return false;
  struct stat mode{};
  mode.st_mode = now.st_mode & ~kill;
  return Fs(req).SetAttr(ino, mode, FUSE_SET_ATTR_MODE, st ? st : &now) == 0;
}

// After a write or an O_TRUNC open whose request says its caller lacks CAP_FSETID (killpriv.h);
// the kernel's cached attributes are then stale, as neither reply carries them.
void KillSuidgidAsAsked(fuse_req_t req, fuse_ino_t ino) {
  if (!Session(req).kills_suidgid || !CurrentRequestKillsSuidgid()) return;
  if (KillSuidgid(req, ino, true)) fuse_lowlevel_notify_inval_inode(Session(req).se, ino, -1, 0);
}

void Init(void*, fuse_conn_info* conn) {
  if (conn->capable & FUSE_CAP_SPLICE_WRITE) conn->want |= FUSE_CAP_SPLICE_WRITE;
  if (conn->capable & FUSE_CAP_SPLICE_MOVE) conn->want |= FUSE_CAP_SPLICE_MOVE;
  // No splice of requests into a pipe: libfuse would read their headers past the transport, which
  // must see each request's flags (killpriv.h); a write through the daemon costs one copy more.
  conn->want &= ~FUSE_CAP_SPLICE_READ;
  if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS;
  conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  // No writeback cache: with it the kernel owns mtime but sends it back only when it thinks the
  // time changed, so the upper file ends up with the later time of the delayed write (seen as
  // timestamps changing across a remount). Write-through keeps the upper layer the authority.
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  conn->max_read = 0;
  conn->max_readahead = 1 << 20;
  conn->max_write = 1 << 20;
}

void ReplyEntry(fuse_req_t req, int err, const EntryOut& out) {
  if (err) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_entry_param e{};
  FillEntry(&e, out.nodeid, out.attr);
  fuse_reply_entry(req, &e);
}

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) noexcept {
  Guard(req, [&] {
    EntryOut out;
    int err = Fs(req).Lookup(parent, name, &out);
    if (err == ENOENT) {
      fuse_entry_param e{};
      e.entry_timeout = kForever;  // a negative entry; creating the name replaces it
      fuse_reply_entry(req, &e);
      return;
    }
    ReplyEntry(req, err, out);
  });
}

void Forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) noexcept {
  Fs(req).Forget(ino, nlookup);
  fuse_reply_none(req);
}

void ForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) noexcept {
  for (size_t i = 0; i < count; ++i) Fs(req).Forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) noexcept {
  Guard(req, [&] {
    struct stat st;
    const AttrPolicy& policy = Fs(req).policy();
    attr->st_uid = policy.DiskUid(attr->st_uid);
    attr->st_gid = policy.DiskGid(attr->st_gid);
    if (int err = Fs(req).SetAttr(ino, *attr, to_set, &st)) {
      fuse_reply_err(req, err);
      return;
    }
    // Where FUSE_HANDLE_KILLPRIV_V2 leaves the kill to the daemon: a truncation by a caller
    // without CAP_FSETID says so; and a setattr that sets nothing is what the kernel's
    // file_remove_privs sends before such a caller's write to a setuid or setgid file (a
    // passthrough write, which the daemon never sees, included) or for a chown(f, -1, -1).
    if (Session(req).kills_suidgid) {
      if ((to_set & FUSE_SET_ATTR_SIZE) && CurrentRequestKillsSuidgid()) KillSuidgid(req, ino, true, &st);
      if ((to_set & ~FUSE_SET_ATTR_CTIME) == 0) KillSuidgid(req, ino, false, &st);
    }
    fuse_reply_attr(req, &st, kForever);
  });
}

void MkNod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) noexcept {
  Guard(req, [&] {
    EntryOut out;
    ReplyEntry(req, Fs(req).MkNod(parent, name, mode, rdev, CallerOf(req), &out), out);
  });
}

void MkDir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) noexcept {
  Guard(req, [&] {
    EntryOut out;
    ReplyEntry(req, Fs(req).MkDir(parent, name, mode, CallerOf(req), &out), out);
  });
}

void Symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) noexcept {
  Guard(req, [&] {
    EntryOut out;
    ReplyEntry(req, Fs(req).Symlink(target, parent, name, CallerOf(req), &out), out);
  });
}

void Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t new_parent, const char* new_name) noexcept {
  Guard(req, [&] {
    EntryOut out;
    ReplyEntry(req, Fs(req).Link(ino, new_parent, new_name, &out), out);
  });
}

void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) noexcept {
  Guard(req, [&] { fuse_reply_err(req, Fs(req).Unlink(parent, name)); });
}

void RmDir(fuse_req_t req, fuse_ino_t parent, const char* name) noexcept {
  Guard(req, [&] { fuse_reply_err(req, Fs(req).RmDir(parent, name)); });
}

void Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent, const char* new_name,
            unsigned int flags) noexcept {
  Guard(req, [&] { fuse_reply_err(req, Fs(req).Rename(parent, name, new_parent, new_name, flags)); });
}

// Answers OPEN, or CREATE when `created` is its entry. In a writable mount only upper files back
// a passthrough open: an inode opened on its lower content may be written through another open
// later, which copies it up to a different file, and the kernel keeps one backing file per inode
// (and would map a writer's shared mmap onto the first one: the store's object). A read-only
// mount has no writer, so its lower files are backed by their objects too.
void ReplyOpened(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, std::unique_ptr<UnionFs::FileHandle> fh,
                 const fuse_entry_param* created) {
  auto file = std::make_unique<OpenFile>();
  file->handle = std::move(fh);
  PassthroughFiles* files = Session(req).passthrough;
  int32_t backing_id = 0;
  if (files) {
    const bool may_back =
        !file->handle->spans_object_end() && (!file->handle->lower_content() || Session(req).read_only);
    file->mode = files->Open(ino, may_back ? file->handle->fd() : -1, &backing_id);
  }
  const uint64_t handle = reinterpret_cast<uint64_t>(file.get());
  int sent;
  if (file->mode == IoMode::kPassthrough) {
    sent = created ? ReplyPassthroughCreate(req, *created, handle, backing_id)
                   : ReplyPassthroughOpen(req, handle, backing_id);
  } else {
    fi->fh = handle;
    // Only this daemon changes file contents, and the kernel sees every change: keep its cache.
    fi->keep_cache = 1;
    fi->noflush = 1;  // writes are write-through: a close has nothing to flush
    sent = created ? fuse_reply_create(req, created, fi) : fuse_reply_open(req, fi);
  }
  if (sent == 0) {
    file.release();
    return;
  }
  if (files) files->Release(ino, file->mode);
  if (created) Fs(req).Forget(created->ino, 1);
}

void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept {
  Guard(req, [&] {
    std::unique_ptr<UnionFs::FileHandle> fh;
    if (int err = Fs(req).Open(ino, fi->flags, &fh)) {
      fuse_reply_err(req, err);
      return;
    }
    if (fi->flags & O_TRUNC) KillSuidgidAsAsked(req, ino);
    ReplyOpened(req, ino, fi, std::move(fh), nullptr);
  });
}

void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) noexcept {
  Guard(req, [&] {
    std::unique_ptr<UnionFs::FileHandle> fh;
    EntryOut out;
    if (int err = Fs(req).Create(parent, name, mode, fi->flags, CallerOf(req), &out, &fh)) {
      fuse_reply_err(req, err);
      return;
    }
    fuse_entry_param e{};
    FillEntry(&e, out.nodeid, out.attr);
    ReplyOpened(req, out.nodeid, fi, std::move(fh), &e);
  });
}

OpenFile& File(fuse_file_info* fi) { return *reinterpret_cast<OpenFile*>(fi->fh); }
UnionFs::FileHandle& Handle(fuse_file_info* fi) { return *File(fi).handle; }

void Read(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) noexcept {
  Guard(req, [&] {
    UnionFs::ReadPlan plan;
    if (int err = Fs(req).PlanRead(Handle(fi), off, size, &plan)) {
      fuse_reply_err(req, err);
      return;
    }
    if (plan.pieces.empty()) {
      fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
      buf.buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
      buf.buf[0].fd = plan.fd;
      buf.buf[0].pos = off;
      fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
      return;
    }
    // Pieced together from an object and its upper file: through one buffer.
    std::vector<char> data(size);
    size_t got = 0;
    for (const auto& piece : plan.pieces) {
      ssize_t n = ::pread(piece.fd, data.data() + got, piece.len, piece.pos);
      if (n < 0) {
        fuse_reply_err(req, errno);
        return;
      }
      got += static_cast<size_t>(n);
      if (static_cast<size_t>(n) < piece.len) break;  // end of file
    }
    fuse_reply_buf(req, data.data(), got);
  });
}

void WriteBuf(fuse_req_t req, fuse_ino_t ino, fuse_bufvec* in, off_t off, fuse_file_info* fi) noexcept {
  Guard(req, [&] {
    const size_t len = fuse_buf_size(in);
    ssize_t n = Fs(req).WriteAt(Handle(fi), off, len, [&](int fd) {
      fuse_bufvec out = FUSE_BUFVEC_INIT(len);
      out.buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
      out.buf[0].fd = fd;
      out.buf[0].pos = off;
      return fuse_buf_copy(&out, in, FUSE_BUF_SPLICE_NONBLOCK);
    });
    if (n < 0) {
      fuse_reply_err(req, static_cast<int>(-n));
      return;
    }
    KillSuidgidAsAsked(req, ino);
    fuse_reply_write(req, static_cast<size_t>(n));
  });
}

void Flush(fuse_req_t req, fuse_ino_t, fuse_file_info*) noexcept { fuse_reply_err(req, 0); }

void Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept {
  std::unique_ptr<OpenFile> file(&File(fi));
  if (PassthroughFiles* files = Session(req).passthrough) files->Release(ino, file->mode);
  fuse_reply_err(req, 0);
}

void Fsync(fuse_req_t req, fuse_ino_t, int datasync, fuse_file_info* fi) noexcept {
  if (!Fs(req).sync()) {
    fuse_reply_err(req, 0);
    return;
  }
  int fd = Fs(req).ReadFd(Handle(fi));
  int rc = datasync ? ::fdatasync(fd) : ::fsync(fd);
  fuse_reply_err(req, rc == 0 ? 0 : errno);
}

void Fallocate(fuse_req_t req, fuse_ino_t, int mode, off_t offset, off_t length, fuse_file_info* fi) noexcept {
  Guard(req, [&] {
    int err = Fs(req).AllocateAt(Handle(fi), offset,
                                 [&](int fd) { return ::fallocate(fd, mode, offset, length) == 0 ? 0 : errno; });
    fuse_reply_err(req, err);
  });
}

void Lseek(fuse_req_t req, fuse_ino_t, off_t off, int whence, fuse_file_info* fi) noexcept {
  Guard(req, [&] {
    off_t res;
    if (int err = Fs(req).Seek(Handle(fi), off, whence, &res)) fuse_reply_err(req, err);
    else fuse_reply_lseek(req, res);
  });
}

void OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept {
  Guard(req, [&] {
    std::unique_ptr<UnionFs::DirHandle> dh;
    if (int err = Fs(req).OpenDir(ino, &dh)) {
      fuse_reply_err(req, err);
      return;
    }
    fi->fh = reinterpret_cast<uint64_t>(dh.get());
    if (fuse_reply_open(req, fi) == 0) dh.release();
  });
}

// Offsets: 1 after ".", 2 after "..", 3 + i after item i of the listing taken at opendir.
void DoReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi, bool plus) {
  UnionFs& fs = Fs(req);
  auto& dir = *reinterpret_cast<UnionFs::DirHandle*>(fi->fh);
  std::vector<char> buf(size);
  size_t used = 0;
  const off_t end = static_cast<off_t>(dir.items.size()) + 2;
  for (off_t pos = off; pos < end; ++pos) {
    EntryOut entry;
    std::string name;
    bool counted = false;  // whether the kernel takes a lookup reference with this entry
    if (pos < 2) {
      name = pos == 0 ? "." : "..";
      uint64_t target = ino;
      if (pos == 1 && fs.Parent(ino, &target) != 0) target = ino;
      if (fs.GetAttr(target, &entry.attr) != 0) continue;
      entry.nodeid = target;
    } else {
      name = dir.items[static_cast<size_t>(pos - 2)].name;
      if (fs.Lookup(ino, name.c_str(), &entry) != 0) continue;  // gone since opendir
      counted = plus;
    }
    size_t n;
    if (plus) {
      fuse_entry_param e{};
      e.attr = entry.attr;
      if (counted) FillEntry(&e, entry.nodeid, entry.attr);
      n = fuse_add_direntry_plus(req, buf.data() + used, size - used, name.c_str(), &e, pos + 1);
    } else {
      n = fuse_add_direntry(req, buf.data() + used, size - used, name.c_str(), &entry.attr, pos + 1);
    }
    if (pos >= 2 && (!plus || n > size - used)) fs.Forget(entry.nodeid, 1);  // not sent, or not counted
    if (n > size - used) break;
    used += n;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) noexcept {
  Guard(req, [&] { DoReadDir(req, ino, size, off, fi, false); });
}

void ReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) noexcept {
  Guard(req, [&] { DoReadDir(req, ino, size, off, fi, true); });
}

void ReleaseDir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) noexcept {
  delete reinterpret_cast<UnionFs::DirHandle*>(fi->fh);
  fuse_reply_err(req, 0);
}

void FsyncDir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info*) noexcept {
  Guard(req, [&] {
    UniqueFd dir;
    int err = Fs(req).OpenForFsyncDir(ino, &dir);
    if (!err && dir && (datasync ? ::fdatasync(dir.get()) : ::fsync(dir.get())) != 0) err = errno;
    fuse_reply_err(req, err);
  });
}

void SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size, int flags) noexcept {
  Guard(req, [&] { fuse_reply_err(req, Fs(req).SetXattr(ino, name, std::string(value, size), flags)); });
}

void RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name) noexcept {
  Guard(req, [&] { fuse_reply_err(req, Fs(req).RemoveXattr(ino, name)); });
}

}  // namespace

fuse_lowlevel_ops MakeUnionOperations() {
  fuse_lowlevel_ops ops{};
  ops.init = Init;
  ops.lookup = Lookup;
  ops.forget = Forget;
  ops.forget_multi = ForgetMulti;
  ops.getattr = GetAttrOp<UnionSession>;
  ops.setattr = SetAttr;
  ops.readlink = ReadLinkOp<UnionSession>;
  ops.mknod = MkNod;
  ops.mkdir = MkDir;
  ops.symlink = Symlink;
  ops.link = Link;
  ops.unlink = Unlink;
  ops.rmdir = RmDir;
  ops.rename = Rename;
  ops.open = Open;
  ops.create = Create;
  ops.read = Read;
  ops.write_buf = WriteBuf;
  ops.flush = Flush;
  ops.release = Release;
  ops.fsync = Fsync;
  ops.fallocate = Fallocate;
  ops.lseek = Lseek;
  ops.opendir = OpenDir;
  ops.readdir = ReadDir;
  ops.readdirplus = ReadDirPlus;
  ops.releasedir = ReleaseDir;
  ops.fsyncdir = FsyncDir;
  ops.statfs = StatFsOp<UnionSession>;
  ops.getxattr = GetXattrOp<UnionSession>;
  ops.listxattr = ListXattrOp<UnionSession>;
  ops.setxattr = SetXattr;
  ops.removexattr = RemoveXattr;
  return ops;
}

}  // namespace layerfs
