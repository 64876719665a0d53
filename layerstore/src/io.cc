#include "layerstore/io.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "fsutil.h"

namespace layerstore {

Result<size_t> ReadFull(int fd, void* buf, size_t size, std::string_view what) {
  char* p = static_cast<char*>(buf);
  size_t total = 0;
  while (total < size) {
    ssize_t n = ::read(fd, p + total, size - total);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(std::string("reading ") + std::string(what), errno);
    }
    if (n == 0) break;
    total += static_cast<size_t>(n);
  }
  return total;
}

Result<size_t> FdSource::Read(void* buf, size_t size) {
  size = static_cast<size_t>(std::min<uint64_t>(size, remaining_));
  if (size == 0) return size_t{0};
  for (;;) {
    ssize_t n = offset_ >= 0 ? ::pread(fd_, buf, size, offset_) : ::read(fd_, buf, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("reading " + name_, errno);
    }
    if (offset_ >= 0) offset_ += n;
    if (remaining_ != UINT64_MAX) remaining_ -= static_cast<uint64_t>(n);
    return static_cast<size_t>(n);
  }
}

Status FdSink::Write(const void* data, size_t size) { return fsutil::WriteAll(fd_, data, size, "output"); }

}  // namespace layerstore
