// Mounts made by the driver (fs/, layerfs::RunMount), for the commands that make or undo them:
// `mount`/`umount`, `rm -f` (unmounts the container first), `bundle`, and the temporary read-only
// container mounts that `commit` and `export` read from. The driver runs forked from this process
// rather than as a second program (no second program load: ~6 ms of a mount); the daemon child
// closes every inherited fd and opens the store itself, so nothing of this process's LMDB
// environment or loggers is used across the fork.
//
// Not thread-safe; one command uses it at a time.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "layerstore/status.h"
#include "layerstore/store.h"
#include "layerstore/unique_fd.h"

namespace cli {

// How a container's layer is mounted: read-only (changes refused), writable, or writable and
// volatile (layerfs::MountOptions::volatile_layer: for a container about to be removed).
enum class LayerMode { kReadOnly, kWritable, kVolatile };

// Mounts container `id` of the store at `root` on `dir` and returns once the mount is ready or
// failed; the driver has then already said why on stderr, so the error names only the container.
// `daemon` (optional): the serving daemon, our child (layerfs::RunMount).
layerstore::Status MountContainer(const std::string& root, const std::string& id, const std::string& name,
                                  const std::string& dir, LayerMode mode, pid_t* daemon = nullptr);

// Unmounts `dir` as `strata umount` does: a mount whose daemon died (ENOTCONN) is detached, and
// without root fusermount3 -u does it. With `detach_if_busy` a busy mount is detached lazily (it
// goes once its last user leaves). *real (optional) receives the absolute path the mount lease is
// recorded under, also when the directory is no longer reachable.
layerstore::Status Unmount(const std::string& dir, bool detach_if_busy, std::string* real = nullptr);

// A pidfd of the live daemon that serves `mountpoint` (absolute) by its lease, or an empty fd
// when none does. Take it before unmounting: the daemon drops its lease on the way out.
layerstore::UniqueFd DaemonOf(layerstore::Store& store, const std::string& mountpoint);

// Waits up to `limit` for the process of `pidfd` (empty: returns at once) to exit, and reaps it
// if it is our child: a daemon lets go of what it holds, a container's lock among them, as it
// exits, a moment after its mount went.
void AwaitExit(const layerstore::UniqueFd& pidfd, std::chrono::milliseconds limit);

// The live mount lease naming container `id`, if any.
layerstore::Result<std::optional<layerstore::MountLease>> LiveContainerMount(layerstore::Store& store,
                                                                             const std::string& id);

// A read-only view of a container's merged rootfs, for commit and export: the container's own
// mount when a live one exists, else a temporary read-only mount (MountContainer) in a directory
// under the store's tmp/, unmounted and removed when the view is destroyed, also on every error
// path. Holds a WriteLease for its lifetime so that fsck leaves the temporary directory alone.
class ContainerView final {
 public:
  static layerstore::Result<std::unique_ptr<ContainerView>> Open(layerstore::Store& store,
                                                                 const std::string& store_root,
                                                                 const layerstore::ContainerRecord& container);
  ~ContainerView();
  ContainerView(const ContainerView&) = delete;
  ContainerView& operator=(const ContainerView&) = delete;

  // The merged rootfs, absolute.
  const std::string& dir() const { return dir_; }

 private:
  explicit ContainerView(layerstore::Store& store) : store_(store) {}

  layerstore::Store& store_;
  std::unique_ptr<layerstore::WriteLease> lease_;
  std::string dir_;
  std::string scratch_;  // non-empty when we mounted dir_ (scratch_/rootfs) and must undo it
  layerstore::UniqueFd daemon_;  // with scratch_: a pidfd of the mount's daemon, our child
};

}  // namespace cli
