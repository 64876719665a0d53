// The libfuse low-level operation tables; the only place that sees fuse_req_t.
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

namespace layerfs {

class UnionFs;

// An image mount: read-only, stateless. The userdata of the session is the Filesystem.
fuse_lowlevel_ops MakeOperations();

// A container mount: the image plus its writable layer. The userdata is the UnionFs.
fuse_lowlevel_ops MakeUnionOperations();

}  // namespace layerfs
