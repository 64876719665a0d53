// ObjectWriter: publishes regular-file contents into objects/, each distinct content once.
//
// A content's bytes arrive in pieces (possibly with holes, for sparse files). Small contents are
// hashed in memory first, so a content already in the store costs no write at all; large ones
// stream into a temp file while being hashed. Small contents are created at their final name
// (O_EXCL); large ones are published by a rename that never replaces a good object
// (RENAME_NOREPLACE). In both cases an existing file not yet vouched for by the metadata is re-hashed,
// since a crash between its link and the next sync could have left it incomplete.
// Files are not synced here: the importer syncs the whole filesystem once per layer.
// One writer per import; not thread-safe.
#pragma once

#include <functional>
#include <string>
#include <unordered_set>
#include <vector>

#include "layerstore/digest.h"
#include "layerstore/sha256.h"
#include "layerstore/status.h"
#include "layerstore/unique_fd.h"

namespace layerstore {

class ObjectWriter {
 public:
  // `known(d)` answers whether the metadata already records object d (so its file is durable).
  ObjectWriter(int root_fd, std::function<bool(const Digest&)> known);
  ~ObjectWriter();
  ObjectWriter(const ObjectWriter&) = delete;
  ObjectWriter& operator=(const ObjectWriter&) = delete;

  // Starts one content of `size` bytes. Pieces must come in increasing offset order.
  Status Begin(uint64_t size, std::string_view name);
  Status Write(uint64_t offset, const void* data, size_t n);
  // Finishes the content; *created tells whether a new file was written.
  Result<Digest> Commit(bool* created);
  void Abort();

  // Objects this writer put on disk (for cleanup when the import fails).
  const std::vector<Digest>& created() const { return created_; }

 private:
  static constexpr uint64_t kInMemoryMax = 1 << 20;
  Status FillHole(uint64_t upto);
  Status Publish(const Digest& d, bool* created);
  Status PublishSmall(const Digest& d, bool* created);
  static void StartWriteback(int fd);
  Result<bool> ExistingMatches(const std::string& path, const Digest& d);

  int root_fd_;
  std::function<bool(const Digest&)> known_;
  std::unordered_set<Digest> seen_;  // published or verified during this writer's life
  std::vector<Digest> created_;

  // State of the content in progress.
  std::string name_;
  uint64_t size_ = 0;
  uint64_t pos_ = 0;
  Sha256 hash_;
  std::string memory_;  // small contents
  UniqueFd temp_fd_;    // large contents
  std::string temp_name_;
};

}  // namespace layerstore
