// Container changes (layerstore/changes.h): the walk that compares a container's upper directory
// with its image, and the tar writer that commit and export share.
//
// The walk visits the container's view top-down, but only where the upper directory (or a
// rename) can make it differ from the image: for each directory it knows the upper directory
// (if any), the lower directory merged under it (the image's directory at the same path; none
// when opaque; the redirect's origin when renamed) and the image's directory at the same path.
// What the view shows there is upper's entries plus the lower's entries that upper does not
// whiteout or shadow; comparing those names with the image's gives A, C and D. Whether a
// directory that the init paths made or copied up stays out is known only once its children
// have been walked: its item is taken back when none of them produced one.
#include "layerstore/changes.h"

#include "archive_api.h"
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

#include "layerstore/unique_fd.h"

namespace layerstore {
namespace {

constexpr const char* kOpaqueXattr = "trusted.overlay.opaque";
constexpr const char* kRedirectXattr = "trusted.overlay.redirect";

struct DirCloser {
  void operator()(DIR* d) const noexcept { ::closedir(d); }
};

std::string Join(const std::string& dir, std::string_view name) {
  return dir.empty() ? std::string(name) : dir + "/" + std::string(name);
}

// Names in a directory, sorted by bytes, without "." and "..".
Result<std::vector<std::string>> ReadNames(const std::string& path) {
  std::unique_ptr<DIR, DirCloser> dir(::opendir(path.c_str()));
  if (!dir) return Status::FromErrno("reading directory " + path, errno);
  std::vector<std::string> names;
  errno = 0;
  while (dirent* de = ::readdir(dir.get())) {
    std::string name = de->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
    errno = 0;
  }
  if (errno != 0) return Status::FromErrno("reading directory " + path, errno);
  std::sort(names.begin(), names.end());
  return names;
}

// The value of xattr `name` of `path` (not followed); nullopt when it has none.
Result<std::optional<std::string>> GetXattr(const std::string& path, const char* name) {
  for (;;) {
    ssize_t n = ::lgetxattr(path.c_str(), name, nullptr, 0);
    if (n < 0) {
      if (errno == ENODATA || errno == ENOTSUP) return std::optional<std::string>();
      return Status::FromErrno("reading xattr " + std::string(name) + " of " + path, errno);
    }
    std::string value(static_cast<size_t>(n), '\0');
    n = ::lgetxattr(path.c_str(), name, value.data(), value.size());
    if (n < 0 && errno == ERANGE) continue;  // grew meanwhile
    if (n < 0) return Status::FromErrno("reading xattr " + std::string(name) + " of " + path, errno);
    value.resize(static_cast<size_t>(n));
    return std::optional<std::string>(std::move(value));
  }
}

bool IsWhiteout(const struct stat& st) { return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0); }

// One change in walk order (parents before children).
struct Item {
  Change::Kind kind;
  std::string path;     // relative: "etc/passwd"
  bool opaque = false;  // A/C directory: its layer entry needs an opaque marker
  bool masked = false;  // D: an ancestor's opaque marker already hides it
};

class ChangeWalker {
 public:
  ChangeWalker(const RootfsIndex& image, std::string upper, const InitPaths& init)
      : image_(image), upper_(std::move(upper)), init_(init) {}

  Status Walk(std::vector<Item>* out) {
    struct stat st;
    if (::stat(upper_.c_str(), &st) != 0) return Status::FromErrno("container layer " + upper_, errno);
    if (!S_ISDIR(st.st_mode)) return Status::InvalidArgument("container layer " + upper_ + " is not a directory");
    Dir root;
    root.has_upper = true;
    root.lower = RootfsIndex::kRoot;
    root.image = RootfsIndex::kRoot;
    return WalkDir(root, out);
  }

 private:
  struct Dir {
    std::string path;               // relative; "" for the root
    bool has_upper = false;         // upper_/path exists
    std::optional<uint32_t> lower;  // the lower directory merged under it
    std::optional<uint32_t> image;  // the image's directory at the same path
    bool fresh = false;             // inside a renamed tree: everything it shows is new here
    bool masked = false;            // it or an ancestor gets an opaque marker in the layer
  };
  struct Visible {
    bool upper = false;
    uint32_t mode = 0;  // S_IFMT bits count
    uint32_t lower_node = 0;
    uint32_t uid = 0, gid = 0;  // upper entries only
    uint64_t size = 0;
  };

  bool IsDirNode(uint32_t node) const {
    auto n = image_.Node(node);
    return n.ok() && S_ISDIR(n->mode);
  }
  std::optional<uint32_t> DirChild(std::optional<uint32_t> dir, std::string_view name) const {
    if (!dir) return std::nullopt;
    auto child = image_.Lookup(*dir, name);
    if (!child || !IsDirNode(*child)) return std::nullopt;
    return child;
  }
  // An absolute lower path ("/usr/share/doc"), as a directory node.
  std::optional<uint32_t> LookupPath(std::string_view path) const {
    std::optional<uint32_t> node = RootfsIndex::kRoot;
    while (node && !path.empty()) {
      size_t slash = path.find('/');
      std::string_view part = path.substr(0, slash);
      path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
      if (part.empty() || part == ".") continue;
      node = DirChild(node, part);
    }
    return node;
  }

  Status WalkDir(const Dir& d, std::vector<Item>* out) {
    std::map<std::string, Visible> visible;  // what the view shows here, by name
    std::set<std::string> hidden;            // whiteouts
    const std::string upper_dir = d.path.empty() ? upper_ : upper_ + "/" + d.path;
    if (d.has_upper) {
      LS_ASSIGN_OR_RETURN(std::vector<std::string> names, ReadNames(upper_dir));
      for (const std::string& name : names) {
        struct stat st;
        std::string full = upper_dir + "/" + name;
        if (::lstat(full.c_str(), &st) != 0) return Status::FromErrno("stat " + full, errno);
        if (IsWhiteout(st)) {
          hidden.insert(name);
        } else {
          visible[name] = Visible{true, static_cast<uint32_t>(st.st_mode), 0, st.st_uid, st.st_gid,
                                  static_cast<uint64_t>(st.st_size)};
        }
      }
    }
    if (d.lower) {
      LS_ASSIGN_OR_RETURN(RootfsNode dir, image_.Node(*d.lower));
      for (uint32_t i = 0; i < dir.child_count; ++i) {
        LS_ASSIGN_OR_RETURN(auto child, image_.Child(*d.lower, i));
        std::string name(child.first);
        if (visible.count(name) || hidden.count(name)) continue;
        LS_ASSIGN_OR_RETURN(RootfsNode node, image_.Node(child.second));
        visible[name] = Visible{false, node.mode, child.second};
      }
    }
    // Image entries the view no longer shows.
    if (d.image) {
      LS_ASSIGN_OR_RETURN(RootfsNode dir, image_.Node(*d.image));
      for (uint32_t i = 0; i < dir.child_count; ++i) {
        LS_ASSIGN_OR_RETURN(auto child, image_.Child(*d.image, i));
        std::string name(child.first);
        if (!visible.count(name)) out->push_back({Change::kDeleted, Join(d.path, name), false, d.masked});
      }
    }
    for (const auto& [name, v] : visible) {
      // Outside a renamed tree, an entry only the lower has is the image's own: unchanged.
      if (!v.upper && !d.fresh) continue;
      const std::string path = Join(d.path, name);
      std::optional<uint32_t> image_child = d.image ? image_.Lookup(*d.image, name) : std::nullopt;
      Item item{image_child ? Change::kModified : Change::kAdded, path};
      // Made by the runtime where the image has nothing (a renamed tree is the user's doing).
      const bool made = v.upper && !d.fresh && !image_child && init_.count("/" + path) > 0;
      if (!S_ISDIR(v.mode)) {
        if (made && S_ISREG(v.mode) && v.size == 0) {
          ++init_left_out_;
        } else {
          out->push_back(std::move(item));
        }
        continue;
      }
      Dir c;
      c.path = path;
      c.image = image_child && IsDirNode(*image_child) ? image_child : std::nullopt;
      c.fresh = d.fresh;
      c.masked = d.masked;
      bool plain = false;  // an upper directory, neither opaque nor renamed
      if (v.upper) {
        c.has_upper = true;
        const std::string full = upper_dir + "/" + name;
        LS_ASSIGN_OR_RETURN(auto redirect, GetXattr(full, kRedirectXattr));
        LS_ASSIGN_OR_RETURN(auto opaque, GetXattr(full, kOpaqueXattr));
        bool is_opaque = opaque && *opaque == "y";
        if (redirect && !redirect->empty()) {
          c.lower = (*redirect)[0] == '/' ? LookupPath(*redirect) : DirChild(d.lower, *redirect);
          c.fresh = true;
        } else if (is_opaque) {
          c.lower = std::nullopt;
        } else {
          c.lower = DirChild(d.lower, name);
        }
        // An opaque or renamed directory over an image directory hides that directory's
        // content; within a renamed tree the marker at its top already does.
        item.opaque = !d.fresh && c.image && (is_opaque || (redirect && !redirect->empty()));
        c.masked = c.masked || item.opaque;
        plain = !is_opaque && !(redirect && !redirect->empty());
      } else {
        c.lower = v.lower_node;  // a lower directory shown at a new path by a rename
        c.fresh = true;
      }
      const size_t at = out->size();
      const size_t left_out = init_left_out_;
      out->push_back(std::move(item));
      LS_RETURN_IF_ERROR(WalkDir(c, out));
      if (!plain || out->size() != at + 1) continue;
      bool leave_out = made;
      if (!leave_out && c.image && !d.fresh && init_left_out_ > left_out) {
        // Copied up only to hold what was made in it, unless its own metadata changed too (its
        // mtime changed with the mkdir, so that one cannot tell).
        LS_ASSIGN_OR_RETURN(RootfsNode node, image_.Node(*c.image));
        leave_out = node.mode == v.mode && node.uid == v.uid && node.gid == v.gid;
      }
      if (leave_out) {
        out->pop_back();
        ++init_left_out_;
      }
    }
    return {};
  }

  const RootfsIndex& image_;
  const std::string upper_;
  const InitPaths& init_;
  size_t init_left_out_ = 0;  // made paths (and their copied-up parents) left out so far
};

// ---- tar writing (libarchive, pax restricted: ustar headers, pax records only when needed) ----

struct ArchiveFree {
  void operator()(archive* a) const noexcept { Archive().archive_write_free(a); }
};
struct EntryFree {
  void operator()(archive_entry* e) const noexcept { Archive().archive_entry_free(e); }
};

class TarWriter {
 public:
  explicit TarWriter(ByteSink& sink) : sink_(sink) {}
  TarWriter(const TarWriter&) = delete;
  TarWriter& operator=(const TarWriter&) = delete;

  Status Open() {
    LS_RETURN_IF_ERROR(LoadArchive());
    a_.reset(Archive().archive_write_new());
    if (!a_) return Status::ResourceExhausted("archive_write_new failed");
    // xattrs as SCHILY.xattr records only, as Docker (Go's archive/tar) writes them: libarchive
    // would also add LIBARCHIVE.xattr copies, which readers return as a second xattr.
    if (Archive().archive_write_set_format_pax_restricted(a_.get()) != ARCHIVE_OK ||
        Archive().archive_write_set_format_option(a_.get(), "pax", "xattrheader", "SCHILY") != ARCHIVE_OK ||
        Archive().archive_write_set_bytes_in_last_block(a_.get(), 1) != ARCHIVE_OK ||
        Archive().archive_write_open(a_.get(), this, nullptr, &TarWriter::WriteCallback, nullptr) != ARCHIVE_OK) {
      return Error("opening the tar writer");
    }
    return {};
  }

  // The entry at `full` (not followed) as `name`.
  Status AddFromDisk(const std::string& full, const std::string& name) {
    struct stat st;
    if (::lstat(full.c_str(), &st) != 0) return Status::FromErrno("stat " + full, errno);
    if (S_ISSOCK(st.st_mode)) return {};  // tar has no sockets (Docker skips them too)
    std::unique_ptr<archive_entry, EntryFree> e(Archive().archive_entry_new());
    Archive().archive_entry_set_pathname(e.get(), name.c_str());
    Archive().archive_entry_set_mode(e.get(), st.st_mode);
    Archive().archive_entry_set_uid(e.get(), st.st_uid);
    Archive().archive_entry_set_gid(e.get(), st.st_gid);
    Archive().archive_entry_set_mtime(e.get(), st.st_mtim.tv_sec, 0);  // whole seconds, as Docker writes
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
      auto [it, first] = links_.emplace(std::make_pair(st.st_dev, st.st_ino), name);
      if (!first) {
        Archive().archive_entry_set_hardlink(e.get(), it->second.c_str());
        Archive().archive_entry_set_size(e.get(), 0);
        return WriteHeader(e.get(), name);
      }
    }
    if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      for (;;) {
        ssize_t n = ::readlink(full.c_str(), target.data(), target.size());
        if (n < 0) return Status::FromErrno("readlink " + full, errno);
        if (static_cast<size_t>(n) < target.size()) {
          target.resize(static_cast<size_t>(n));
          break;
        }
        target.resize(target.size() * 2);
      }
      Archive().archive_entry_set_symlink(e.get(), target.c_str());
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      Archive().archive_entry_set_rdevmajor(e.get(), major(st.st_rdev));
      Archive().archive_entry_set_rdevminor(e.get(), minor(st.st_rdev));
    }
    Archive().archive_entry_set_size(e.get(), S_ISREG(st.st_mode) ? st.st_size : 0);
    LS_RETURN_IF_ERROR(AddXattrs(full, e.get()));
    if (!S_ISREG(st.st_mode) || st.st_size == 0) return WriteHeader(e.get(), name);

    UniqueFd fd(::open(full.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) return Status::FromErrno("opening " + full, errno);
    LS_RETURN_IF_ERROR(WriteHeader(e.get(), name));
    // Exactly st_size bytes: a file that shrank meanwhile is padded with zeros by libarchive.
    uint64_t left = static_cast<uint64_t>(st.st_size);
    buffer_.resize(1 << 20);
    while (left > 0) {
      ssize_t n = ::read(fd.get(), buffer_.data(), static_cast<size_t>(std::min<uint64_t>(left, buffer_.size())));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno("reading " + full, errno);
      }
      if (n == 0) break;
      if (Archive().archive_write_data(a_.get(), buffer_.data(), static_cast<size_t>(n)) < 0) return Error("writing " + name);
      left -= static_cast<uint64_t>(n);
    }
    if (Archive().archive_write_finish_entry(a_.get()) < ARCHIVE_WARN) return Error("writing " + name);
    return {};
  }

  // An empty regular file: a whiteout or an opaque marker.
  Status AddMarker(const std::string& name) {
    std::unique_ptr<archive_entry, EntryFree> e(Archive().archive_entry_new());
    Archive().archive_entry_set_pathname(e.get(), name.c_str());
    Archive().archive_entry_set_mode(e.get(), AE_IFREG | 0);
    Archive().archive_entry_set_size(e.get(), 0);
    Archive().archive_entry_set_mtime(e.get(), 0, 0);
    return WriteHeader(e.get(), name);
  }

  Status Close() {
    if (Archive().archive_write_close(a_.get()) != ARCHIVE_OK) return Error("finishing the tar");
    return {};
  }

 private:
  static la_ssize_t WriteCallback(archive* a, void* client, const void* buf, size_t n) {
    auto* self = static_cast<TarWriter*>(client);
    Status s = self->sink_.Write(buf, n);
    if (!s.ok()) {
      self->sink_error_ = s;
      Archive().archive_set_error(a, EIO, "%s", s.message().c_str());
      return -1;
    }
    return static_cast<la_ssize_t>(n);
  }

  Status Error(const std::string& what) {
    if (!sink_error_.ok()) return sink_error_;
    const char* msg = Archive().archive_error_string(a_.get());
    return Status::IOError(what + ": " + (msg ? msg : "libarchive error"));
  }

  Status WriteHeader(archive_entry* e, const std::string& name) {
    // ARCHIVE_WARN: e.g. a name that is not valid in the locale, written as raw bytes.
    if (Archive().archive_write_header(a_.get(), e) < ARCHIVE_WARN) return Error("writing the header of " + name);
    return {};
  }

  // Every xattr but POSIX ACLs (system.*) and SELinux labels, which belong to the host.
  Status AddXattrs(const std::string& full, archive_entry* e) {
    ssize_t n = ::llistxattr(full.c_str(), nullptr, 0);
    if (n < 0) {
      if (errno == ENOTSUP) return {};
      return Status::FromErrno("listing xattrs of " + full, errno);
    }
    std::string names(static_cast<size_t>(n), '\0');
    n = ::llistxattr(full.c_str(), names.data(), names.size());
    if (n < 0) return Status::FromErrno("listing xattrs of " + full, errno);
    names.resize(static_cast<size_t>(n));
    for (size_t pos = 0; pos < names.size();) {
      std::string xname(names.c_str() + pos);
      pos += xname.size() + 1;
      if (xname.empty() || xname.rfind("system.", 0) == 0 || xname == "security.selinux") continue;
      LS_ASSIGN_OR_RETURN(auto value, GetXattr(full, xname.c_str()));
      if (!value) continue;  // removed meanwhile
      Archive().archive_entry_xattr_add_entry(e, xname.c_str(), value->data(), value->size());
    }
    return {};
  }

  ByteSink& sink_;
  Status sink_error_;
  std::unique_ptr<archive, ArchiveFree> a_;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;  // first name of each multiply-linked inode
  std::vector<char> buffer_;
};

Status AddTree(TarWriter& w, const std::string& root, const std::string& rel) {
  const std::string dir = rel.empty() ? root : root + "/" + rel;
  LS_ASSIGN_OR_RETURN(std::vector<std::string> names, ReadNames(dir));
  for (const std::string& name : names) {
    const std::string child = Join(rel, name);
    const std::string full = root + "/" + child;
    LS_RETURN_IF_ERROR(w.AddFromDisk(full, child));
    struct stat st;
    if (::lstat(full.c_str(), &st) != 0) return Status::FromErrno("stat " + full, errno);
    if (S_ISDIR(st.st_mode)) LS_RETURN_IF_ERROR(AddTree(w, root, child));
  }
  return {};
}

}  // namespace

Result<std::vector<Change>> ContainerChanges(const RootfsIndex& image, const std::string& upper_dir,
                                             const InitPaths& init) {
  std::vector<Item> items;
  LS_RETURN_IF_ERROR(ChangeWalker(image, upper_dir, init).Walk(&items));
  std::vector<Change> out;
  out.reserve(items.size());
  for (Item& item : items) out.push_back({item.kind, "/" + item.path});
  std::sort(out.begin(), out.end(), [](const Change& a, const Change& b) { return a.path < b.path; });
  return out;
}

Status WriteContainerLayer(const RootfsIndex& image, const std::string& upper_dir, const InitPaths& init,
                           const std::string& view_dir, ByteSink& sink) {
  std::vector<Item> items;
  LS_RETURN_IF_ERROR(ChangeWalker(image, upper_dir, init).Walk(&items));
  TarWriter w(sink);
  LS_RETURN_IF_ERROR(w.Open());
  for (const Item& item : items) {
    if (item.kind == Change::kDeleted) {
      if (item.masked) continue;  // the opaque marker above hides it
      size_t slash = item.path.rfind('/');
      std::string parent = slash == std::string::npos ? "" : item.path.substr(0, slash + 1);
      std::string base = slash == std::string::npos ? item.path : item.path.substr(slash + 1);
      LS_RETURN_IF_ERROR(w.AddMarker(parent + ".wh." + base));
      continue;
    }
    LS_RETURN_IF_ERROR(w.AddFromDisk(view_dir + "/" + item.path, item.path));
    if (item.opaque) LS_RETURN_IF_ERROR(w.AddMarker(item.path + "/.wh..wh..opq"));
  }
  return w.Close();
}

Status WriteDirectoryTar(const std::string& dir, ByteSink& sink) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return Status::FromErrno(dir, errno);
  if (!S_ISDIR(st.st_mode)) return Status::InvalidArgument(dir + " is not a directory");
  TarWriter w(sink);
  LS_RETURN_IF_ERROR(w.Open());
  LS_RETURN_IF_ERROR(AddTree(w, dir, ""));
  return w.Close();
}

}  // namespace layerstore
