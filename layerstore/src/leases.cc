// Mount leases: which images live mounts use, so deleters keep their files.
#include <signal.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <utility>

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

Status StoreImpl::AddMountLease(const MountLease& lease) {
  Tables t;
  LS_ASSIGN_OR_RETURN(lmdb::Txn txn, Begin(true, &t));
  LS_RETURN_IF_ERROR(txn.Put(t.leases, lease.mountpoint, EncodeLease(lease)));
  return txn.Commit();
}

Status StoreImpl::RemoveMountLease(const std::string& mountpoint) {
  Tables t;
  LS_ASSIGN_OR_RETURN(lmdb::Txn txn, Begin(true, &t));
  LS_RETURN_IF_ERROR(txn.Del(t.leases, mountpoint).status());
  return txn.Commit();
}

Result<std::vector<MountLease>> StoreImpl::ListMountLeases() {
  Tables t;
  LS_ASSIGN_OR_RETURN(lmdb::Txn txn, Begin(false, &t));
  std::vector<MountLease> out;
  LS_RETURN_IF_ERROR(txn.Scan(t.leases, "", [&](std::string_view key, std::string_view value) {
    auto lease = DecodeLease(key, value);
    if (lease.ok()) out.push_back(*lease);
    return true;
  }));
  return out;
}

Result<std::optional<std::string>> StoreImpl::MountedAt(lmdb::Txn& txn, const Tables& t, const Digest& id) {
  std::optional<std::string> where;
  LS_RETURN_IF_ERROR(txn.Scan(t.leases, "", [&](std::string_view key, std::string_view value) {
    auto lease = DecodeLease(key, value);
    if (lease.ok() && lease->image == id && ProcessAlive(lease->pid, lease->start_time)) {
      where = lease->mountpoint;
      return false;
    }
    return true;
  }));
  return where;
}

}  // namespace layerstore
