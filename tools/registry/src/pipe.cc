#include "registry/pipe.h"

#include <algorithm>
#include <cstring>

namespace registry {

BlobPipe::BlobPipe(std::string name, size_t capacity) : name_(std::move(name)), ring_(std::max<size_t>(capacity, 1)) {}

bool BlobPipe::Write(const char* data, size_t n) {
  std::unique_lock<std::mutex> lock(mu_);
  while (n > 0) {
    writable_.wait(lock, [&] { return cancelled_ || size_ < ring_.size(); });
    if (cancelled_) return false;
    // Copy into the free space, which may wrap around the end of the ring.
    size_t tail = (head_ + size_) % ring_.size();
    size_t room = std::min(ring_.size() - size_, ring_.size() - tail);
    size_t take = std::min(room, n);
    std::memcpy(ring_.data() + tail, data, take);
    size_ += take;
    data += take;
    n -= take;
    readable_.notify_one();
  }
  return true;
}

void BlobPipe::Close(const layerstore::Status& status) {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  close_status_ = status;
  readable_.notify_all();
}

void BlobPipe::Cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  cancelled_ = true;
  writable_.notify_all();
}

layerstore::Result<size_t> BlobPipe::Read(void* buf, size_t n) {
  std::unique_lock<std::mutex> lock(mu_);
  readable_.wait(lock, [&] { return size_ > 0 || closed_; });
  // A failed transfer fails the read at once, even with bytes buffered: they are a prefix of
  // a blob that will never be complete.
  if (closed_ && !close_status_.ok()) return close_status_;
  if (size_ == 0) return size_t{0};
  size_t take = std::min({n, size_, ring_.size() - head_});
  std::memcpy(buf, ring_.data() + head_, take);
  head_ = (head_ + take) % ring_.size();
  size_ -= take;
  writable_.notify_one();
  return take;
}

}  // namespace registry
