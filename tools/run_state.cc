#include "run_state.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "layerstore/store.h"
#include "layerstore/unique_fd.h"

namespace cli {

using layerstore::Status;
using nlohmann::json;

namespace {

// The JSON object in `path`; nullopt when there is no such file.
layerstore::Result<std::optional<json>> ReadJsonObject(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return std::optional<json>();
    return Status::FromErrno("reading " + path, errno);
  }
  std::stringstream text;
  text << in.rdbuf();
  json j = json::parse(text.str(), nullptr, false);
  if (!j.is_object()) return Status::Corruption(path + " is not a JSON object");
  return std::optional<json>(std::move(j));
}

}  // namespace

bool RunState::Alive() const { return running && layerstore::ProcessAlive(pid, pid_start_time); }

bool RunState::MonitorAlive() const { return layerstore::ProcessAlive(monitor_pid, monitor_start_time); }

layerstore::Result<RunState> ReadRunState(const std::string& container_dir) {
  LS_ASSIGN_OR_RETURN(std::optional<json> read, ReadJsonObject(container_dir + "/state.json"));
  RunState s;
  if (!read) return s;
  const json& j = *read;
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
  // No fsync: after a crash the process it describes is gone anyway, and Alive() says so.
  return ReplaceFile(container_dir + "/state.json", j.dump() + "\n");
}

layerstore::Result<layerstore::InitPaths> ReadInitPaths(const std::string& container_dir) {
  const std::string path = container_dir + "/init.json";
  LS_ASSIGN_OR_RETURN(std::optional<json> read, ReadJsonObject(path));
  layerstore::InitPaths paths;
  if (!read) return paths;
  const json& list = (*read)["MountPoints"];
  if (!list.is_array()) return Status::Corruption(path + " has no MountPoints array");
  for (const json& p : list) {
    if (!p.is_string()) return Status::Corruption(path + " lists a mount point that is not a string");
    paths.insert(p.get<std::string>());
  }
  return paths;
}

Status AddInitPaths(const std::string& container_dir, const std::vector<std::string>& paths) {
  if (paths.empty()) return {};
  LS_ASSIGN_OR_RETURN(layerstore::InitPaths all, ReadInitPaths(container_dir));
  all.insert(paths.begin(), paths.end());
  json j = {{"MountPoints", all}};
  return ReplaceFile(container_dir + "/init.json", j.dump() + "\n");
}

Status ReplaceFile(const std::string& path, const std::string& text) {
  std::string tmp = path + "." + std::to_string(::getpid()) + ".tmp";
  layerstore::UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return Status::FromErrno("writing " + tmp, errno);
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    return Status::FromErrno("writing " + tmp, errno ? errno : EIO);
  fd.Reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Status::FromErrno("renaming " + tmp, errno);
  return {};
}

}  // namespace cli
