#include "overlay_options.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string_view>

namespace layerfs {
namespace {

using layerstore::Result;
using layerstore::Status;

// Generic mount options that libfuse 3.14's fuse_session_new takes and hands to the kernel or
// to fusermount3; the driver passes them on. ro/rw are not among them: they set read_only,
// which the driver turns into the mount flag itself.
constexpr std::array<std::string_view, 15> kFuseFlags = {
    "allow_other", "allow_root", "default_permissions", "auto_unmount", "dev",   "nodev",   "suid", "nosuid",
    "exec",        "noexec",     "atime",               "noatime",      "async", "dirsync", "sync",
};

// Accepted and ignored. The atime variants and lazytime: libfuse 3.14 rejects them, and atime on a
// FUSE mount is what the daemon stores, not a kernel policy (fuse-overlayfs drops them too, and
// mount(8) adds relatime on its own). nofail, _netdev, defaults: mount(8)'s business, harmless if
// a type-specific helper hands them on. noacl: strata never asks the kernel for POSIX ACL support,
// so ACL xattrs are plain xattrs already.
constexpr std::array<std::string_view, 12> kIgnoredFlags = {
    "diratime", "nodiratime", "relatime", "norelatime", "strictatime", "nostrictatime",
    "lazytime", "nolazytime", "nofail",   "_netdev",    "defaults",    "noacl",
};

// SELinux labels: fuse-overlayfs takes and ignores them; passing them to the kernel would fail
// the mount on hosts without SELinux, and containers/storage adds context= whenever it has a label.
constexpr std::array<std::string_view, 4> kIgnoredLabels = {"context", "fscontext", "defcontext", "rootcontext"};

template <size_t N>
bool Contains(const std::array<std::string_view, N>& set, std::string_view word) {
  return std::find(set.begin(), set.end(), word) != set.end();
}

Status Bad(std::string_view option, std::string_view why) {
  return Status::InvalidArgument("option '" + std::string(option) + "': " + std::string(why));
}

Result<std::vector<std::string>> SplitOptions(std::string_view group) {
  std::vector<std::string> options;
  std::string current;
  bool quoted = false;
  for (size_t i = 0; i < group.size(); ++i) {
    const char c = group[i];
    if (c == '\\' && i + 1 < group.size()) {
      current += group[++i];
      continue;
    }
    if (c == '"') quoted = !quoted;
    if (c == ',' && !quoted) {
      if (!current.empty()) options.push_back(std::move(current));
      current.clear();
      continue;
    }
    current += c;
  }
  if (quoted) return Status::InvalidArgument("unbalanced '\"' in -o " + std::string(group));
  if (!current.empty()) options.push_back(std::move(current));
  return options;
}

std::optional<uint32_t> ParseId(std::string_view s) {
  uint32_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// fuse-overlayfs' boolean options are 0 or 1.
std::optional<bool> ParseSwitch(std::string_view s) {
  if (s == "0") return false;
  if (s == "1") return true;
  return std::nullopt;
}

bool Overlap(uint32_t a, uint32_t b, uint32_t count_a, uint32_t count_b) {
  return uint64_t{a} < uint64_t{b} + count_b && uint64_t{b} < uint64_t{a} + count_a;
}

// uidmapping=/gidmapping=: ON_DISK:IN_MOUNT:COUNT triples, all joined by colons (fuse-overlayfs
// reads the first number of each as the id stored in the layers, the second as the id the mount
// shows). Ranges may not overlap on either side, or an id would map two ways.
Result<std::vector<IdMapping>> ParseMappings(std::string_view option, std::string_view value) {
  std::vector<uint32_t> numbers;
  size_t start = 0;
  while (true) {
    const size_t colon = value.find(':', start);
    auto n = ParseId(value.substr(start, colon == std::string_view::npos ? colon : colon - start));
    if (!n) return Bad(option, "ids and counts are decimal numbers joined by ':'");
    numbers.push_back(*n);
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  if (numbers.size() % 3 != 0) return Bad(option, "expected ON_DISK:IN_MOUNT:COUNT triples");
  std::vector<IdMapping> mappings;
  for (size_t i = 0; i < numbers.size(); i += 3) {
    IdMapping m{.inside = numbers[i + 1], .outside = numbers[i], .count = numbers[i + 2]};
    if (m.count == 0) return Bad(option, "a range of 0 ids");
    if (uint64_t{m.inside} + m.count > (uint64_t{1} << 32) || uint64_t{m.outside} + m.count > (uint64_t{1} << 32)) {
      return Bad(option, "a range beyond the largest id");
    }
    for (const IdMapping& o : mappings) {
      if (Overlap(m.inside, o.inside, m.count, o.count) || Overlap(m.outside, o.outside, m.count, o.count)) {
        return Bad(option, "overlapping ranges");
      }
    }
    mappings.push_back(m);
  }
  return mappings;
}

// What the options name, before the rules that look at several of them at once.
struct Collected {
  std::optional<uint32_t> squash_to_uid;
  std::optional<uint32_t> squash_to_gid;
  bool squash_to_root = false;
  bool fsync = true;
  bool volatile_mode = false;
};

Status ApplyOption(const std::string& option, MountOptions* options, Collected* c) {
  const size_t eq = option.find('=');
  const std::string_view name = std::string_view(option).substr(0, eq);
  const bool has_value = eq != std::string::npos;
  const std::string value = has_value ? option.substr(eq + 1) : std::string();
  OverlayOptions& overlay = options->overlay;
  if (has_value ? Contains(kIgnoredLabels, name) : Contains(kIgnoredFlags, name)) return Status();

  if (!has_value) {
    if (Contains(kFuseFlags, name)) {
      overlay.fuse_options.push_back(option);
    } else if (name == "ro" || name == "rw") {
      options->read_only = name == "ro";
    } else if (name == "debug") {
      options->debug = true;
    } else if (name == "squash_to_root") {
      c->squash_to_root = true;
    } else if (name == "static_nlink") {
      overlay.static_nlink = true;
    } else if (name == "volatile") {
      c->volatile_mode = true;
    } else if (name.find(':') != std::string_view::npos) {
      return Status::InvalidArgument("unknown option '" + option +
                                     "' (a mapping's triples are joined by ':', not ',': uidmapping=0:1000:1:1:100000:65536)");
    } else {
      return Status::InvalidArgument("unknown option '" + option + "'");
    }
    return Status();
  }

  if (name == "lowerdir") {
    std::vector<std::string> dirs;
    size_t start = 0;
    while (true) {
      const size_t colon = value.find(':', start);
      dirs.push_back(value.substr(start, colon == std::string::npos ? colon : colon - start));
      if (dirs.back().empty()) return Bad(option, "an empty directory in the ':'-separated list");
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
    options->lower_dirs = std::move(dirs);
  } else if (name == "upperdir" || name == "workdir") {
    if (value.empty()) return Bad(option, "an empty directory");
    (name == "upperdir" ? options->upper_dir : options->work_dir) = value;
  } else if (name == "uidmapping" || name == "gidmapping") {
    LS_ASSIGN_OR_RETURN(auto mappings, ParseMappings(option, value));
    (name == "uidmapping" ? overlay.uid_mappings : overlay.gid_mappings) = std::move(mappings);
  } else if (name == "squash_to_uid" || name == "squash_to_gid") {
    auto id = ParseId(value);
    // (uid_t)-1 means "leave unchanged" to chown(2): it can be no file's owner.
    if (!id || *id == UINT32_MAX) return Bad(option, "not an id");
    (name == "squash_to_uid" ? c->squash_to_uid : c->squash_to_gid) = *id;
  } else if (name == "fsync") {
    auto on = ParseSwitch(value);
    if (!on) return Bad(option, "0 or 1");
    c->fsync = *on;
  } else if (name == "passthrough") {
    // strata's own: --no-passthrough of the other forms.
    auto on = ParseSwitch(value);
    if (!on) return Bad(option, "0 or 1");
    options->passthrough = *on;
  } else if (name == "io_uring") {
    // strata's own: --no-io-uring of the other forms.
    auto on = ParseSwitch(value);
    if (!on) return Bad(option, "0 or 1");
    options->io_uring = *on;
  } else if (name == "threaded" || name == "fast_ino" || name == "writeback") {
    // Tuning of fuse-overlayfs' own: strata always serves from a thread pool, keeps inode numbers
    // stable without a fast path to switch, and is write-through (the layer on disk must hold
    // what the kernel shows).
    if (!ParseSwitch(value)) return Bad(option, "0 or 1");
  } else if (name == "noxattrs" || name == "xattr_permissions") {
    // Only the defaults: strata serves xattrs, and keeps ownership and modes in the inodes, never
    // in an override xattr.
    if (value != "0") return Bad(option, "not supported by stratafs (only " + std::string(name) + "=0)");
  } else if (name == "timeout") {
    // fuse-overlayfs' kernel cache timeout; strata picks its own, per layer kind.
    double seconds = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (value.empty() || ec != std::errc() || end != value.data() + value.size() || seconds < 0) {
      return Bad(option, "not a number of seconds");
    }
  } else if (name == "metacopy") {
    // Kernel overlayfs' switch, which containers/storage's mountopt may carry to a mount program;
    // strata always copies metadata-only changes without their data.
    if (value != "on" && value != "off") return Bad(option, "on or off");
  } else if (name == "fsname") {
    if (value.empty()) return Bad(option, "an empty name");
    overlay.fsname = value;
  } else {
    return Status::InvalidArgument("unknown option '" + option + "'");
  }
  return Status();
}

}  // namespace

Status ParseOverlayOptions(const std::vector<std::string>& option_groups, MountOptions* options) {
  Collected c;
  for (const std::string& group : option_groups) {
    LS_ASSIGN_OR_RETURN(std::vector<std::string> split, SplitOptions(group));
    for (const std::string& option : split) LS_RETURN_IF_ERROR(ApplyOption(option, options, &c));
  }
  if (options->lower_dirs.empty()) return Status::InvalidArgument("-o needs lowerdir=DIR[:DIR...]");
  if (options->upper_dir.empty() != options->work_dir.empty()) {
    return Status::InvalidArgument(options->upper_dir.empty() ? "workdir= needs upperdir=" : "upperdir= needs workdir=");
  }
  if (options->upper_dir.empty()) options->read_only = true;
  // squash_to_uid/gid win over squash_to_root whatever their order, as in fuse-overlayfs.
  OverlayOptions& overlay = options->overlay;
  if (c.squash_to_uid) {
    overlay.squash_uid = *c.squash_to_uid;
  } else if (c.squash_to_root) {
    overlay.squash_uid = 0;
  }
  if (c.squash_to_gid) {
    overlay.squash_gid = *c.squash_to_gid;
  } else if (c.squash_to_root) {
    overlay.squash_gid = 0;
  }
  overlay.sync = c.fsync && !c.volatile_mode;
  return Status();
}

Status ParseOverlayCommandLine(const std::vector<std::string>& option_groups, const std::vector<std::string>& positional,
                               MountOptions* options) {
  if (positional.empty() || positional.size() > 2) {
    return Status::InvalidArgument("expected MOUNTPOINT, or SOURCE MOUNTPOINT (mount.fuse3's form), after -o");
  }
  LS_RETURN_IF_ERROR(ParseOverlayOptions(option_groups, options));
  options->mountpoint = positional.back();
  if (positional.size() == 2 && options->overlay.fsname.empty()) options->overlay.fsname = positional.front();
  return Status();
}

}  // namespace layerfs
