#include "fsutil.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>

#include "paths.h"

namespace layerstore::fsutil {

Status WriteAll(int fd, const void* data, size_t size, std::string_view what) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(std::string("writing ") + std::string(what), errno);
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return {};
}

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

Result<std::string> ReadFileAt(int dirfd, const std::string& path) {
  UniqueFd fd(::openat(dirfd, path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Status::FromErrno("opening " + path, errno);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno("stat " + path, errno);
  std::string out(static_cast<size_t>(st.st_size), '\0');
  LS_ASSIGN_OR_RETURN(size_t n, ReadFull(fd.get(), out.data(), out.size(), path));
  out.resize(n);
  return out;
}

Status MkdirAt(int dirfd, const std::string& path, mode_t mode) {
  if (::mkdirat(dirfd, path.c_str(), mode) != 0 && errno != EEXIST) {
    return Status::FromErrno("creating directory " + path, errno);
  }
  return {};
}

Status FsyncPath(int dirfd, const std::string& path) {
  UniqueFd fd(::openat(dirfd, path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Status::FromErrno("opening " + path + " to sync it", errno);
  if (::fsync(fd.get()) != 0) return Status::FromErrno("fsync " + path, errno);
  return {};
}

Result<UniqueFd> CreateTemp(int dirfd, std::string* name) {
  static std::atomic<uint64_t> counter{0};
  for (int attempt = 0; attempt < 100; ++attempt) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "%s/%d-%llu", paths::kTmpDir, static_cast<int>(::getpid()),
                  static_cast<unsigned long long>(counter.fetch_add(1)));
    UniqueFd fd(::openat(dirfd, buf, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (fd) {
      *name = buf;
      return fd;
    }
    if (errno != EEXIST) return Status::FromErrno(std::string("creating ") + buf, errno);
  }
  return Status::IOError("could not create a temporary file under tmp/");
}

Status WriteFileAtomicAt(int dirfd, const std::string& path, std::string_view data, mode_t mode) {
  std::string tmp;
  LS_ASSIGN_OR_RETURN(UniqueFd fd, CreateTemp(dirfd, &tmp));
  Status s = WriteAll(fd.get(), data.data(), data.size(), path);
  if (s.ok() && ::fchmod(fd.get(), mode) != 0) s = Status::FromErrno("chmod " + tmp, errno);
  if (s.ok() && ::fsync(fd.get()) != 0) s = Status::FromErrno("fsync " + tmp, errno);
  if (s.ok() && ::renameat(dirfd, tmp.c_str(), dirfd, path.c_str()) != 0) {
    s = Status::FromErrno("renaming " + tmp + " to " + path, errno);
  }
  if (!s.ok()) {
    ::unlinkat(dirfd, tmp.c_str(), 0);
    return s;
  }
  auto slash = path.rfind('/');
  return FsyncPath(dirfd, slash == std::string::npos ? "." : path.substr(0, slash));
}

uint64_t AllocatedBytes(int dirfd, const std::string& path) {
  struct stat st;
  if (::fstatat(dirfd, path.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return 0;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

}  // namespace layerstore::fsutil
