// Mount leases: which images and containers live mounts use, so deleters keep them.
#include <signal.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

#include "fsutil.h"
#include "paths.h"
#include "store_impl.h"

namespace layerstore {

namespace {

// Fields 3 (state) and 22 (start time) of /proc/PID/stat; start time 0 when unreadable.
std::pair<char, uint64_t> StateAndStartTime(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name may hold spaces and parentheses: fields count from the last ')'.
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return {'?', 0};
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  char state = '?';
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 3) state = field[0];
    if (i == 22) return {state, std::stoull(field)};
  }
  return {state, 0};
}

}  // namespace

uint64_t ProcessStartTime(int pid) { return StateAndStartTime(pid).second; }

bool ProcessAlive(int pid, uint64_t start_time) {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno != EPERM) return false;
  // A zombie has ended: its parent (or an init that does not reap) just has not collected it.
  auto [state, started] = StateAndStartTime(pid);
  return state != 'Z' && state != 'X' && started == start_time;
}

// A lease is a file under mounts/, named by the SHA-256 of its mountpoint and holding JSON
//   {"mountpoint": "/mnt/x", "image": "sha256:...", "pid": 123, "start_time": 456, "container": "<id>"}
// ("container" for a container's mount only), written in tmp/ and renamed into place, so a
// reader finds a whole lease or none. Never synced: a lease describes a live process, and a crash
// of the machine ends them all; what a crash leaves names a dead process, which readers ignore
// and fsck removes. Not in LMDB, so that a mount and its unmount neither pay a sync nor wait for
// an import's write transaction.
namespace {

std::string EncodeLease(const MountLease& l) {
  nlohmann::json j = {{"mountpoint", l.mountpoint}, {"image", l.image.str()}, {"pid", l.pid},
                      {"start_time", l.start_time}};
  if (!l.container_id.empty()) j["container"] = l.container_id;
  return j.dump() + "\n";
}

std::optional<MountLease> DecodeLease(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto mountpoint = j.find("mountpoint");
  auto image = j.find("image");
  auto pid = j.find("pid");
  auto start_time = j.find("start_time");
  auto container = j.find("container");
  if (mountpoint == j.end() || !mountpoint->is_string() || image == j.end() || !image->is_string() ||
      pid == j.end() || !pid->is_number_integer() || start_time == j.end() || !start_time->is_number_unsigned() ||
      (container != j.end() && !container->is_string())) {
    return std::nullopt;
  }
  auto digest = Digest::Parse(image->get<std::string>());
  if (!digest.ok()) return std::nullopt;
  MountLease l;
  l.mountpoint = mountpoint->get<std::string>();
  l.image = *digest;
  l.pid = pid->get<int>();
  l.start_time = start_time->get<uint64_t>();
  if (container != j.end()) l.container_id = container->get<std::string>();
  return l;
}

}  // namespace

Status StoreImpl::AddMountLease(const MountLease& lease) {
  std::string tmp;
  LS_ASSIGN_OR_RETURN(UniqueFd fd, fsutil::CreateTemp(root_fd_.get(), &tmp));
  const std::string text = EncodeLease(lease);
  const std::string name = paths::LeaseFile(lease.mountpoint);
  Status s = fsutil::WriteAll(fd.get(), text.data(), text.size(), tmp);
  if (s.ok() && ::renameat(root_fd_.get(), tmp.c_str(), root_fd_.get(), name.c_str()) != 0) {
    s = Status::FromErrno("recording the lease of " + lease.mountpoint + " in " + name, errno);
  }
  if (!s.ok()) ::unlinkat(root_fd_.get(), tmp.c_str(), 0);
  return s;
}

Status StoreImpl::RemoveMountLease(const std::string& mountpoint) {
  const std::string name = paths::LeaseFile(mountpoint);
  if (::unlinkat(root_fd_.get(), name.c_str(), 0) != 0 && errno != ENOENT) {
    return Status::FromErrno("removing the lease of " + mountpoint + " (" + name + ")", errno);
  }
  return Status();
}

std::vector<std::pair<std::string, std::optional<MountLease>>> StoreImpl::LeaseFiles() {
  std::vector<std::pair<std::string, std::optional<MountLease>>> out;
  for (std::string& name : fsutil::ListDir(root_fd_.get(), paths::kMountsDir)) {
    auto text = fsutil::ReadFileAt(root_fd_.get(), std::string(paths::kMountsDir) + "/" + name);
    if (!text.ok() && text.status().IsNotFound()) continue;  // removed meanwhile: the mount went
    std::optional<MountLease> lease = text.ok() ? DecodeLease(*text) : std::nullopt;
    out.emplace_back(std::move(name), std::move(lease));
  }
  return out;
}

Result<std::vector<MountLease>> StoreImpl::ListMountLeases() {
  std::vector<MountLease> out;
  for (auto& [name, lease] : LeaseFiles()) {
    if (lease) out.push_back(std::move(*lease));
  }
  std::sort(out.begin(), out.end(), [](const MountLease& a, const MountLease& b) { return a.mountpoint < b.mountpoint; });
  return out;
}

std::vector<MountLease> StoreImpl::LiveMountLeases() {
  std::vector<MountLease> out;
  for (auto& [name, lease] : LeaseFiles()) {
    if (lease && ProcessAlive(lease->pid, lease->start_time)) out.push_back(std::move(*lease));
  }
  return out;
}

}  // namespace layerstore
