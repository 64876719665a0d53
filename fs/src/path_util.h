// Small helpers the union and the directory-layer reader share: paths through /proc/self/fd,
// overlayfs' whiteout test, xattr reads.
#pragma once

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

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

}  // namespace layerfs
