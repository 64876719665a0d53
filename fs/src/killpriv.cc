#include "killpriv.h"

#include <linux/fuse.h>

#include <cstring>

namespace layerfs {
namespace {

thread_local bool t_kill_suidgid = false;

template <class In>
bool Read(const void* op_in, size_t op_size, In* in) {
  if (op_size < sizeof *in) return false;
  std::memcpy(in, op_in, sizeof *in);
  return true;
}

}  // namespace

bool RequestKillsSuidgid(uint32_t opcode, const void* op_in, size_t op_size) {
  switch (opcode) {
    case FUSE_WRITE: {
      fuse_write_in in;
      return Read(op_in, op_size, &in) && (in.write_flags & FUSE_WRITE_KILL_SUIDGID);
    }
    case FUSE_SETATTR: {
      fuse_setattr_in in;
      return Read(op_in, op_size, &in) && (in.valid & FATTR_KILL_SUIDGID);
    }
    case FUSE_OPEN: {
      fuse_open_in in;
      return Read(op_in, op_size, &in) && (in.open_flags & FUSE_OPEN_KILL_SUIDGID);
    }
    case FUSE_CREATE: {
      fuse_create_in in;
      return Read(op_in, op_size, &in) && (in.open_flags & FUSE_OPEN_KILL_SUIDGID);
    }
    default:
      return false;
  }
}

void SetCurrentRequestKillsSuidgid(bool kill) { t_kill_suidgid = kill; }
bool CurrentRequestKillsSuidgid() { return t_kill_suidgid; }

}  // namespace layerfs
