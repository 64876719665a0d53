// Read-ahead for a layer export: the tar-split says which objects will be read, in order, so a few
// threads open them ahead of the reader and start their reads (POSIX_FADV_WILLNEED). On a cold
// store the reader would otherwise wait for one small file's inode and data at a time; with the
// prefetch several requests are in flight and the reader finds them cached.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "layerstore/digest.h"

namespace layerstore {

class ObjectPrefetcher {
 public:
  // `objects`: the payloads of the export in the order they will be read, with their sizes.
  ObjectPrefetcher(int root_fd, std::vector<std::pair<Digest, uint64_t>> objects);
  ~ObjectPrefetcher();  // stops the threads and joins them
  ObjectPrefetcher(const ObjectPrefetcher&) = delete;
  ObjectPrefetcher& operator=(const ObjectPrefetcher&) = delete;

  // The reader is about to read objects[index]: the window moves on.
  void Reading(size_t index);

 private:
  void Work();
  bool InWindow(size_t index) const;  // REQUIRES: mu_ held

  const int root_fd_;
  const std::vector<std::pair<Digest, uint64_t>> objects_;
  std::vector<uint64_t> offset_;  // bytes of the objects before objects_[i]

  std::mutex mu_;
  std::condition_variable cv_;
  size_t next_ = 0;     // guarded by mu_: the next object to prefetch
  size_t reading_ = 0;  // guarded by mu_: the reader's position
  bool stop_ = false;   // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace layerstore
