// Whether a container's process runs, and how it last ended: `state.json` in the container's
// directory, written (atomically) by the strata process that supervises the container, read by
// ps, exec, stop and rm. A state that says running is only believed while its init process
// (pid and start time) is still alive, so a supervisor killed with SIGKILL leaves nothing stale.
#pragma once

#include <cstdint>
#include <string>

#include "layerstore/status.h"

namespace cli {

struct RunState {
  int pid = 0;                    // the container's init, in this PID namespace
  uint64_t pid_start_time = 0;    // /proc/PID/stat field 22, against PID reuse
  int monitor_pid = 0;            // the strata process that waits for it and cleans up
  uint64_t monitor_start_time = 0;
  bool running = false;
  int exit_code = 0;
  int64_t started_at = 0;         // unix seconds
  int64_t finished_at = 0;
  std::string mountpoint;         // the union the container runs in

  // Running, and its init is the process recorded (not a reused PID).
  bool Alive() const;
  bool MonitorAlive() const;
};

// The state in `container_dir`; a container that never ran has the default state.
layerstore::Result<RunState> ReadRunState(const std::string& container_dir);
layerstore::Status WriteRunState(const std::string& container_dir, const RunState& state);

}  // namespace cli
