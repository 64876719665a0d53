// Small helpers the union and the directory-layer reader share: paths through /proc/self/fd,
// overlayfs' whiteout test, xattr reads.
#pragma once

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

// Overlayfs' whiteout: a character device 0:0.
inline bool IsWhiteout(const struct stat& st) { return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0); }

// Reads an xattr of a path (l-variant when no_follow); nullopt when absent.
inline std::optional<std::string> ReadXattr(const std::string& path, const char* name, bool no_follow) {
  char buf[4096];
  ssize_t n = no_follow ? ::lgetxattr(path.c_str(), name, buf, sizeof buf) : ::getxattr(path.c_str(), name, buf, sizeof buf);
  if (n < 0) return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

// An xattr's whole value (0) or errno. Most values are small and most reads find none (the
// kernel asks for security.capability before every write(2)), so a small buffer first:
// zeroing one of XATTR_SIZE_MAX for every request was most of the daemon's time on a GETXATTR.
inline int GetXattrValue(const std::string& path, const char* name, bool no_follow, std::string* value) {
  char small[256];
  ssize_t n = no_follow ? ::lgetxattr(path.c_str(), name, small, sizeof small)
                        : ::getxattr(path.c_str(), name, small, sizeof small);
  if (n >= 0) {
    value->assign(small, static_cast<size_t>(n));
    return 0;
  }
  while (errno == ERANGE) {  // larger: ask for its size, then read it (it may grow meanwhile)
    n = no_follow ? ::lgetxattr(path.c_str(), name, nullptr, 0) : ::getxattr(path.c_str(), name, nullptr, 0);
    if (n < 0) break;
    value->resize(static_cast<size_t>(n));
    n = no_follow ? ::lgetxattr(path.c_str(), name, value->data(), value->size())
                  : ::getxattr(path.c_str(), name, value->data(), value->size());
    if (n >= 0) {
      value->resize(static_cast<size_t>(n));
      return 0;
    }
  }
  return errno;
}

// The names of a path's xattrs, each followed by a NUL (0), or errno; sized as GetXattrValue.
inline int ListXattrNames(const std::string& path, bool no_follow, std::string* names) {
  char small[1024];
  ssize_t n = no_follow ? ::llistxattr(path.c_str(), small, sizeof small) : ::listxattr(path.c_str(), small, sizeof small);
  if (n >= 0) {
    names->assign(small, static_cast<size_t>(n));
    return 0;
  }
  while (errno == ERANGE) {
    n = no_follow ? ::llistxattr(path.c_str(), nullptr, 0) : ::listxattr(path.c_str(), nullptr, 0);
    if (n < 0) break;
    names->resize(static_cast<size_t>(n));
    n = no_follow ? ::llistxattr(path.c_str(), names->data(), names->size())
                  : ::listxattr(path.c_str(), names->data(), names->size());
    if (n >= 0) {
      names->resize(static_cast<size_t>(n));
      return 0;
    }
  }
  return errno;
}

}  // namespace layerfs
