#include "lmdb_env.h"

#include <utility>

namespace layerstore::lmdb {
namespace {

MDB_val Val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
std::string_view View(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

struct CursorClose {
  void operator()(MDB_cursor* c) const noexcept { mdb_cursor_close(c); }
};
using CursorPtr = std::unique_ptr<MDB_cursor, CursorClose>;

}  // namespace

Status Error(std::string_view context, int rc) {
  std::string msg = std::string(context) + ": " + mdb_strerror(rc);
  switch (rc) {
    case MDB_NOTFOUND:
      return Status::NotFound(std::move(msg));
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
      return Status::ResourceExhausted(msg + " (the metadata map is full)");
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
      return Status::Corruption(std::move(msg));
    default:
      if (rc > 0) return Status::FromErrno(context, rc);
      return Status::IOError(std::move(msg));
  }
}

Result<std::unique_ptr<Env>> Env::Open(const std::string& dir, size_t map_size) {
  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc != 0) return Error("mdb_env_create", rc);
  std::unique_ptr<Env> owner(new Env(env));
  if ((rc = mdb_env_set_maxdbs(env, 16)) != 0) return Error("mdb_env_set_maxdbs", rc);
  if ((rc = mdb_env_set_mapsize(env, map_size)) != 0) return Error("mdb_env_set_mapsize", rc);
  // NOTLS: read transactions may be used by whichever thread holds them (FUSE workers).
  // NORDAHEAD: lookups are random; readahead only pollutes the page cache.
  rc = mdb_env_open(env, dir.c_str(), MDB_NOTLS | MDB_NORDAHEAD, 0600);
  if (rc != 0) return Error("opening metadata database " + dir, rc);
  return owner;
}

Env::~Env() { mdb_env_close(env_); }

Result<Txn> Txn::Begin(Env& env, bool write) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env.get(), nullptr, write ? 0 : MDB_RDONLY, &txn);
  if (rc != 0) return Error(write ? "beginning write transaction" : "beginning read transaction", rc);
  return Txn(txn, write);
}

Status Txn::Commit() {
  if (!txn_) return Status::FailedPrecondition("commit of a finished transaction");
  int rc = mdb_txn_commit(std::exchange(txn_, nullptr));
  if (rc != 0) return Error("committing metadata transaction", rc);
  return {};
}

Result<MDB_dbi> Txn::Open(const char* name) {
  MDB_dbi dbi;
  int rc = mdb_dbi_open(txn_, name, write_ ? MDB_CREATE : 0, &dbi);
  if (rc != 0) return Error(std::string("opening table ") + name, rc);
  return dbi;
}

Result<std::optional<std::string_view>> Txn::Get(MDB_dbi dbi, std::string_view key) {
  MDB_val k = Val(key), v;
  int rc = mdb_get(txn_, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<std::string_view>();
  if (rc != 0) return Error("reading metadata", rc);
  return std::optional<std::string_view>(View(v));
}

Status Txn::Put(MDB_dbi dbi, std::string_view key, std::string_view value) {
  MDB_val k = Val(key), v = Val(value);
  int rc = mdb_put(txn_, dbi, &k, &v, 0);
  if (rc != 0) return Error("writing metadata", rc);
  return {};
}

Result<bool> Txn::Del(MDB_dbi dbi, std::string_view key) {
  MDB_val k = Val(key);
  int rc = mdb_del(txn_, dbi, &k, nullptr);
  if (rc == MDB_NOTFOUND) return false;
  if (rc != 0) return Error("deleting metadata", rc);
  return true;
}

Status Txn::Scan(MDB_dbi dbi, std::string_view prefix,
                 const std::function<bool(std::string_view, std::string_view)>& fn) {
  MDB_cursor* raw = nullptr;
  int rc = mdb_cursor_open(txn_, dbi, &raw);
  if (rc != 0) return Error("opening cursor", rc);
  CursorPtr cursor(raw);
  MDB_val k = Val(prefix), v;
  rc = mdb_cursor_get(raw, &k, &v, prefix.empty() ? MDB_FIRST : MDB_SET_RANGE);
  while (rc == 0) {
    std::string_view key = View(k);
    if (key.substr(0, prefix.size()) != prefix) break;
    if (!fn(key, View(v))) return {};
    rc = mdb_cursor_get(raw, &k, &v, MDB_NEXT);
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return Error("scanning metadata", rc);
  return {};
}

Result<uint64_t> Txn::DeletePrefix(MDB_dbi dbi, std::string_view prefix) {
  MDB_cursor* raw = nullptr;
  int rc = mdb_cursor_open(txn_, dbi, &raw);
  if (rc != 0) return Error("opening cursor", rc);
  CursorPtr cursor(raw);
  uint64_t deleted = 0;
  MDB_val k = Val(prefix), v;
  rc = mdb_cursor_get(raw, &k, &v, prefix.empty() ? MDB_FIRST : MDB_SET_RANGE);
  while (rc == 0 && View(k).substr(0, prefix.size()) == prefix) {
    if ((rc = mdb_cursor_del(raw, 0)) != 0) return Error("deleting metadata", rc);
    ++deleted;
    // After mdb_cursor_del, MDB_NEXT yields the item that followed the deleted one.
    rc = mdb_cursor_get(raw, &k, &v, MDB_NEXT);
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return Error("deleting metadata", rc);
  return deleted;
}

Result<uint64_t> Txn::Count(MDB_dbi dbi) {
  MDB_stat st;
  int rc = mdb_stat(txn_, dbi, &st);
  if (rc != 0) return Error("reading table statistics", rc);
  return static_cast<uint64_t>(st.ms_entries);
}

}  // namespace layerstore::lmdb
