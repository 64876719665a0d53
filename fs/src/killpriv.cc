#include "killpriv.h"

#include <fcntl.h>
#include <linux/fuse.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>

namespace layerfs {
namespace {

thread_local bool t_kill_suidgid = false;

// Whether the request's struct `In` (at op_in, op_size bytes) has `flag` set in its `field`.
template <class In, class Field>
bool FlagSet(const void* op_in, size_t op_size, Field In::*field, uint32_t flag) {
  In in;
  if (op_size < sizeof in) return false;
  std::memcpy(&in, op_in, sizeof in);
  return (in.*field & flag) != 0;
}

}  // namespace

bool RequestKillsSuidgid(uint32_t opcode, const void* op_in, size_t op_size) {
  switch (opcode) {
    case FUSE_WRITE:
      return FlagSet(op_in, op_size, &fuse_write_in::write_flags, FUSE_WRITE_KILL_SUIDGID);
    case FUSE_SETATTR:
      return FlagSet(op_in, op_size, &fuse_setattr_in::valid, FATTR_KILL_SUIDGID);
    case FUSE_OPEN:
      return FlagSet(op_in, op_size, &fuse_open_in::open_flags, FUSE_OPEN_KILL_SUIDGID);
    case FUSE_CREATE:
      return FlagSet(op_in, op_size, &fuse_create_in::open_flags, FUSE_OPEN_KILL_SUIDGID);
    default:
      return false;
  }
}

void SetCurrentRequestKillsSuidgid(bool kill) { t_kill_suidgid = kill; }
bool CurrentRequestKillsSuidgid() { return t_kill_suidgid; }

void NoteRequestRead(const void* buf, size_t len) {
  fuse_in_header in;
  if (len < sizeof in) return;
  std::memcpy(&in, buf, sizeof in);
  SetCurrentRequestKillsSuidgid(RequestKillsSuidgid(in.opcode, static_cast<const char*>(buf) + sizeof in, len - sizeof in));
}

ssize_t ReadRequestNotingFlags(int fd, void* buf, size_t len, void*) {
  const ssize_t n = ::read(fd, buf, len);
  if (n > 0) NoteRequestRead(buf, static_cast<size_t>(n));
  return n;
}

namespace {

ssize_t Writev(int fd, struct iovec* iov, int count, void*) { return ::writev(fd, iov, count); }
ssize_t Splice(int fdin, off_t* offin, int fdout, off_t* offout, size_t len, unsigned flags, void*) {
  return ::splice(fdin, offin, fdout, offout, len, flags);
}
const fuse_custom_io kReaderIo = {Writev, ReadRequestNotingFlags, Splice, Splice};

}  // namespace

bool InstallKillFlagReader(fuse_session* se) {
  return fuse_session_custom_io(se, &kReaderIo, fuse_session_fd(se)) == 0;
}

}  // namespace layerfs
