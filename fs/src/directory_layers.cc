#include "directory_layers.h"
#include "path_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/ioctl.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <climits>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

namespace layerfs {
namespace {

using layerstore::Result;
using layerstore::Status;
using layerstore::UniqueFd;

constexpr char kOpaqueDirMarker[] = ".wh..wh..opq";
constexpr std::string_view kWhiteoutPrefix = ".wh.";

std::string Join(const std::string& dir, std::string_view name) {
  return dir.empty() ? std::string(name) : dir + "/" + std::string(name);
}

// Overlay markers are read in both namespaces: trusted.overlay.* (written by a privileged
// overlayfs) and user.overlay.* (an unprivileged one, userxattr).
std::optional<std::string> ReadMarker(const std::string& path, const char* what, bool no_follow) {
  for (const char* ns : {"trusted.overlay.", "user.overlay."}) {
    if (auto value = ReadXattr(path, (std::string(ns) + what).c_str(), no_follow)) return value;
  }
  return std::nullopt;
}

struct DirMarkers {
  std::optional<std::string> opaque;
  std::optional<std::string> redirect;
};

// One listxattr answers for most directories (they have no xattrs at all).
DirMarkers ReadDirMarkers(const std::string& path) {
  DirMarkers m;
  char names[1024];
  ssize_t n = ::listxattr(path.c_str(), names, sizeof names);
  if (n == 0) return m;
  if (n > 0 && !::memmem(names, static_cast<size_t>(n), "overlay.", 8)) return m;
  m.opaque = ReadMarker(path, "opaque", false);
  m.redirect = ReadMarker(path, "redirect", false);
  return m;
}

// The user-visible name of a lower xattr; nullopt for overlay's and fuse-overlayfs' markers.
std::optional<std::string> VisibleXattr(std::string_view stored) {
  if (StartsWith(stored, "trusted.overlay.overlay.")) return "trusted.overlay." + std::string(stored.substr(24));
  if (StartsWith(stored, "trusted.overlay.") || StartsWith(stored, "user.overlay.") ||
      StartsWith(stored, "user.fuseoverlayfs.") || StartsWith(stored, "trusted.strata.")) {
    return std::nullopt;
  }
  return std::string(stored);
}

// A path below a layer's fd as the kernel takes it: a directory fd and a relative path shorter
// than PATH_MAX (with room for a /proc/self/fd/N/ prefix). A tree may be deeper than PATH_MAX
// bytes (ext4 holds it fine); such a path is walked in pieces, keeping the last directory open.
struct PathAt {
  UniqueFd held;
  int dir = -1;
  std::string rel;  // "." for the layer's root
};

constexpr size_t kMaxRelPath = PATH_MAX - 64;

int ResolveAt(int root, const std::string& path, PathAt* at) {
  at->dir = root;
  std::string_view rest = path;
  while (rest.size() >= kMaxRelPath) {
    size_t cut = rest.rfind('/', kMaxRelPath - 1);
    if (cut == std::string_view::npos || cut == 0) return ENAMETOOLONG;
    const std::string piece(rest.substr(0, cut));
    UniqueFd next(::openat(at->dir, piece.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next) return errno;
    at->held = std::move(next);
    at->dir = at->held.get();
    rest = rest.substr(cut + 1);
  }
  at->rel = rest.empty() ? "." : std::string(rest);
  return 0;
}

// FS_IOC_GETFSUUID (Linux 6.5; Debian 12's headers predate it): the filesystem's UUID as the
// kernel keeps it, which is what overlayfs puts in an origin.
struct FsUuid {
  uint8_t len;
  uint8_t uuid[16];
};
constexpr unsigned long kGetFsUuid = _IOR(0x15, 0, FsUuid);

std::array<uint8_t, 16> LayerUuid(int layer) {
  std::array<uint8_t, 16> uuid{};
  UniqueFd dir(::openat(layer, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  FsUuid got{};
  if (dir && ::ioctl(dir.get(), kGetFsUuid, &got) == 0 && got.len == uuid.size()) {
    std::memcpy(uuid.data(), got.uuid, uuid.size());
  }
  return uuid;
}

// struct ovl_fb, overlayfs' on-disk file handle: version, magic, length, flags, handle type,
// the filesystem's UUID, then the handle itself.
constexpr size_t kOriginHeader = 5 + 16;
constexpr uint8_t kOriginMagic = 0xfb;
constexpr uint8_t kOriginBigEndian = 1;  // OVL_FH_FLAG_BIG_ENDIAN: the handle's byte order

// A file_handle with room for any handle (name_to_handle_at, open_by_handle_at).
struct HandleBuffer {
  file_handle head;
  unsigned char bytes[MAX_HANDLE_SZ];
};

// An origin's UUID field is null when overlayfs ran with uuid=null, or the filesystem has none.
bool NullUuid(std::string_view uuid) { return uuid.find_first_not_of('\0') == std::string_view::npos; }

}  // namespace

Result<std::unique_ptr<DirectoryLayers>> DirectoryLayers::Open(const std::vector<std::string>& dirs,
                                                               std::optional<dev_t> upper_dev) {
  if (dirs.empty()) return Status::InvalidArgument("lowerdir: no directory given");
  std::unique_ptr<DirectoryLayers> layers(new DirectoryLayers());
  if (upper_dev) layers->devices_.push_back(*upper_dev);
  for (const auto& dir : dirs) {
    UniqueFd fd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return Status::FromErrno("lowerdir " + dir, errno);
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return Status::FromErrno("lowerdir " + dir, errno);
    if (std::find(layers->devices_.begin(), layers->devices_.end(), st.st_dev) == layers->devices_.end()) {
      layers->devices_.push_back(st.st_dev);
    }
    layers->layers_.push_back(std::move(fd));
  }
  struct Node root;
  root.type = S_IFDIR;
  root.dir = std::make_unique<Dir>();
  for (uint32_t i = 0; i < dirs.size(); ++i) root.dir->sources.push_back({i, ""});
  layers->nodes_.push_back(std::move(root));
  layers->layer_uuids_.resize(layers->layers_.size());
  layers->max_cached_fds_ = ContentFdBudget();
  return layers;
}

DirectoryLayers::~DirectoryLayers() {
  for (const auto& n : nodes_) {
    if (n.content_fd >= 0) ::close(n.content_fd);
  }
}

DirectoryLayers::Source DirectoryLayers::TopOf(uint32_t node) const {
  if (node == 0) return {0, ""};
  const struct Node& n = nodes_[node];
  const Source& in = nodes_[n.parent].dir->sources[n.top_source];
  return {in.layer, Join(in.path, n.name)};
}

int DirectoryLayers::LoadChildren(uint32_t dir) const {
  Dir& d = *nodes_[dir].dir;
  if (d.have_children) return 0;
  struct Entry {
    std::string name;
    mode_t type;
    struct stat st;
    uint32_t top_source;
    std::vector<Source> sources;
    // A lower layer's same name no longer merges: a whiteout or a non-directory came between.
    bool blocked = false;
  };
  std::vector<Entry> entries;
  std::unordered_map<std::string, size_t> at;  // entries by name
  std::unordered_set<std::string> hidden;  // whited out by a layer already read
  for (size_t s = 0; s < d.sources.size(); ++s) {
    const Source src = d.sources[s];
    PathAt where;
    if (int err = ResolveAt(layers_[src.layer].get(), src.path, &where)) return err;
    UniqueFd fd(::openat(where.dir, where.rel.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
      if (errno == ENOENT || errno == ENOTDIR) continue;  // a redirect to a place this layer lacks
      return errno;
    }
    const std::string proc = ProcPath(fd.get());
    DirMarkers markers = ReadDirMarkers(proc);
    bool opaque = markers.opaque == "y";
    const bool xwhiteouts = markers.opaque == "x";
    std::unique_ptr<DIR, DirCloser> listing(::fdopendir(fd.get()));
    if (!listing) return errno;
    const int list_fd = fd.Release();
    std::vector<std::string> layer_hidden;
    errno = 0;
    while (dirent* e = ::readdir(listing.get())) {
      std::string_view name = e->d_name;
      if (name == "." || name == "..") continue;
      if (name == kOpaqueDirMarker) {
        opaque = true;
        continue;
      }
      if (StartsWith(name, kWhiteoutPrefix)) {
        layer_hidden.emplace_back(name.substr(kWhiteoutPrefix.size()));
        continue;
      }
      mode_t type = DTTOIF(e->d_type);
      struct stat st {};
      bool have_st = false;
      if (e->d_type == DT_UNKNOWN || e->d_type == DT_CHR) {
        if (::fstatat(list_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) return errno;
        have_st = true;
        type = st.st_mode & S_IFMT;
        if (IsWhiteout(st)) {
          layer_hidden.emplace_back(name);
          continue;
        }
      }
      if (xwhiteouts && type == S_IFREG && ReadMarker(proc + "/" + e->d_name, "whiteout", true)) {
        layer_hidden.emplace_back(name);
        continue;
      }
      if (auto it = at.find(std::string(name)); it != at.end()) {
        Entry& above = entries[it->second];
        if (!above.blocked && above.type == S_IFDIR && type == S_IFDIR) {
          above.sources.push_back({src.layer, Join(src.path, name)});
        } else {
          above.blocked = true;
        }
        continue;
      }
      if (hidden.count(std::string(name))) continue;
      Entry entry{std::string(name), type, st, static_cast<uint32_t>(s), {}};
      // Stat now: a lookup or readdirplus needs it next anyway, and it tells hardlinks apart.
      if (!have_st && ::fstatat(list_fd, e->d_name, &entry.st, AT_SYMLINK_NOFOLLOW) != 0) return errno;
      entry.type = entry.st.st_mode & S_IFMT;
      if (entry.type == S_IFDIR) entry.sources.push_back({src.layer, Join(src.path, name)});
      at.emplace(entry.name, entries.size());
      entries.push_back(std::move(entry));
    }
    if (errno != 0) return errno;
    for (auto& name : layer_hidden) {
      if (auto it = at.find(name); it != at.end()) entries[it->second].blocked = true;
      hidden.insert(std::move(name));
    }
    if (opaque) break;
    if (markers.redirect && dir != 0) {
      // What lies below this layer is the directory at the redirect's path, not at this name: an
      // absolute one, or another name in the parent's lower directory of each layer below, which
      // is not at the parent's path in a layer where the parent was renamed too.
      d.sources.resize(s + 1);
      std::vector<Source> targets;
      const std::string& redirect = *markers.redirect;
      if (StartsWith(redirect, "/")) {
        const std::string path = redirect.substr(std::min(redirect.find_first_not_of('/'), redirect.size()));
        for (uint32_t l = src.layer + 1; l < layers_.size(); ++l) targets.push_back({l, path});
      } else {
        for (const Source& parent : nodes_[nodes_[dir].parent].dir->sources) {
          if (parent.layer > src.layer) targets.push_back({parent.layer, Join(parent.path, redirect)});
        }
      }
      for (auto& extra : RedirectSources(targets)) d.sources.push_back(std::move(extra));
    }
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
  std::vector<uint32_t> children;
  children.reserve(entries.size());
  for (auto& e : entries) {
    struct Node n;
    n.name = std::move(e.name);
    n.parent = dir;
    n.type = e.type;
    n.top_source = e.top_source;
    if (e.type == S_IFDIR) {
      n.dir = std::make_unique<Dir>();
      n.dir->sources = std::move(e.sources);
    }
    SetAttr(n, e.st);
    children.push_back(static_cast<uint32_t>(nodes_.size()));
    nodes_.push_back(std::move(n));
  }
  d.children = std::move(children);
  d.have_children = true;
  return 0;
}

// Like overlayfs, a redirect is followed layer by layer down from where it was found (`targets`:
// where to look in each layer below, in order); a layer whose entry there is not a directory, or
// is opaque, ends the merge. (Whiteouts of a path's parents in layers between are not looked for.)
std::vector<DirectoryLayers::Source> DirectoryLayers::RedirectSources(const std::vector<Source>& targets) const {
  std::vector<Source> found;
  for (const Source& target : targets) {
    PathAt at;
    struct stat st;
    if (ResolveAt(layers_[target.layer].get(), target.path, &at) != 0 ||
        ::fstatat(at.dir, at.rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      continue;
    }
    if (!S_ISDIR(st.st_mode)) break;
    found.push_back(target);
    UniqueFd fd(::openat(at.dir, at.rel.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (fd && ReadDirMarkers(ProcPath(fd.get())).opaque == "y") break;
  }
  return found;
}

int DirectoryLayers::LoadAttr(uint32_t id) const {
  struct Node& n = nodes_[id];
  if (n.have_attr) return 0;
  struct stat st;
  PathAt at;
  const Source top = TopOf(id);
  if (int err = ResolveAt(layers_[top.layer].get(), top.path, &at)) return err;
  if (::fstatat(at.dir, at.rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return errno;
  if ((st.st_mode & S_IFMT) != n.type) return ESTALE;  // the layer changed under the mount
  SetAttr(n, st);
  return 0;
}

void DirectoryLayers::SetAttr(struct Node& n, const struct stat& st) const {
  layerstore::RootfsNode& a = n.attr;
  a.mode = st.st_mode;
  a.uid = st.st_uid;
  a.gid = st.st_gid;
  // A merged directory's link count is not known without listing every layer: overlayfs says 1.
  a.nlink = S_ISDIR(st.st_mode) && n.dir && n.dir->sources.size() > 1 ? 1 : static_cast<uint32_t>(st.st_nlink);
  a.size = static_cast<uint64_t>(st.st_size);
  a.mtime_sec = st.st_mtim.tv_sec;
  a.mtime_nsec = static_cast<uint32_t>(st.st_mtim.tv_nsec);
  a.dev_major = major(st.st_rdev);
  a.dev_minor = minor(st.st_rdev);
  a.parent = n.parent;
  n.dev = st.st_dev;
  n.ino = st.st_ino;
  n.have_attr = true;
}

// Overlayfs' numbers where it can: a layer on the upper's filesystem shows its inodes' own
// numbers (as overlayfs does when all layers share one filesystem); a layer on another
// filesystem has that filesystem's index in the top byte (overlayfs' xino does the like), so
// numbers from two filesystems never meet.
uint64_t DirectoryLayers::Ino(uint32_t node) const {
  std::lock_guard lock(mu_);
  if (node >= nodes_.size() || LoadAttr(node) != 0) return uint64_t{node} + 1;
  return InoOf(nodes_[node].dev, nodes_[node].ino);
}

uint64_t DirectoryLayers::InoOf(dev_t dev, ino_t ino) const {
  auto it = std::find(devices_.begin(), devices_.end(), dev);
  const uint64_t index = static_cast<uint64_t>(it - devices_.begin());
  return (index << 56) | (static_cast<uint64_t>(ino) & ((uint64_t{1} << 56) - 1));
}

mode_t DirectoryLayers::Type(uint32_t node) const {
  std::lock_guard lock(mu_);
  return node < nodes_.size() ? nodes_[node].type : 0;
}

uint32_t DirectoryLayers::ChildCount(uint32_t dir) const {
  std::lock_guard lock(mu_);
  if (dir >= nodes_.size() || nodes_[dir].type != S_IFDIR || LoadChildren(dir) != 0) return 0;
  return static_cast<uint32_t>(nodes_[dir].dir->children.size());
}

std::string DirectoryLayers::Path(uint32_t node) const {
  std::lock_guard lock(mu_);
  std::vector<const std::string*> parts;
  while (node != 0 && node < nodes_.size()) {
    parts.push_back(&nodes_[node].name);
    node = nodes_[node].parent;
  }
  std::string path;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) path += "/" + **it;
  return path.empty() ? "/" : path;
}

int DirectoryLayers::OpenContent(uint32_t node, UniqueFd* fd) const {
  std::string path;
  int layer;
  {
    std::lock_guard lock(mu_);
    if (node >= nodes_.size()) return ESTALE;
    if (nodes_[node].type != S_IFREG) return EISDIR;
    Source top = TopOf(node);
    path = std::move(top.path);
    layer = layers_[top.layer].get();
  }
  PathAt at;
  if (int err = ResolveAt(layer, path, &at)) return err;
  fd->Reset(::openat(at.dir, at.rel.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  return fd->valid() ? 0 : errno;
}

// Asked for at the first copy-up from or origin into the layer, not at mount: a mount stays a
// stat of each layer's root.
const std::array<uint8_t, 16>& DirectoryLayers::UuidOf(uint32_t layer) const {
  if (!layer_uuids_[layer]) layer_uuids_[layer] = LayerUuid(layers_[layer].get());
  return *layer_uuids_[layer];
}

std::optional<std::string> DirectoryLayers::OverlayOrigin(uint32_t node) const {
  std::string path;
  uint32_t layer;
  std::array<uint8_t, 16> uuid;
  {
    std::lock_guard lock(mu_);
    if (node >= nodes_.size()) return std::nullopt;
    Source top = TopOf(node);
    path = std::move(top.path);
    layer = top.layer;
    uuid = UuidOf(layer);
  }
  PathAt at;
  if (ResolveAt(layers_[layer].get(), path, &at) != 0) return std::nullopt;
  HandleBuffer handle{};
  handle.head.handle_bytes = MAX_HANDLE_SZ;
  int mount_id;
  if (::name_to_handle_at(at.dir, at.rel.c_str(), &handle.head, &mount_id, 0) != 0) return std::nullopt;
  std::string origin(kOriginHeader, '\0');
  origin[1] = static_cast<char>(kOriginMagic);
  origin[2] = static_cast<char>(kOriginHeader + handle.head.handle_bytes);
  origin[3] = static_cast<char>(std::endian::native == std::endian::big ? kOriginBigEndian : 0);
  origin[4] = static_cast<char>(handle.head.handle_type);
  std::memcpy(origin.data() + 5, uuid.data(), uuid.size());
  origin.append(reinterpret_cast<const char*>(handle.head.f_handle), handle.head.handle_bytes);
  return origin;
}

// By the handle, and by the UUID where both sides have one (overlayfs' uuid=null writes none).
bool DirectoryLayers::IsOriginOf(uint32_t node, std::string_view origin) const {
  auto expected = OverlayOrigin(node);
  if (!expected || origin.size() != expected->size() || origin.size() <= kOriginHeader) return false;
  const std::string_view want = *expected;
  const std::string_view uuid = origin.substr(5, 16), want_uuid = want.substr(5, 16);
  return origin[0] == want[0] && origin[1] == want[1] && origin[2] == want[2] && origin[4] == want[4] &&
         (uuid == want_uuid || NullUuid(uuid) || NullUuid(want_uuid)) &&
         origin.substr(kOriginHeader) == want.substr(kOriginHeader);
}

std::optional<uint64_t> DirectoryLayers::OriginIno(std::string_view origin) const {
  if (origin.size() <= kOriginHeader || static_cast<uint8_t>(origin[1]) != kOriginMagic ||
      static_cast<uint8_t>(origin[2]) != origin.size() || origin.size() - kOriginHeader > MAX_HANDLE_SZ) {
    return std::nullopt;
  }
  HandleBuffer handle{};
  handle.head.handle_bytes = static_cast<unsigned>(origin.size() - kOriginHeader);
  handle.head.handle_type = static_cast<uint8_t>(origin[4]);
  std::memcpy(handle.head.f_handle, origin.data() + kOriginHeader, handle.head.handle_bytes);
  const std::string_view uuid = origin.substr(5, 16);
  const bool null_uuid = NullUuid(uuid);
  for (uint32_t l = 0; l < layers_.size(); ++l) {
    std::array<uint8_t, 16> layer_uuid;
    {
      std::lock_guard lock(mu_);
      layer_uuid = UuidOf(l);
    }
    if (!null_uuid && uuid != std::string_view(reinterpret_cast<const char*>(layer_uuid.data()), layer_uuid.size())) {
      continue;
    }
    // (open_by_handle_at refuses an O_PATH fd for the filesystem.)
    UniqueFd layer(::openat(layers_[l].get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!layer) continue;
    UniqueFd fd(::open_by_handle_at(layer.get(), &handle.head, O_PATH | O_CLOEXEC));
    struct stat st;
    if (!fd || ::fstat(fd.get(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode) || st.st_nlink != 1) return std::nullopt;
    return InoOf(st.st_dev, st.st_ino);
  }
  return std::nullopt;
}

int DirectoryLayers::CachedContentFd(uint32_t node, int* fd, bool* owned) {
  {
    std::lock_guard lock(mu_);
    if (node < nodes_.size() && nodes_[node].content_fd >= 0) {
      *fd = nodes_[node].content_fd;
      *owned = false;
      return 0;
    }
  }
  UniqueFd opened;
  if (int err = OpenContent(node, &opened)) return err;
  std::lock_guard lock(mu_);
  struct Node& n = nodes_[node];
  if (n.content_fd >= 0) {  // another thread cached one first
    *fd = n.content_fd;
    *owned = false;
    return 0;
  }
  if (cached_fds_ >= max_cached_fds_) {
    *fd = opened.Release();
    *owned = true;
    return 0;
  }
  ++cached_fds_;
  n.content_fd = opened.Release();
  *fd = n.content_fd;
  *owned = false;
  return 0;
}

int DirectoryLayers::OpenObject(const layerstore::Digest&, UniqueFd*) const {
  return EIO;  // directory layers hold no objects; an upper that names one belongs to a store mount
}

int DirectoryLayers::StatFs(struct statvfs* st) const {
  return ::fstatvfs(layers_.front().get(), st) == 0 ? 0 : errno;
}

// --- the RootfsIndex face ------------------------------------------------------------------------

uint32_t DirectoryLayers::Index::node_count() const {
  std::lock_guard lock(layers_->mu_);
  return static_cast<uint32_t>(layers_->nodes_.size());
}

Result<layerstore::RootfsNode> DirectoryLayers::Index::Node(uint32_t node) const {
  std::lock_guard lock(layers_->mu_);
  if (node >= layers_->nodes_.size()) return Status::Corruption("node " + std::to_string(node) + " out of range");
  if (int err = layers_->LoadAttr(node)) return Status::FromErrno(layers_->TopOf(node).path, err);
  const struct Node& n = layers_->nodes_[node];
  layerstore::RootfsNode attr = n.attr;
  attr.child_count = n.dir && n.dir->have_children ? static_cast<uint32_t>(n.dir->children.size()) : 0;
  return attr;
}

std::optional<uint32_t> DirectoryLayers::Index::Lookup(uint32_t dir, std::string_view name) const {
  std::lock_guard lock(layers_->mu_);
  const auto& nodes = layers_->nodes_;
  if (dir >= nodes.size() || nodes[dir].type != S_IFDIR || layers_->LoadChildren(dir) != 0) return std::nullopt;
  const auto& children = nodes[dir].dir->children;
  auto it = std::lower_bound(children.begin(), children.end(), name,
                             [&](uint32_t c, std::string_view n) { return nodes[c].name < n; });
  if (it == children.end() || nodes[*it].name != name) return std::nullopt;
  return *it;
}

Result<std::pair<std::string_view, uint32_t>> DirectoryLayers::Index::Child(uint32_t dir, uint32_t i) const {
  std::lock_guard lock(layers_->mu_);
  const auto& nodes = layers_->nodes_;
  if (dir >= nodes.size()) return Status::Corruption("node " + std::to_string(dir) + " out of range");
  if (nodes[dir].type != S_IFDIR) return Status::InvalidArgument("not a directory");
  if (int err = layers_->LoadChildren(dir)) return Status::FromErrno(layers_->TopOf(dir).path, err);
  if (i >= nodes[dir].dir->children.size()) return Status::Corruption("child out of range");
  const uint32_t c = nodes[dir].dir->children[i];
  return std::pair<std::string_view, uint32_t>(nodes[c].name, c);
}

Result<std::string_view> DirectoryLayers::Index::SymlinkTarget(uint32_t node) const {
  std::lock_guard lock(layers_->mu_);
  auto& nodes = layers_->nodes_;
  if (node >= nodes.size() || nodes[node].type != S_IFLNK) return Status::InvalidArgument("not a symlink");
  struct Node& n = nodes[node];
  if (!n.symlink_target) {
    PathAt at;
    const Source top = layers_->TopOf(node);
    if (int err = ResolveAt(layers_->layers_[top.layer].get(), top.path, &at)) return Status::FromErrno(top.path, err);
    char buf[PATH_MAX + 1];
    ssize_t len = ::readlinkat(at.dir, at.rel.c_str(), buf, sizeof buf);
    if (len < 0) return Status::FromErrno(top.path, errno);
    n.symlink_target = std::make_unique<std::string>(buf, static_cast<size_t>(len));
  }
  return std::string_view(*n.symlink_target);
}

Result<layerstore::Digest> DirectoryLayers::Index::Object(uint32_t) const {
  return Status::NotFound("directory layers hold no content objects");
}

Result<std::vector<std::pair<std::string_view, std::string_view>>> DirectoryLayers::Index::Xattrs(uint32_t node) const {
  std::lock_guard lock(layers_->mu_);
  auto& nodes = layers_->nodes_;
  if (node >= nodes.size()) return Status::Corruption("node " + std::to_string(node) + " out of range");
  struct Node& n = nodes[node];
  if (!n.xattrs) {
    // Through the layer's fd, never following the entry itself (a symlink may point anywhere).
    PathAt at;
    const Source top = layers_->TopOf(node);
    if (int err = ResolveAt(layers_->layers_[top.layer].get(), top.path, &at)) return Status::FromErrno(top.path, err);
    const bool root = top.path.empty();
    const std::string path = root ? ProcPath(at.dir) : ProcPath(at.dir) + "/" + at.rel;
    std::string names;
    if (int err = ListXattrNames(path, !root, &names); err && err != ENOTSUP) {
      return Status::FromErrno(top.path, err);
    }
    auto xattrs = std::make_unique<std::vector<std::pair<std::string, std::string>>>();
    for (size_t pos = 0; pos < names.size();) {
      std::string_view stored(names.data() + pos);
      pos += stored.size() + 1;
      auto visible = VisibleXattr(stored);
      if (!visible) continue;
      std::string value;
      if (GetXattrValue(path, std::string(stored).c_str(), !root, &value) != 0) continue;  // removed meanwhile, or not ours to read
      xattrs->emplace_back(std::move(*visible), std::move(value));
    }
    n.xattrs = std::move(xattrs);
  }
  std::vector<std::pair<std::string_view, std::string_view>> out;
  for (const auto& [k, v] : *n.xattrs) out.emplace_back(k, v);
  return out;
}

}  // namespace layerfs
