// The libfuse low-level operation tables; the only place that sees fuse_req_t.
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

namespace layerfs {

class Filesystem;
class PassthroughFiles;
class UnionFs;

// The userdata of an image mount's session.
struct ImageSession {
  Filesystem* fs;
  // Set once FUSE_INIT granted passthrough (before the session loop starts): OPEN is answered
  // with the file's backing object. Null (or refused later): the first OPEN is answered ENOSYS,
  // and the kernel sends no OPEN or RELEASE again (reads then go through READ and the page
  // cache).
  PassthroughFiles* passthrough = nullptr;
};
inline Filesystem& Target(ImageSession& session) { return *session.fs; }
inline UnionFs& Target(UnionFs& fs) { return fs; }

// An image mount: read-only, stateless. The userdata of the session is an ImageSession.
fuse_lowlevel_ops MakeOperations();

// A container mount: the image plus its writable layer. The userdata is the UnionFs.
fuse_lowlevel_ops MakeUnionOperations();

}  // namespace layerfs
