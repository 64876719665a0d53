// RAII over LMDB: an environment, read and write transactions, and prefix scans.
//
// LMDB's rules (lmdb.h): one environment per process, one transaction per thread (MDB_NOTLS lifts
// that for readers), write transactions serialise across processes, and a long-lived reader pins
// old pages. A Txn aborts in its destructor unless committed. Keys and values handed out are views
// into the map, valid until the transaction ends.
#pragma once

#include <lmdb.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "layerstore/status.h"

namespace layerstore::lmdb {

Status Error(std::string_view context, int rc);

class Env {
 public:
  // Opens the environment in `dir` with the named databases created on first use.
  static Result<std::unique_ptr<Env>> Open(const std::string& dir, size_t map_size);
  ~Env();
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  MDB_env* get() const { return env_; }

 private:
  explicit Env(MDB_env* env) : env_(env) {}
  MDB_env* env_;
};

class Txn {
 public:
  static Result<Txn> Begin(Env& env, bool write);
  ~Txn() { Abort(); }
  Txn(Txn&& other) noexcept : txn_(std::exchange(other.txn_, nullptr)), write_(other.write_) {}
  Txn& operator=(Txn&& other) noexcept {
    if (this != &other) {
      Abort();
      txn_ = std::exchange(other.txn_, nullptr);
      write_ = other.write_;
    }
    return *this;
  }
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;

  Status Commit();
  void Abort() {
    if (txn_) mdb_txn_abort(std::exchange(txn_, nullptr));
  }

  // Opens (write txns: creates) a named database.
  Result<MDB_dbi> Open(const char* name);

  // nullopt when the key is absent.
  Result<std::optional<std::string_view>> Get(MDB_dbi dbi, std::string_view key);
  Status Put(MDB_dbi dbi, std::string_view key, std::string_view value);
  // Returns false when the key was absent.
  Result<bool> Del(MDB_dbi dbi, std::string_view key);
  // Calls fn(key, value) for keys starting with prefix, in order, until fn returns false.
  Status Scan(MDB_dbi dbi, std::string_view prefix,
              const std::function<bool(std::string_view, std::string_view)>& fn);
  // Deletes every key starting with prefix; returns how many.
  Result<uint64_t> DeletePrefix(MDB_dbi dbi, std::string_view prefix);
  Result<uint64_t> Count(MDB_dbi dbi);

  MDB_txn* get() const { return txn_; }

 private:
  Txn(MDB_txn* txn, bool write) : txn_(txn), write_(write) {}
  MDB_txn* txn_;
  bool write_;
};

}  // namespace layerstore::lmdb
