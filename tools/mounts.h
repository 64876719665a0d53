// Mounts made by stratafs, for the commands that make or undo them: `mount`/`umount`, `rm -f`
// (unmounts the container first) and the temporary read-only container mounts that `commit` and
// `export` read from. stratafs runs as a separate process: it forks, and its parent exits once
// the mount is ready or failed, so nothing of this process (LMDB, loggers) crosses a fork.
//
// Not thread-safe; one command uses it at a time.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "layerstore/status.h"
#include "layerstore/store.h"

namespace cli {

// The stratafs binary: beside strata when installed, ../fs/stratafs in a build tree, else the
// one on PATH.
std::string FindStratafs();

// Runs stratafs with `args` (argv[0] excluded) and waits until it reports the mount ready (OK)
// or failed; stratafs has then already said why on stderr, so the error's message is empty.
layerstore::Status RunStratafs(const std::vector<std::string>& args);

// Unmounts `dir` as `strata umount` does: a mount whose daemon died (ENOTCONN) is detached, and
// without root fusermount3 -u does it. With `detach_if_busy` a busy mount is detached lazily (it
// goes once its last user leaves). *real (optional) receives the absolute path the mount lease is
// recorded under, also when the directory is no longer reachable.
layerstore::Status Unmount(const std::string& dir, bool detach_if_busy, std::string* real = nullptr);

// The live mount lease naming container `id`, if any.
layerstore::Result<std::optional<layerstore::MountLease>> LiveContainerMount(layerstore::Store& store,
                                                                             const std::string& id);

// A read-only view of a container's merged rootfs, for commit and export: the container's own
// mount when a live one exists, else a temporary read-only mount (`stratafs --container ID
// --read-only`) in a directory under the store's tmp/, unmounted and removed when the view is
// destroyed, also on every error path. Holds a WriteLease for its lifetime so that fsck leaves
// the temporary directory alone.
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
};

}  // namespace cli
