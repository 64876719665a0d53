// What both operation tables share: exception containment and the replies whose shape FUSE
// fixes. Included only by ops.cc and union_ops.cc.
#pragma once

#include <sys/statvfs.h>

#include <cerrno>
#include <exception>
#include <new>
#include <string>

#include "ops.h"

namespace layerfs {

// What the kernel may cache: everything it learns stays true until this daemon says otherwise
// (image mounts never change; container changes all pass through the daemon's replies).
constexpr double kForever = 86400.0;

// Out of line so that the operation tables do not compile the logging library's headers.
void LogInternalError(const std::exception& e) noexcept;

// Runs a request's body so that no exception escapes into libfuse's C code: bad_alloc becomes
// ENOMEM, anything else EIO (logged: it is a bug). The body sends the reply.
template <class F>
void Guard(fuse_req_t req, F&& body) noexcept {
  try {
    body();
  } catch (const std::bad_alloc&) {
    fuse_reply_err(req, ENOMEM);
  } catch (const std::exception& e) {
    LogInternalError(e);
    fuse_reply_err(req, EIO);
  }
}

inline void FillEntry(fuse_entry_param* e, uint64_t ino, const struct stat& st) {
  e->ino = ino;
  e->generation = 1;
  e->attr = st;
  e->attr_timeout = kForever;
  e->entry_timeout = kForever;
}

// getxattr/listxattr: size 0 asks for the length; a buffer too small is ERANGE.
inline void ReplyXattr(fuse_req_t req, int err, const std::string& value, size_t size) {
  if (err) fuse_reply_err(req, err);
  else if (size == 0) fuse_reply_xattr(req, value.size());
  else if (size < value.size()) fuse_reply_err(req, ERANGE);
  else fuse_reply_buf(req, value.data(), value.size());
}

// Operations the two filesystems answer alike; S is the session's userdata type, and
// Target(S&) the filesystem it serves.
template <class S>
void GetAttrOp(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) noexcept {
  Guard(req, [&] {
    struct stat st;
    if (int err = Target(*static_cast<S*>(fuse_req_userdata(req))).GetAttr(ino, &st)) {
      fuse_reply_err(req, err);
      return;
    }
    fuse_reply_attr(req, &st, kForever);
  });
}

template <class S>
void ReadLinkOp(fuse_req_t req, fuse_ino_t ino) noexcept {
  Guard(req, [&] {
    std::string target;
    if (int err = Target(*static_cast<S*>(fuse_req_userdata(req))).ReadLink(ino, &target)) {
      fuse_reply_err(req, err);
      return;
    }
    fuse_reply_readlink(req, target.c_str());
  });
}

template <class S>
void StatFsOp(fuse_req_t req, fuse_ino_t) noexcept {
  Guard(req, [&] {
    struct statvfs st;
    if (int err = Target(*static_cast<S*>(fuse_req_userdata(req))).StatFs(&st)) {
      fuse_reply_err(req, err);
      return;
    }
    fuse_reply_statfs(req, &st);
  });
}

template <class S>
void GetXattrOp(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) noexcept {
  Guard(req, [&] {
    std::string value;
    int err = Target(*static_cast<S*>(fuse_req_userdata(req))).GetXattr(ino, name, &value);
    ReplyXattr(req, err, value, size);
  });
}

template <class S>
void ListXattrOp(fuse_req_t req, fuse_ino_t ino, size_t size) noexcept {
  Guard(req, [&] {
    std::string names;
    int err = Target(*static_cast<S*>(fuse_req_userdata(req))).ListXattr(ino, &names);
    ReplyXattr(req, err, names, size);
  });
}

}  // namespace layerfs
