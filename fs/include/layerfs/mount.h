// layerfs: the FUSE filesystem that serves an image's merged layers straight from the store.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "layerstore/status.h"

namespace layerfs {

// One range of an id mapping, as fuse-overlayfs' uidmapping=/gidmapping= give it: ids
// [inside, inside+count) of the mount are ids [outside, outside+count) on disk.
struct IdMapping {
  uint32_t inside = 0;
  uint32_t outside = 0;
  uint32_t count = 0;
};

// What fuse-overlayfs' mount options ask of a mount over directory layers (and, where they make
// sense, over store layers too).
struct OverlayOptions {
  std::vector<IdMapping> uid_mappings;  // empty: ids as on disk
  std::vector<IdMapping> gid_mappings;
  std::optional<uid_t> squash_uid;      // squash_to_root / squash_to_uid: every owner shows as this
  std::optional<gid_t> squash_gid;
  bool static_nlink = false;            // directories report st_nlink 1 (no counting)
  bool sync = true;                     // false (volatile, fsync=0): fsync and syncfs are no-ops
  std::string fsname;                   // the source column of /proc/mounts; empty: a default
  std::vector<std::string> fuse_options;  // passed to the kernel as given (allow_other, ...)
};

struct MountOptions {
  std::string store_root;  // the layer store (layerstore::StoreOptions::root)
  std::string image;       // name or ID, resolved in the store
  std::string container;   // instead of image: a container of the store (its image + its layer)
  std::string mountpoint;
  std::string layer;       // non-empty: show only this layer as stored (1-based index or diff_id prefix)
  // Instead of an image: plain directories in overlayfs' format, top first (fuse-overlayfs'
  // lowerdir=). No store is opened.
  std::vector<std::string> lower_dirs;
  OverlayOptions overlay;
  // A writable layer over the image, in overlayfs' upper format. work_dir: scratch space on the
  // same filesystem. Both set: the image plus that layer; both empty: the image alone, read-only.
  // Set from the container's directory when `container` is given.
  std::string upper_dir;
  std::string work_dir;
  bool read_only = false;  // with upper_dir: show the layer but refuse changes
  // A container's layer that is about to be thrown away (`strata run --rm`, which Podman mounts
  // volatile for the same reason): nothing is synced (fsync, syncfs and copy-ups return without
  // waiting for the disk). The container's directory is marked `volatile` first, durably, and no
  // later mount of the container accepts a marked layer: after a crash its files may be
  // incomplete, as the kernel's overlayfs refuses a workdir its volatile mount marked.
  bool volatile_layer = false;
  // Let the kernel do file I/O on the backing file itself (FUSE passthrough) where it allows it
  // (Linux 6.9+, CAP_SYS_ADMIN, the layers on an unstacked filesystem): image files on their
  // objects, a container's files on their upper copies. An image mount then answers OPEN (a round
  // trip per open it otherwise avoids) and sends no READ; a container mount, no READ or WRITE
  // for upper files.
  bool passthrough = true;
  // Take requests from per-CPU io_uring queues (Linux 6.14+) instead of reading /dev/fuse: a
  // request is answered on the CPU that made it. Turns the fuse module's enable_uring parameter
  // on when it is off and the daemon runs as root; else, where the kernel does not offer it,
  // /dev/fuse as before.
  bool io_uring = true;
  bool foreground = false; // stay attached; else daemonize once the mount is ready
  bool debug = false;      // libfuse request tracing (implies foreground)
};

// A container's layer that a volatile mount wrote (MountOptions::volatile_layer) carries a
// marker in the container's directory for as long as the container lives. FailedPrecondition,
// saying what to do, when `container_dir` has it: no mount of such a layer is trusted again.
layerstore::Status CheckNotVolatile(const std::string& container_dir, const std::string& name);

// Mounts and serves until unmounted. In the background mode, returns in the parent once the
// mount is ready (0) or failed (1, error on stderr); the daemon child never returns. `daemon`
// (optional) receives the daemon's PID, a child of the caller: it exits once the mount is gone
// and, having let go of everything it held (the container's lock), waits to be reaped.
// Process exit code semantics: 0 success, 1 failure.
int RunMount(const MountOptions& options, pid_t* daemon = nullptr);

}  // namespace layerfs
