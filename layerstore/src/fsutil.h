// File helpers over a directory fd (the store root): atomic publish, reads, syncs. EINTR retried.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "layerstore/status.h"
#include "layerstore/unique_fd.h"

namespace layerstore::fsutil {

Status WriteAll(int fd, const void* data, size_t size, std::string_view what);
Result<std::string> ReadFileAt(int dirfd, const std::string& path);
Status MkdirAt(int dirfd, const std::string& path, mode_t mode);  // EEXIST is fine
Status FsyncPath(int dirfd, const std::string& path);               // a file or a directory
// Writes `data` to tmp/, fsyncs it, renames it to `path` and fsyncs path's directory.
Status WriteFileAtomicAt(int dirfd, const std::string& path, std::string_view data, mode_t mode);
// A new unique file in tmp/ open for writing; *name receives its path relative to the root.
Result<UniqueFd> CreateTemp(int dirfd, std::string* name);
// Names in a directory (without "." and ".."); none when it cannot be opened.
std::vector<std::string> ListDir(int dirfd, const std::string& path);
// Apparent-size-independent bytes a file occupies (st_blocks * 512); 0 when missing.
uint64_t AllocatedBytes(int dirfd, const std::string& path);
// Whether `path` (relative to dirfd, not followed) is the root of a mount.
bool IsMountPoint(int dirfd, const std::string& path);
// rm -rf of `path` (relative to dirfd): never follows a symlink and never descends into a mount
// (a directory on another device or a mount root is left in place, and the result is
// FailedPrecondition naming it); directories without write permission are made writable first.
// Removes all it can before returning the first error. OK when `path` does not exist.
Status RemoveTreeAt(int dirfd, const std::string& path);

}  // namespace layerstore::fsutil
