// ObjectWriter: publishes regular-file contents into objects/, each distinct content once.
//
// A content's bytes arrive in pieces (possibly with holes, for sparse files). Small contents are
// hashed in memory first, so a content already in the store costs no write at all; large ones
// stream into a temp file while being hashed. Small contents are written straight under their
// name, large ones renamed there from tmp/ once complete (RENAME_NOREPLACE). So a small one's
// name may show a short file while it is written, or after a crash mid-write; none is relied on
// before a committed row names it, and the store syncs before such a commit. A file found under a
// name this writer did not create is re-hashed, and replaced only when damaged, by a copy synced
// before the rename (an import that found the file whole may be about to name it).
//
// Two threads share the work. The caller's thread (the importer) feeds the bytes, hashes them and
// decides by digest whether a content is new, so Commit returns the digest at once; the file
// system work (create, write, publish, re-check a file in the way) runs on a writer thread fed
// through a queue of bounded size (Tuning::queue_bytes), so memory stays bounded however large the layer is and
// a slow disk throttles the importer. Finish waits until every queued write is done.
//
// Durability: nothing is synced for the metadata here; the store syncs the filesystem once per
// layer, after Finish, before the commit that names the objects. To shorten that wait, a third
// thread starts writeback early: after every Tuning::flush_bytes written it calls syncfs in the
// background, so the disk works while the import goes on.
//
// One writer per import. All public methods are called from one thread (the importer's).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "layerstore/digest.h"
#include "layerstore/sha256.h"
#include "layerstore/status.h"
#include "layerstore/unique_fd.h"

namespace layerstore {

class ObjectWriter {
 public:
  static constexpr uint64_t kInMemoryMax = 1 << 20;

  struct Tuning {
    size_t queue_bytes = 8 << 20;    // memory the queued writes may hold
    uint64_t flush_bytes = 64 << 20;  // bytes written between two background syncfs calls
  };

  // `known(d)` answers whether the metadata already records object d (so its file is durable).
  // It is called on the importer's thread only.
  ObjectWriter(int root_fd, std::function<bool(const Digest&)> known) : ObjectWriter(root_fd, std::move(known), Tuning()) {}
  ObjectWriter(int root_fd, std::function<bool(const Digest&)> known, Tuning tuning);
  ~ObjectWriter();  // Cancel()
  ObjectWriter(const ObjectWriter&) = delete;
  ObjectWriter& operator=(const ObjectWriter&) = delete;

  // Starts one content of `size` bytes. Pieces must come in increasing offset order.
  Status Begin(uint64_t size, std::string_view name);
  Status Write(uint64_t offset, const void* data, size_t n);
  // Finishes the content and returns its digest; its object is written in the background.
  // Fails early when a background write already failed.
  Result<Digest> Commit();
  // Drops the content in progress.
  void Abort();

  // Waits for every write queued so far and stops the background threads. Returns the first
  // error of a background write. After it, created() and new_bytes() are final and no content
  // may be started.
  Status Finish();
  // As Finish, but drops queued writes that have not started (the import failed).
  void Cancel();

  // Objects this writer put on disk (for cleanup when the import fails). REQUIRES: Finish or
  // Cancel returned.
  const std::vector<Digest>& created() const { return created_; }
  // Bytes of the objects it created. REQUIRES: Finish or Cancel returned.
  uint64_t new_bytes() const { return new_bytes_; }

 private:
  struct LargeFile;  // a large content's temp file; removed unless published
  struct Op;         // one job of the writer thread

  // Importer side.
  void StartThreads();
  Status Push(Op op);
  void Stop(bool cancel);
  Status FillHole(uint64_t upto);

  // Writer thread.
  void WriterLoop();
  Status Run(Op& op);
  Status PublishSmall(const Digest& d, const std::string& bytes, const std::string& name);
  void RemoveOwnFile(int fd, const std::string& path);
  // Renames the complete, read-only tmp/ file `temp_name` to the object's name unless a good
  // object is there; clears temp_name once renamed (else the caller removes the file).
  Status PublishTemp(std::string& temp_name, const Digest& d, uint64_t size);
  Result<bool> ExistingMatches(const std::string& path, const Digest& d);
  void Created(const Digest& d, uint64_t size);
  // Counts bytes made dirty; every tuning_.flush_bytes wakes the flusher.
  void Written(uint64_t bytes);

  // Flusher thread.
  void FlusherLoop();

  const int root_fd_;
  const std::function<bool(const Digest&)> known_;
  const Tuning tuning_;

  // Importer thread only.
  std::unordered_set<Digest> seen_;  // committed during this writer's life
  std::string name_;                 // the content in progress
  uint64_t size_ = 0;
  uint64_t pos_ = 0;
  Sha256 hash_;
  std::string memory_;               // small contents
  std::shared_ptr<LargeFile> large_;  // large contents
  bool started_ = false;
  bool stopped_ = false;
  Status finish_status_;

  // Between the importer and the writer thread. Lock order: mu_ before flush_mu_.
  std::mutex mu_;
  std::condition_variable work_cv_;   // the writer waits for ops
  std::condition_variable space_cv_;  // the importer waits for room in the queue
  std::deque<Op> queue_;              // guarded by mu_
  size_t queued_bytes_ = 0;           // guarded by mu_: weight of ops not yet done
  size_t unsignalled_ = 0;            // guarded by mu_: ops pushed since the writer was woken
  bool writer_waiting_ = false;       // guarded by mu_
  bool closing_ = false;              // guarded by mu_: no more ops will come
  Status error_;                      // guarded by mu_: first failure of a background write
  std::atomic<bool> failed_{false};   // error_ is set
  std::atomic<bool> cancel_{false};   // drop ops not yet started

  // Writer thread only, until it is joined.
  std::vector<Digest> created_;
  uint64_t new_bytes_ = 0;
  uint64_t unflushed_bytes_ = 0;

  // Between the writer and the flusher thread.
  std::mutex flush_mu_;
  std::condition_variable flush_cv_;
  bool flush_wanted_ = false;  // guarded by flush_mu_
  bool flush_stop_ = false;    // guarded by flush_mu_

  std::thread writer_;
  std::thread flusher_;
};

}  // namespace layerstore
