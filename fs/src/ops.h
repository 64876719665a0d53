// The libfuse low-level operation tables; the only place that sees fuse_req_t.
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

namespace layerfs {

class Filesystem;
class PassthroughFiles;
class UnionFs;

// The userdata of a session: the filesystem it serves, and the backing files of its open files.
template <class FS>
struct Session {
  FS* fs;
  // Set once FUSE_INIT granted passthrough, before the session loop starts. Null (or refused
  // later): an image mount answers its first OPEN ENOSYS, and the kernel sends no OPEN or RELEASE
  // again (reads then go through READ and the page cache); a container mount answers every open
  // in cached mode.
  PassthroughFiles* passthrough = nullptr;
  // A container mounted read-only: no open can write, so lower content may back passthrough opens
  // as in an image mount (in a writable one a later writer could not get its upper copy as the
  // inode's backing file). Image mounts are always read-only and ignore this.
  bool read_only = false;
  // A container mount granted FUSE_HANDLE_KILLPRIV_V2 (killpriv.h): the daemon clears setuid and
  // setgid where a write or truncation asks it to (union_ops.cc, KillSuidgid). Set before the
  // session loop starts.
  bool kills_suidgid = false;
  fuse_session* se = nullptr;  // for the notifications that follow such a change
};
using ImageSession = Session<Filesystem>;
using UnionSession = Session<UnionFs>;
template <class FS>
FS& Target(Session<FS>& session) {
  return *session.fs;
}

// An image mount: read-only, stateless. The userdata of the session is an ImageSession.
fuse_lowlevel_ops MakeOperations();

// A container mount: the image plus its writable layer. The userdata is a UnionSession.
fuse_lowlevel_ops MakeUnionOperations();

}  // namespace layerfs
