#include "object_prefetch.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "layerstore/unique_fd.h"
#include "paths.h"

namespace layerstore {
namespace {

// How far ahead of the reader: enough requests to keep a disk busy, little enough memory that
// nothing prefetched is evicted before it is read.
constexpr size_t kAheadObjects = 256;
constexpr uint64_t kAheadBytes = 32 << 20;
// A large object is read sequentially by the reader, whose own read-ahead suffices once it is
// open; only its start is fetched early.
constexpr uint64_t kPrefetchPerObject = 1 << 20;
constexpr unsigned kThreads = 4;

}  // namespace

ObjectPrefetcher::ObjectPrefetcher(int root_fd, std::vector<std::pair<Digest, uint64_t>> objects)
    : root_fd_(root_fd), objects_(std::move(objects)) {
  offset_.reserve(objects_.size() + 1);
  uint64_t total = 0;
  for (const auto& [digest, size] : objects_) {
    offset_.push_back(total);
    total += size;
  }
  offset_.push_back(total);
  for (unsigned i = 0; i < kThreads; ++i) threads_.emplace_back([this] { Work(); });
}

ObjectPrefetcher::~ObjectPrefetcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void ObjectPrefetcher::Reading(size_t index) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    reading_ = index;
    if (next_ < reading_) next_ = reading_;  // the reader overtook: what it passed is moot
  }
  cv_.notify_all();
}

bool ObjectPrefetcher::InWindow(size_t index) const {
  return index < objects_.size() && index < reading_ + kAheadObjects &&
         offset_[index] - offset_[reading_] < kAheadBytes;
}

void ObjectPrefetcher::Work() {
  for (;;) {
    size_t index;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || InWindow(next_) || next_ >= objects_.size(); });
      if (stop_ || next_ >= objects_.size()) return;
      index = next_++;
    }
    const auto& [digest, size] = objects_[index];
    UniqueFd fd(::openat(root_fd_, paths::Object(digest).c_str(), O_RDONLY | O_CLOEXEC));
    // Failures are the reader's to report, when it opens the object itself.
    if (fd) ::posix_fadvise(fd.get(), 0, static_cast<off_t>(std::min(size, kPrefetchPerObject)), POSIX_FADV_WILLNEED);
  }
}

}  // namespace layerstore
