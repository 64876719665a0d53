#include "mounts.h"

#include <limits.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "layerfs/mount.h"

namespace cli {

layerstore::Status MountContainer(const std::string& root, const std::string& id, const std::string& name,
                                  const std::string& dir, LayerMode mode, pid_t* daemon) {
  layerfs::MountOptions options;
  options.store_root = root;
  options.container = id;
  options.mountpoint = dir;
  options.read_only = mode == LayerMode::kReadOnly;
  options.volatile_layer = mode == LayerMode::kVolatile;
  if (layerfs::RunMount(options, daemon) != 0) {
    return layerstore::Status::FailedPrecondition("could not mount container " + name + " (stratafs said why above)");
  }
  return {};
}

layerstore::Status Unmount(const std::string& dir, bool detach_if_busy, std::string* real_out) {
  char real[PATH_MAX];
  std::string where;
  if (!::realpath(dir.c_str(), real)) {
    // A mount whose daemon died answers ENOTCONN to stat: detach it by the name given.
    if (errno != ENOTCONN || ::umount2(dir.c_str(), MNT_DETACH) != 0) {
      return layerstore::Status::FromErrno("umount " + dir, errno);
    }
    std::error_code ec;
    where = std::filesystem::absolute(dir, ec).lexically_normal().string();
    if (ec) where = dir;
    if (where.size() > 1 && where.back() == '/') where.pop_back();
  } else {
    where = real;
    if (::umount2(real, 0) != 0) {
      int err = errno;
      if (err == ENOTCONN && ::umount2(real, MNT_DETACH) == 0) {
        // the daemon was dead
      } else if (err == EBUSY && detach_if_busy && ::umount2(real, MNT_DETACH) == 0) {
        // detached; it goes when its last user leaves
      } else if (err == EPERM && ::geteuid() != 0) {
        std::string cmd = "fusermount3 -u " + std::string(detach_if_busy ? "-z " : "") + "'" + where + "'";
        if (std::system(cmd.c_str()) != 0) return layerstore::Status::FromErrno("umount " + where, err);
      } else {
        return layerstore::Status::FromErrno("umount " + where, err);
      }
    }
  }
  if (real_out) *real_out = where;
  return {};
}

layerstore::UniqueFd DaemonOf(layerstore::Store& store, const std::string& mountpoint) {
  auto leases = store.ListMountLeases();
  if (!leases.ok()) return {};
  for (const auto& lease : *leases) {
    if (lease.mountpoint != mountpoint) continue;
    layerstore::UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, lease.pid, 0)));
    // Checked after opening: the fd then refers to the daemon, not to a process that reused its pid.
    if (pidfd && layerstore::ProcessAlive(lease.pid, lease.start_time)) return pidfd;
  }
  return {};
}

void AwaitExit(const layerstore::UniqueFd& pidfd, std::chrono::milliseconds limit) {
  if (!pidfd) return;
  pollfd p{pidfd.get(), POLLIN, 0};
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return;
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) break;
    if (n == 0 || errno != EINTR) return;
  }
  siginfo_t info;  // a daemon that is not our child (ECHILD) is reaped by its parent
  ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd.get()), &info, WEXITED | WNOHANG);
}

layerstore::Result<std::optional<layerstore::MountLease>> LiveContainerMount(layerstore::Store& store,
                                                                             const std::string& id) {
  LS_ASSIGN_OR_RETURN(std::vector<layerstore::MountLease> leases, store.ListMountLeases());
  for (const auto& lease : leases) {
    if (lease.container_id == id && layerstore::ProcessAlive(lease.pid, lease.start_time)) {
      return std::optional<layerstore::MountLease>(lease);
    }
  }
  return std::optional<layerstore::MountLease>();
}

layerstore::Result<std::unique_ptr<ContainerView>> ContainerView::Open(layerstore::Store& store,
                                                                       const std::string& store_root,
                                                                       const layerstore::ContainerRecord& container) {
  std::unique_ptr<ContainerView> view(new ContainerView(store));
  LS_ASSIGN_OR_RETURN(view->lease_, store.AcquireWriteLease());
  LS_ASSIGN_OR_RETURN(auto live, LiveContainerMount(store, container.id));
  if (live) {
    view->dir_ = live->mountpoint;
    return view;
  }
  LS_ASSIGN_OR_RETURN(std::string scratch, store.MakeTempDir());
  std::string mnt = scratch + "/rootfs";
  if (::mkdir(mnt.c_str(), 0700) != 0) {
    int err = errno;
    ::rmdir(scratch.c_str());
    return layerstore::Status::FromErrno("creating " + mnt, err);
  }
  pid_t daemon = -1;
  layerstore::Status s = MountContainer(store_root, container.id, container.name, mnt, LayerMode::kReadOnly, &daemon);
  if (!s.ok()) {
    ::rmdir(mnt.c_str());
    ::rmdir(scratch.c_str());
    return s;
  }
  view->scratch_ = std::move(scratch);
  view->dir_ = std::move(mnt);
  if (daemon > 0) view->daemon_.Reset(static_cast<int>(::syscall(SYS_pidfd_open, daemon, 0)));
  return view;
}

ContainerView::~ContainerView() {
  if (scratch_.empty()) return;
  // A reader that just closed its last file may keep the mount busy for a moment.
  std::string real;
  layerstore::Status s;
  for (int attempt = 0; attempt < 50; ++attempt) {
    s = Unmount(dir_, attempt == 49, &real);
    if (s.ok() || s.posix_errno() != EBUSY) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!s.ok()) {
    std::fprintf(stderr, "Error: %s (the temporary mount stays; strata umount it)\n", s.message().c_str());
    return;
  }
  (void)store_.RemoveMountLease(real);
  ::rmdir(dir_.c_str());
  ::rmdir(scratch_.c_str());
  // The container stays locked until the daemon is gone: a start right after a commit finds it free.
  AwaitExit(daemon_, std::chrono::seconds(10));
}

}  // namespace cli
