// Whether a container's process runs, and how it last ended: `state.json` in the container's
// directory, written (atomically) by the strata process that supervises the container, read by
// ps, exec, stop and rm. A state that says running is only believed while its init process
// (pid and start time) is still alive, so a supervisor killed with SIGKILL leaves nothing stale.
// Also `init.json`: the mount points strata made in the container's layer (its "init layer").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "layerstore/changes.h"
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

// The mount points strata made in the layer of the container in `container_dir` because its
// image lacked them (runtime::MakeMountPoints), which diff and commit leave out; empty for a
// container that never started. A record is kept for the container's life: a later start finds
// them made and adds nothing.
layerstore::Result<layerstore::InitPaths> ReadInitPaths(const std::string& container_dir);
// Adds `paths` to the record. Not synced: after a crash that loses it, diff and commit show the
// mount points, as they would any empty directory the container made.
layerstore::Status AddInitPaths(const std::string& container_dir, const std::vector<std::string>& paths);

// Replaces `path` by `text` in one step (a reader sees the old file or the new one), mode 0644.
// Not synced: for the container directory's small files, which a crash makes moot.
layerstore::Status ReplaceFile(const std::string& path, const std::string& text);

}  // namespace cli
