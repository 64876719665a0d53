#include "fsutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <vector>

#include "layerstore/io.h"

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

bool IsMountPoint(int dirfd, const std::string& path) {
  struct statx stx;
  if (::statx(dirfd, path.c_str(), AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_TYPE, &stx) != 0) {
    return errno == ENOTCONN;  // a FUSE mount whose daemon died
  }
  return (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) && (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

namespace {

struct DirCloser {
  void operator()(DIR* d) const noexcept { ::closedir(d); }
};

}  // namespace

std::vector<std::string> ListDir(int dirfd, const std::string& path) {
  std::vector<std::string> names;
  int fd = ::openat(dirfd, path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return names;
  std::unique_ptr<DIR, DirCloser> dir(::fdopendir(fd));
  if (!dir) {
    ::close(fd);
    return names;
  }
  while (dirent* de = ::readdir(dir.get())) {
    std::string name = de->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  return names;
}

namespace {

// Removes everything inside the open directory `fd` (at `path`, for messages) on device `dev`.
Status RemoveChildren(int fd, dev_t dev, const std::string& path) {
  std::vector<std::string> names;
  {
    int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) return Status::FromErrno("reading directory " + path, errno);
    std::unique_ptr<DIR, DirCloser> dir(::fdopendir(dup));
    if (!dir) {
      ::close(dup);
      return Status::FromErrno("reading directory " + path, errno);
    }
    while (dirent* de = ::readdir(dir.get())) {
      std::string name = de->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
  }
  Status first;
  auto note = [&](Status s) {
    if (first.ok()) first = std::move(s);
  };
  for (const std::string& name : names) {
    const std::string child_path = path + "/" + name;
    struct stat st;
    if (::fstatat(fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT) note(Status::FromErrno("stat " + child_path, errno));
      continue;
    }
    if (!S_ISDIR(st.st_mode)) {
      if (::unlinkat(fd, name.c_str(), 0) != 0 && errno != ENOENT) note(Status::FromErrno("removing " + child_path, errno));
      continue;
    }
    if (st.st_dev != dev || IsMountPoint(fd, name)) {
      note(Status::FailedPrecondition(child_path + " is a mount point: left in place (unmount it first)"));
      continue;
    }
    if ((st.st_mode & S_IRWXU) != S_IRWXU) ::fchmodat(fd, name.c_str(), (st.st_mode & 07777) | S_IRWXU, 0);
    UniqueFd child(::openat(fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!child) {
      note(Status::FromErrno("opening " + child_path, errno));
      continue;
    }
    Status s = RemoveChildren(child.get(), dev, child_path);
    child.Reset();
    if (!s.ok()) {
      note(std::move(s));
      continue;
    }
    if (::unlinkat(fd, name.c_str(), AT_REMOVEDIR) != 0) note(Status::FromErrno("removing " + child_path, errno));
  }
  return first;
}

}  // namespace

Status RemoveTreeAt(int dirfd, const std::string& path) {
  struct stat st;
  if (::fstatat(dirfd, path.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return {};
    return Status::FromErrno("stat " + path, errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(dirfd, path.c_str(), 0) != 0 && errno != ENOENT) return Status::FromErrno("removing " + path, errno);
    return {};
  }
  if (IsMountPoint(dirfd, path)) {
    return Status::FailedPrecondition(path + " is a mount point: left in place (unmount it first)");
  }
  if ((st.st_mode & S_IRWXU) != S_IRWXU) ::fchmodat(dirfd, path.c_str(), (st.st_mode & 07777) | S_IRWXU, 0);
  UniqueFd fd(::openat(dirfd, path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return Status::FromErrno("opening " + path, errno);
  LS_RETURN_IF_ERROR(RemoveChildren(fd.get(), st.st_dev, path));
  fd.Reset();
  if (::unlinkat(dirfd, path.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return Status::FromErrno("removing " + path, errno);
  }
  return {};
}

}  // namespace layerstore::fsutil
