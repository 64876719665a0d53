// Starting a process inside a mounted rootfs, isolated as `docker run` isolates it: new mount,
// PID, UTS and IPC namespaces (and a network namespace with only loopback for --network none),
// pivot_root into the rootfs with /proc, a minimal /dev, a read-only /sys and the caller's bind
// mounts; capabilities cut to Docker's default set, the user switched, then exec.
//
// The caller must be single-threaded when it starts a container: the child is cloned without
// fork handlers and allocates before it execs.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "layerstore/status.h"
#include "layerstore/unique_fd.h"
#include "runtime/process.h"

namespace runtime {

struct BindMount {
  std::string source;       // host path
  std::string destination;  // absolute path in the container; created when missing
  bool read_only = false;
};

enum class Network { kHost, kNone };

struct ContainerSpec {
  std::string rootfs;  // a mount point (the union); this process's mount namespace is untouched
  Process process;
  std::string hostname;
  Network network = Network::kHost;
  std::vector<BindMount> mounts;  // in order: a later destination may sit inside an earlier one
  bool read_only_rootfs = false;
  bool keep_stdin = false;  // -i; without it the process reads /dev/null
  int output_fd = -1;       // when set (detached), stdout and stderr go here instead of ours
};

// Docker's capability set for containers (moby's oci/caps/defaults.go), as names.
const std::vector<std::string>& DefaultCapabilities();

// A process this process started and must wait for.
class Child {
 public:
  Child() = default;
  Child(pid_t pid, layerstore::UniqueFd pidfd, layerstore::UniqueFd pty_master)
      : pid_(pid), pidfd_(std::move(pidfd)), pty_master_(std::move(pty_master)) {}

  pid_t pid() const { return pid_; }
  int pidfd() const { return pidfd_.get(); }
  int pty_master() const { return pty_master_.get(); }  // -1 without a tty

 private:
  pid_t pid_ = -1;
  layerstore::UniqueFd pidfd_;
  layerstore::UniqueFd pty_master_;
};

// Why a start failed, with the exit code Docker gives it: 125 when the container could not be
// set up, 126 when the command cannot be executed, 127 when it is not found.
struct StartFailure {
  int exit_code = 125;
  layerstore::Status status;
};

// Creates in spec.rootfs the mount points StartContainer needs and the image lacks: /proc, /dev,
// /sys and each mount's destination (a directory, or an empty file for a bind of a file), as
// mkdir -p, every step confined to the rootfs. Returns the paths it created ("/proc",
// "/etc/hosts"), parents first; none when the image has them all. Docker makes these in a hidden
// init layer below the container's; strata makes them in the container's own layer before the
// start (StartContainer would make them too, but could not say which) so that the caller can
// record them for diff and commit to leave out.
layerstore::Result<std::vector<std::string>> MakeMountPoints(const ContainerSpec& spec);

// Starts spec.process as PID 1 of its new namespaces; returns once it has exec'd.
layerstore::Result<Child> StartContainer(const ContainerSpec& spec, StartFailure* failure);

// Where an exec'd process's stdio goes, and whether it dies with the strata process that
// started it (not when detached: it then runs on as a child of the container's init).
struct ExecIo {
  bool keep_stdin = false;
  int output_fd = -1;
  bool die_with_parent = true;
};

// Starts `process` inside the namespaces and root of the running container whose init is
// `init_pid` (and whose pidfd is `init_pidfd`), as `docker exec` does.
layerstore::Result<Child> ExecInContainer(int init_pidfd, pid_t init_pid, const Process& process, const ExecIo& io,
                                          StartFailure* failure);

// Waits for `child` to exit. SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to this
// process are passed on to it; with a pty, this process's stdin (when `relay_stdin`) and stdout
// are relayed to it, the terminal is put in raw mode meanwhile, and window size changes follow.
// Returns the exit code as a shell reports it: the status, or 128 + the signal that killed it.
int Supervise(Child& child, bool relay_stdin);

}  // namespace runtime
