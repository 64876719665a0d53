#include "run_state.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "layerstore/store.h"
#include "layerstore/unique_fd.h"

namespace cli {

using layerstore::Status;
using nlohmann::json;

bool RunState::Alive() const { return running && layerstore::ProcessAlive(pid, pid_start_time); }

bool RunState::MonitorAlive() const { return layerstore::ProcessAlive(monitor_pid, monitor_start_time); }

layerstore::Result<RunState> ReadRunState(const std::string& container_dir) {
  std::string path = container_dir + "/state.json";
  std::ifstream in(path);
  RunState s;
  if (!in) {
    if (errno == ENOENT) return s;
    return Status::FromErrno("reading " + path, errno);
  }
  std::stringstream text;
  text << in.rdbuf();
  json j = json::parse(text.str(), nullptr, false);
  if (!j.is_object()) return Status::Corruption(path + " is not a JSON object");
  s.pid = j.value("Pid", 0);
  s.pid_start_time = j.value("PidStartTime", uint64_t{0});
  s.monitor_pid = j.value("MonitorPid", 0);
  s.monitor_start_time = j.value("MonitorStartTime", uint64_t{0});
  s.running = j.value("Running", false);
  s.exit_code = j.value("ExitCode", 0);
  s.started_at = j.value("StartedAt", int64_t{0});
  s.finished_at = j.value("FinishedAt", int64_t{0});
  s.mountpoint = j.value("Mountpoint", "");
  return s;
}

Status WriteRunState(const std::string& container_dir, const RunState& s) {
  json j = {{"Pid", s.pid},
            {"PidStartTime", s.pid_start_time},
            {"MonitorPid", s.monitor_pid},
            {"MonitorStartTime", s.monitor_start_time},
            {"Running", s.running},
            {"ExitCode", s.exit_code},
            {"StartedAt", s.started_at},
            {"FinishedAt", s.finished_at},
            {"Mountpoint", s.mountpoint}};
  std::string text = j.dump() + "\n";
  std::string path = container_dir + "/state.json";
  std::string tmp = path + "." + std::to_string(::getpid()) + ".tmp";
  layerstore::UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return Status::FromErrno("writing " + tmp, errno);
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    return Status::FromErrno("writing " + tmp, errno ? errno : EIO);
  fd.Reset();
  // No fsync: after a crash the process it describes is gone anyway, and Alive() says so.
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Status::FromErrno("renaming " + tmp, errno);
  return {};
}

}  // namespace cli
