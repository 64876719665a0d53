// Small helpers the union and the directory-layer reader share: paths through /proc/self/fd,
// overlayfs' whiteout test, xattr reads, a DIR* owned by a unique_ptr.
#pragma once

#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <cerrno>
#include <optional>
#include <string>
#include <string_view>

namespace layerfs {

inline bool StartsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

inline std::string ProcPath(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

struct DirCloser {
  void operator()(DIR* d) const noexcept { ::closedir(d); }
};

// Overlayfs' whiteout: a character device 0:0.
inline bool IsWhiteout(const struct stat& st) { return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0); }

// A variable-sized xattr result (a value, a name list) into `out`: 0, or errno. `get(buf, size)`
// answers as getxattr(2) does (the size, or -1 and errno). Most values are small and most reads find none (the kernel asks for
// security.capability before every write(2)), so a small buffer first, then sized and read again
// while ERANGE says it grew: zeroing one of XATTR_SIZE_MAX for every request was most of the
// daemon's time on a GETXATTR.
template <size_t kFirstRead, class Get>
int ReadSizedXattr(Get get, std::string* out) {
  char small[kFirstRead];
  ssize_t n = get(small, sizeof small);
  if (n >= 0) {
    out->assign(small, static_cast<size_t>(n));
    return 0;
  }
  while (errno == ERANGE) {
    n = get(nullptr, 0);
    if (n < 0) break;
    out->resize(static_cast<size_t>(n));
    n = get(out->data(), out->size());
    if (n >= 0) {
      out->resize(static_cast<size_t>(n));
      return 0;
    }
  }
  return errno;
}

// An xattr's whole value of a path (l-variant when no_follow): 0, or errno.
inline int GetXattrValue(const std::string& path, const char* name, bool no_follow, std::string* value) {
  return ReadSizedXattr<256>(
      [&](char* buf, size_t size) {
        return no_follow ? ::lgetxattr(path.c_str(), name, buf, size) : ::getxattr(path.c_str(), name, buf, size);
      },
      value);
}

// The names of a path's xattrs, each followed by a NUL: 0, or errno.
inline int ListXattrNames(const std::string& path, bool no_follow, std::string* names) {
  return ReadSizedXattr<1024>(
      [&](char* buf, size_t size) {
        return no_follow ? ::llistxattr(path.c_str(), buf, size) : ::listxattr(path.c_str(), buf, size);
      },
      names);
}

// An xattr's value, nullopt when absent (or unreadable).
inline std::optional<std::string> ReadXattr(const std::string& path, const char* name, bool no_follow) {
  std::string value;
  if (GetXattrValue(path, name, no_follow, &value) != 0) return std::nullopt;
  return value;
}

}  // namespace layerfs
