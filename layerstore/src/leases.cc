// Mount leases: which images live mounts use, so deleters keep their files.
#include <signal.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "store_impl.h"

namespace layerstore {

uint64_t ProcessStartTime(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name may hold spaces and parentheses: fields count from the last ')'.
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 22) return std::stoull(field);
  }
  return 0;
}

bool ProcessAlive(int pid, uint64_t start_time) {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno != EPERM) return false;
  return ProcessStartTime(pid) == start_time;
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
