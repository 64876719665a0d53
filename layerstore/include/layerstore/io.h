// ByteSource / ByteSink: the streaming seams between the store and whatever feeds or drains it
// (a file, a pipe, an HTTP body, a member of an archive). Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "layerstore/status.h"

namespace layerstore {

// Reads from `fd` until `size` bytes or the end; returns the bytes read. EINTR is retried;
// `what` names the file in the error.
Result<size_t> ReadFull(int fd, void* buf, size_t size, std::string_view what);

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to `size` bytes into `buf`. Returns 0 at the end of the stream.
  virtual Result<size_t> Read(void* buf, size_t size) = 0;
  // A name for error messages ("busybox.tar: layer 2/3").
  virtual std::string Name() const = 0;
};

class ByteSink {
 public:
  virtual ~ByteSink() = default;
  // Writes all `size` bytes or fails.
  virtual Status Write(const void* data, size_t size) = 0;
};

// Reads from a file descriptor it does not own; `limit` bounds the bytes read when set (an archive member).
class FdSource final : public ByteSource {
 public:
  FdSource(int fd, std::string name, int64_t offset = -1, uint64_t limit = UINT64_MAX)
      : fd_(fd), name_(std::move(name)), offset_(offset), remaining_(limit) {}
  Result<size_t> Read(void* buf, size_t size) override;
  std::string Name() const override { return name_; }

 private:
  int fd_;
  std::string name_;
  int64_t offset_;  // -1: read() from the current position; else pread() from here on
  uint64_t remaining_;
};

// Writes to a file descriptor it does not own.
class FdSink final : public ByteSink {
 public:
  explicit FdSink(int fd) : fd_(fd) {}
  Status Write(const void* data, size_t size) override;

 private:
  int fd_;
};

}  // namespace layerstore
