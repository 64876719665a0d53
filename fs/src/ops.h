// The libfuse low-level operations table; the only place that sees fuse_req_t.
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

namespace layerfs {

class Filesystem;

// Every implemented operation, in one place. The userdata of the session is the Filesystem.
fuse_lowlevel_ops MakeOperations();

}  // namespace layerfs
