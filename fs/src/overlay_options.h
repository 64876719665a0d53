// fuse-overlayfs' command line, as stratafs takes it to be a drop-in for it: the values of `-o`
// folded into MountOptions (directory layers, the writable layer, OverlayOptions), and the
// positional words of `fuse-overlayfs [-o OPTS] MOUNTPOINT` or of mount.fuse3's
// `stratafs SOURCE MOUNTPOINT -o OPTS`.
//
// Pure functions: no I/O (paths are taken as given, not resolved), no globals; call them from any
// thread. Which options exist, and which of them strata honours, passes on to the kernel or
// accepts and ignores, is listed in stratafs(1).
#pragma once

#include <string>
#include <vector>

#include "layerfs/mount.h"
#include "layerstore/status.h"

namespace layerfs {

// Applies every option of every `-o` value, in order, to `options`. Each value is a
// comma-separated list; a backslash takes the next character literally (libfuse's escaping, so
// `lowerdir=/a\,b` names one directory) and commas between double quotes do not split (libmount's
// quoting, which containers/storage uses for context="...:c1,c2"). As in fuse-overlayfs, a later
// value of the same option wins.
// On success sets lower_dirs (top first), upper_dir, work_dir, read_only (also when there is no
// upper_dir: such a mount is read-only), debug, passthrough, io_uring and overlay; the other fields are left
// alone.
// On failure returns InvalidArgument naming the offending option ("unknown option 'X'", or
// "option 'X': why") and leaves `options` partly filled.
// REQUIRES: option_groups is not empty (without -o this is not the fuse-overlayfs form).
layerstore::Status ParseOverlayOptions(const std::vector<std::string>& option_groups, MountOptions* options);

// ParseOverlayOptions, then the positional words: MOUNTPOINT, or SOURCE MOUNTPOINT as mount.fuse3
// passes them. SOURCE names no data (lowerdir= does); it becomes the mount's fsname unless
// fsname= is given, so /proc/mounts shows what was passed to mount(8), as for any other mount.
layerstore::Status ParseOverlayCommandLine(const std::vector<std::string>& option_groups,
                                           const std::vector<std::string>& positional, MountOptions* options);

}  // namespace layerfs
