// Container changes: what a container's writable layer changes in its image, and the tars that
// `docker commit` and `docker export` make of a container.
//
// The writable layer is an overlayfs-format upper directory (containers/<id>/upper, written by
// the FUSE driver; docs/ARCHITECTURE.md, "Containers"):
//   - a deletion is a whiteout: a character device 0:0 with the deleted name;
//   - a directory hiding everything below it carries trusted.overlay.opaque = "y";
//   - a directory renamed from a lower layer carries trusted.overlay.redirect = the lower path it
//     came from ("/usr/share/doc"; a path without '/' is a name in its parent's lower directory),
//     and its old name holds a whiteout;
//   - a file whose metadata alone changed carries trusted.overlay.metacopy and has no data.
// The upper directory only decides WHICH paths changed. Contents and metadata (data of metacopy
// files, xattrs as the user sees them) are read from the container's merged view: a directory
// where the container is mounted. The image side is the image's merged RootfsIndex.
//
// Plain functions, no state; safe to call from any thread. A container written to meanwhile
// gives a result that mixes before and after (as `docker commit --pause=false`).
#pragma once

#include <set>
#include <string>
#include <vector>

#include "layerstore/io.h"
#include "layerstore/rootfs.h"
#include "layerstore/status.h"

namespace layerstore {

struct Change {
  enum Kind : char { kModified = 'C', kAdded = 'A', kDeleted = 'D' };
  Kind kind = kModified;
  std::string path;  // absolute: "/etc/passwd"
};

// The mount points strata made in a container's layer because its image lacked them: /proc,
// /dev, /sys, /etc/hosts, /etc/hostname, /etc/resolv.conf, volume targets (runtime
// MakeMountPoints); absolute paths. Docker makes these in a hidden "init layer" between the image
// and the container's layer, so its diff and commit never see them; strata's diff and commit
// leave such a path out while it is still what was made: a directory with no change below it but
// other such paths, or an empty regular file. An image directory that the layer holds only
// because one of them was made in it (a copy-up that kept the image's mode and owner) goes with
// them. Anything else there, or a made path the user filled, shows as any change does. A list
// kept beside the layer rather than a mark (an xattr) on each entry: a mark would be seen by the
// user, carried into commit's tar, and copied along by copy-up and rename.
using InitPaths = std::set<std::string>;

// `docker diff`: every path the upper directory makes differ from `image`, sorted by path (bytes).
// A path in the container's view that also exists in the image is C (so every directory on the
// way to a change shows as C), one the image lacks is A, an image path the view no longer has is
// D (only the top of a deleted tree). An opaque directory is C, with D for each image child it
// hides; a directory renamed from the image is A with all it holds, and its old path D. What
// `init` lists is left out while unchanged (see InitPaths).
// NotFound when upper_dir does not exist; IOError when it cannot be read.
Result<std::vector<Change>> ContainerChanges(const RootfsIndex& image, const std::string& upper_dir,
                                             const InitPaths& init);

// `docker commit`'s layer: writes to `sink` an uncompressed OCI layer tar that, applied over
// `image`, gives the container's view. A, C paths become entries read from `view_dir` (content,
// mode, owner, mtime in whole seconds as Docker writes them, xattrs, link target, device numbers;
// files sharing an inode become tar hardlinks); D paths become ".wh.NAME" whiteouts; an opaque or
// renamed directory that replaces an image directory gets ".wh..wh..opq" (OCI layers cannot
// express a rename, so a renamed tree is written whole at its new path). Parents come before
// their children; the root itself is not an entry. The paths ContainerChanges leaves out for
// `init` are not written.
Status WriteContainerLayer(const RootfsIndex& image, const std::string& upper_dir, const InitPaths& init,
                           const std::string& view_dir, ByteSink& sink);

// `docker export`: everything below `dir` as one uncompressed tar, parents first and names in
// byte order, with the same entry rules as WriteContainerLayer (sockets are skipped, as Docker
// does). The root itself is not an entry.
Status WriteDirectoryTar(const std::string& dir, ByteSink& sink);

}  // namespace layerstore
