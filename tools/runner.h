// What run, start, exec, stop, rm and bundle share: the `docker run` flags and the container
// config they make, mounting a container for its process and unmounting it after, the spec a
// container runs with, and waiting for a container's process to end.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "container_config.h"
#include "context.h"
#include "layerstore/store.h"
#include "layerstore/unique_fd.h"
#include "mounts.h"
#include "run_state.h"
#include "runtime/container.h"

namespace cli {

// Exit codes of run/start/exec beside the process's own (Docker's).
constexpr int kExitRuntime = 125;

// The flags `create` and `run` share, as Docker's.
struct RunFlags {
  std::string name;
  std::vector<std::string> env;
  std::vector<std::string> env_files;
  std::string workdir;
  std::string user;
  std::vector<std::string> volumes;
  std::optional<std::string> entrypoint;
  std::string hostname;
  std::string network = "host";
  bool interactive = false;
  bool tty = false;
  bool read_only = false;
  std::string image;
};
void AddRunFlags(CLI::App* cmd, RunFlags& flags);
// The flags and the command after IMAGE, checked (a bad -v, --network or env file is named).
layerstore::Result<ContainerConfig> ConfigFromFlags(const RunFlags& flags, const std::vector<std::string>& command);

// Everything after IMAGE (or CONTAINER) is the command, so CLI11 hands back an unknown option
// given before it as the command's first word too. InvalidArgument ("unknown flag: --x") when
// `command`'s first word comes before `positional` on the command line and looks like a flag.
layerstore::Status CheckNoUnknownFlag(const Context& ctx, const std::string& positional,
                                      const std::vector<std::string>& command);

// Where a container's process runs: its live mount (made by `strata mount --container`, left as
// it is afterwards) or one made now under the container's directory and undone by Release().
// `mode`: how a mount made now shows the layer (kVolatile for a container removed after its run).
class RunMount {
 public:
  static layerstore::Result<RunMount> Acquire(Context& ctx, layerstore::Store& store,
                                              const layerstore::ContainerRecord& c, LayerMode mode);
  const std::string& dir() const { return dir_; }
  // Unmounts if this run mounted it, and waits for its daemon to exit, until `deadline` (a mount
  // detached while busy lives on): then it has let go of the container's lock, and the container
  // can be started, mounted or removed at once.
  void Release(layerstore::Store& store, std::chrono::steady_clock::time_point deadline);

 private:
  std::string dir_;
  bool owned_ = false;
  layerstore::UniqueFd daemon_;  // pidfd of the daemon of the mount this run unmounts
};

// The spec to run container `c` over `rootfs`: its config applied to its image's, with
// /etc/hosts, /etc/hostname and /etc/resolv.conf written to the container's directory, and the
// mount points the image lacks made in `rootfs` and recorded (AddInitPaths).
layerstore::Result<runtime::ContainerSpec> BuildSpec(layerstore::Store& store, const layerstore::ContainerRecord& c,
                                                      const ContainerConfig& config, const std::string& rootfs);

// Runs container `c` to its end: mounts, starts, records the state, supervises, records the
// exit, unmounts; with `remove` the container is removed afterwards. `output_fd` >= 0 sends the
// process's output there (detached). `on_started` is called with 0 once the process runs, or
// with the failure's exit code. Returns the exit code for strata to exit with.
int RunToEnd(Context& ctx, layerstore::Store& store, const layerstore::ContainerRecord& c, bool remove,
             int output_fd, const std::function<void(int)>& on_started);

// Runs `body` in a detached child (its own session, stdin from /dev/null) and returns once the
// child reports through its on_started callback: 0 when the container runs, else the exit code.
// The child opens its own store: an LMDB environment must not cross a fork.
int Detach(const std::function<int(const std::function<void(int)>& on_started)>& body);

// Stops container `c`'s process as `docker stop` does: SIGTERM, then SIGKILL after `timeout`
// seconds, and waits until its supervisor has cleaned up. OK when it was not running.
layerstore::Status StopContainer(layerstore::Store& store, const layerstore::ContainerRecord& c, int timeout);

}  // namespace cli
