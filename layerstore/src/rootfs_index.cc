// RootfsIndex file format (little endian, all offsets from the start of the file):
//
//   Header   magic "STRIDX01", version, counts and offsets of the arrays below, chain id
//   Node[]   72 bytes each; node 0 is the root
//   Dirent[] 16 bytes each; a directory's children are a contiguous run sorted by name (memcmp)
//   Xattr[]  24 bytes each; a node's xattrs are a contiguous run
//   Object[] 32-byte sha256 digests; a regular file's node names one by index
//   strings  names, symlink targets, xattr names and values
#include "rootfs_index.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <deque>

#include "layerstore/sha256.h"
#include "layerstore/unique_fd.h"

namespace layerstore {
namespace {

constexpr char kMagic[8] = {'S', 'T', 'R', 'I', 'D', 'X', '0', '1'};
constexpr uint32_t kVersion = 1;

struct FileHeader {
  char magic[8];
  uint32_t version;
  uint32_t node_count;
  uint64_t dirent_count;
  uint64_t xattr_count;
  uint64_t object_count;
  uint64_t nodes_off, dirents_off, xattrs_off, objects_off, strings_off, strings_size;
  uint8_t chain_id[32];
};

struct FileNode {
  uint32_t mode, uid, gid, nlink;
  uint64_t size;
  int64_t mtime_sec;
  uint32_t mtime_nsec, dev_major, dev_minor, parent;
  uint64_t data;      // dirs: first dirent; symlinks: string offset; regular: object index
  uint32_t data_len;  // dirs: child count; symlinks: target length
  uint32_t xattr_count;
  uint64_t xattr_first;
};
static_assert(sizeof(FileNode) == 72);

struct FileDirent {
  uint64_t name_off;
  uint32_t name_len;
  uint32_t node;
};
static_assert(sizeof(FileDirent) == 16);

struct FileXattr {
  uint64_t name_off;
  uint64_t value_off;
  uint32_t name_len;
  uint32_t value_len;
};
static_assert(sizeof(FileXattr) == 24);

// --- building ---

struct BuildNode {
  RootfsNode attrs;
  std::map<std::string, BuildNode*> children;  // sorted as memcmp: char_traits<char> compares unsigned
  std::string target;
  Digest object;
  std::vector<std::pair<std::string, std::string>> xattrs;
  int64_t id = -1;
  uint32_t dirents = 0;
  bool IsDir() const { return (attrs.mode & S_IFMT) == S_IFDIR; }
};

class Builder {
 public:
  Builder() { root_ = NewDir(); }

  BuildNode* NewNode() {
    arena_.emplace_back();
    return &arena_.back();
  }
  BuildNode* NewDir() {
    BuildNode* n = NewNode();
    n->attrs.mode = S_IFDIR | 0755;
    return n;
  }

  static std::vector<std::string> Split(const std::string& path) {
    std::vector<std::string> parts;
    if (path == ".") return parts;
    size_t i = 0;
    while (i <= path.size()) {
      size_t j = path.find('/', i);
      if (j == std::string::npos) j = path.size();
      parts.push_back(path.substr(i, j - i));
      i = j + 1;
    }
    return parts;
  }

  // The directory at `parts`, or null when any component is missing or not a directory.
  BuildNode* FindDir(const std::vector<std::string>& parts, size_t count) {
    BuildNode* n = root_;
    for (size_t i = 0; i < count; ++i) {
      auto it = n->children.find(parts[i]);
      if (it == n->children.end() || !it->second->IsDir()) return nullptr;
      n = it->second;
    }
    return n;
  }

  // mkdir -p of the parents: a lower non-directory in the way is hidden by the new directory,
  // as an upper directory hides it in overlay.
  BuildNode* MakeParents(const std::vector<std::string>& parts) {
    BuildNode* n = root_;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      auto it = n->children.find(parts[i]);
      if (it == n->children.end() || !it->second->IsDir()) {
        BuildNode* dir = NewDir();
        n->children[parts[i]] = dir;
        n = dir;
      } else {
        n = it->second;
      }
    }
    return n;
  }

  void ApplyDeletion(const Entry& e) {
    auto parts = Split(e.path);
    if (e.type == EntryType::kWhiteout) {
      if (parts.empty()) return;
      if (BuildNode* dir = FindDir(parts, parts.size() - 1)) dir->children.erase(parts.back());
    } else if (BuildNode* dir = FindDir(parts, parts.size())) {
      dir->children.clear();
    }
  }

  static void SetAttrs(BuildNode* n, const Entry& e, uint32_t type) {
    n->attrs.mode = type | (e.mode & 07777);
    n->attrs.uid = e.uid;
    n->attrs.gid = e.gid;
    n->attrs.mtime_sec = e.mtime_sec;
    n->attrs.mtime_nsec = e.mtime_nsec;
    n->xattrs = e.xattrs;
  }

  void ApplyAddition(const Entry& e) {
    auto parts = Split(e.path);
    if (parts.empty()) {  // "." : the root's own attributes
      SetAttrs(root_, e, S_IFDIR);
      return;
    }
    BuildNode* parent = MakeParents(parts);
    const std::string& name = parts.back();
    auto it = parent->children.find(name);
    if (e.type == EntryType::kDirectory) {
      if (it != parent->children.end() && it->second->IsDir()) {
        SetAttrs(it->second, e, S_IFDIR);  // merge: lower children stay
      } else {
        BuildNode* dir = NewDir();
        SetAttrs(dir, e, S_IFDIR);
        parent->children[name] = dir;
      }
      return;
    }
    if (e.type == EntryType::kHardlink) {
      auto target_parts = Split(e.link_target);
      BuildNode* tdir = target_parts.empty() ? nullptr : FindDir(target_parts, target_parts.size() - 1);
      if (tdir) {
        auto t = tdir->children.find(target_parts.back());
        if (t != tdir->children.end() && !t->second->IsDir()) {
          parent->children[name] = t->second;
          return;
        }
      }
      // The target was replaced later in the layer: fall back to a copy of what the entry says.
    }
    BuildNode* n = NewNode();
    switch (e.type) {
      case EntryType::kRegular:
      case EntryType::kHardlink:
        SetAttrs(n, e, S_IFREG);
        n->attrs.size = e.size;
        n->object = e.object;
        break;
      case EntryType::kSymlink:
        SetAttrs(n, e, S_IFLNK);
        n->target = e.link_target;
        n->attrs.size = e.link_target.size();
        break;
      case EntryType::kCharDevice:
      case EntryType::kBlockDevice:
        SetAttrs(n, e, e.type == EntryType::kCharDevice ? S_IFCHR : S_IFBLK);
        n->attrs.dev_major = e.dev_major;
        n->attrs.dev_minor = e.dev_minor;
        break;
      case EntryType::kFifo:
        SetAttrs(n, e, S_IFIFO);
        break;
      default:
        return;
    }
    parent->children[name] = n;
  }

  // A single layer as stored: whiteouts and opaque markers appear as the files that encode them.
  void ApplyRaw(const Entry& e) {
    if (e.type != EntryType::kWhiteout && e.type != EntryType::kOpaque) return ApplyAddition(e);
    Entry marker = e;
    marker.type = EntryType::kRegular;
    marker.size = 0;
    marker.object = Sha256::Of("");
    if (e.type == EntryType::kOpaque) {
      marker.path = (e.path == "." ? "" : e.path + "/") + ".wh..wh..opq";
    } else {
      size_t slash = e.path.rfind('/');
      marker.path = slash == std::string::npos ? ".wh." + e.path
                                               : e.path.substr(0, slash + 1) + ".wh." + e.path.substr(slash + 1);
    }
    ApplyAddition(marker);
  }

  Result<std::string> Serialize(const Digest& chain_id) {
    // Breadth-first ids: the root is 0 and a directory's children get neighbouring ids.
    std::vector<BuildNode*> order;
    std::deque<BuildNode*> queue{root_};
    root_->id = 0;
    order.push_back(root_);
    while (!queue.empty()) {
      BuildNode* dir = queue.front();
      queue.pop_front();
      for (auto& [name, child] : dir->children) {
        ++child->dirents;
        if (child->id >= 0) continue;
        child->id = static_cast<int64_t>(order.size());
        child->attrs.parent = static_cast<uint32_t>(dir->id);
        order.push_back(child);
        if (child->IsDir()) queue.push_back(child);
      }
    }
    if (order.size() > UINT32_MAX) return Status::ResourceExhausted("image has too many files for one index");

    std::string strings;
    auto add_string = [&](std::string_view s) {
      uint64_t off = strings.size();
      strings.append(s);
      return off;
    };
    std::vector<FileNode> nodes(order.size());
    std::vector<FileDirent> dirents;
    std::vector<FileXattr> xattrs;
    std::string objects;
    for (size_t i = 0; i < order.size(); ++i) {
      BuildNode* b = order[i];
      FileNode& f = nodes[i];
      f = FileNode{};
      f.mode = b->attrs.mode;
      f.uid = b->attrs.uid;
      f.gid = b->attrs.gid;
      f.size = b->attrs.size;
      f.mtime_sec = b->attrs.mtime_sec;
      f.mtime_nsec = b->attrs.mtime_nsec;
      f.dev_major = b->attrs.dev_major;
      f.dev_minor = b->attrs.dev_minor;
      f.parent = b->attrs.parent;
      if (b->IsDir()) {
        uint32_t subdirs = 0;
        f.data = dirents.size();
        f.data_len = static_cast<uint32_t>(b->children.size());
        for (auto& [name, child] : b->children) {
          dirents.push_back({add_string(name), static_cast<uint32_t>(name.size()), static_cast<uint32_t>(child->id)});
          if (child->IsDir()) ++subdirs;
        }
        f.nlink = 2 + subdirs;
        f.size = 4096;
      } else {
        f.nlink = b->dirents;
        if ((b->attrs.mode & S_IFMT) == S_IFLNK) {
          f.data = add_string(b->target);
          f.data_len = static_cast<uint32_t>(b->target.size());
        } else if ((b->attrs.mode & S_IFMT) == S_IFREG) {
          f.data = objects.size() / Digest::kSize;
          objects.append(b->object.raw());
        }
      }
      f.xattr_first = xattrs.size();
      f.xattr_count = static_cast<uint32_t>(b->xattrs.size());
      for (const auto& [name, value] : b->xattrs) {
        FileXattr x;
        x.name_off = add_string(name);
        x.name_len = static_cast<uint32_t>(name.size());
        x.value_off = add_string(value);
        x.value_len = static_cast<uint32_t>(value.size());
        xattrs.push_back(x);
      }
    }

    FileHeader h{};
    std::memcpy(h.magic, kMagic, sizeof kMagic);
    h.version = kVersion;
    h.node_count = static_cast<uint32_t>(nodes.size());
    h.dirent_count = dirents.size();
    h.xattr_count = xattrs.size();
    h.object_count = objects.size() / Digest::kSize;
    h.nodes_off = sizeof(FileHeader);
    h.dirents_off = h.nodes_off + nodes.size() * sizeof(FileNode);
    h.xattrs_off = h.dirents_off + dirents.size() * sizeof(FileDirent);
    h.objects_off = h.xattrs_off + xattrs.size() * sizeof(FileXattr);
    h.strings_off = h.objects_off + objects.size();
    h.strings_size = strings.size();
    std::memcpy(h.chain_id, chain_id.raw().data(), 32);

    std::string out;
    out.reserve(h.strings_off + strings.size());
    out.append(reinterpret_cast<const char*>(&h), sizeof h);
    out.append(reinterpret_cast<const char*>(nodes.data()), nodes.size() * sizeof(FileNode));
    out.append(reinterpret_cast<const char*>(dirents.data()), dirents.size() * sizeof(FileDirent));
    out.append(reinterpret_cast<const char*>(xattrs.data()), xattrs.size() * sizeof(FileXattr));
    out.append(objects);
    out.append(strings);
    return out;
  }

 private:
  std::deque<BuildNode> arena_;  // deque: element addresses stay put as it grows
  BuildNode* root_;
};

// --- reading ---

class MappedIndex final : public RootfsIndex {
 public:
  MappedIndex(void* base, size_t size) : base_(static_cast<const char*>(base)), size_(size) {}
  ~MappedIndex() override { ::munmap(const_cast<char*>(base_), size_); }
  MappedIndex(const MappedIndex&) = delete;
  MappedIndex& operator=(const MappedIndex&) = delete;

  Status Validate() {
    if (size_ < sizeof(FileHeader)) return Status::Corruption("rootfs index is truncated");
    std::memcpy(&h_, base_, sizeof h_);
    if (std::memcmp(h_.magic, kMagic, sizeof kMagic) != 0 || h_.version != kVersion) {
      return Status::Corruption("rootfs index has a bad magic or version");
    }
    auto fits = [&](uint64_t off, uint64_t count, uint64_t each) {
      return off <= size_ && count <= (size_ - off) / (each ? each : 1);
    };
    if (h_.node_count == 0 || !fits(h_.nodes_off, h_.node_count, sizeof(FileNode)) ||
        !fits(h_.dirents_off, h_.dirent_count, sizeof(FileDirent)) ||
        !fits(h_.xattrs_off, h_.xattr_count, sizeof(FileXattr)) ||
        !fits(h_.objects_off, h_.object_count, Digest::kSize) || !fits(h_.strings_off, h_.strings_size, 1)) {
      return Status::Corruption("rootfs index sizes do not fit the file");
    }
    chain_id_ = Digest::FromRaw(std::string_view(reinterpret_cast<const char*>(h_.chain_id), 32));
    return {};
  }

  uint32_t node_count() const override { return h_.node_count; }
  const Digest& chain_id() const override { return chain_id_; }

  Result<RootfsNode> Node(uint32_t id) const override {
    const FileNode* f = GetNode(id);
    if (!f) return Status::Corruption("rootfs index: node " + std::to_string(id) + " out of range");
    RootfsNode n;
    n.mode = f->mode;
    n.uid = f->uid;
    n.gid = f->gid;
    n.nlink = f->nlink;
    n.size = f->size;
    n.mtime_sec = f->mtime_sec;
    n.mtime_nsec = f->mtime_nsec;
    n.dev_major = f->dev_major;
    n.dev_minor = f->dev_minor;
    n.parent = f->parent;
    n.child_count = (f->mode & S_IFMT) == S_IFDIR ? f->data_len : 0;
    return n;
  }

  std::optional<uint32_t> Lookup(uint32_t dir, std::string_view name) const override {
    const FileNode* f = GetNode(dir);
    if (!f || (f->mode & S_IFMT) != S_IFDIR || f->data > h_.dirent_count || f->data_len > h_.dirent_count - f->data) {
      return std::nullopt;
    }
    const FileDirent* first = Dirents() + f->data;
    size_t lo = 0, hi = f->data_len;
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      std::string_view candidate = String(first[mid].name_off, first[mid].name_len);
      int c = candidate.compare(name);
      if (c == 0) return first[mid].node < h_.node_count ? std::optional<uint32_t>(first[mid].node) : std::nullopt;
      if (c < 0) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return std::nullopt;
  }

  Result<std::pair<std::string_view, uint32_t>> Child(uint32_t dir, uint32_t i) const override {
    const FileNode* f = GetNode(dir);
    if (!f || (f->mode & S_IFMT) != S_IFDIR || i >= f->data_len || f->data > h_.dirent_count ||
        f->data_len > h_.dirent_count - f->data) {
      return Status::Corruption("rootfs index: no child " + std::to_string(i) + " of node " + std::to_string(dir));
    }
    const FileDirent& d = Dirents()[f->data + i];
    if (d.node >= h_.node_count) return Status::Corruption("rootfs index: dirent names a missing node");
    return std::make_pair(String(d.name_off, d.name_len), d.node);
  }

  Result<std::string_view> SymlinkTarget(uint32_t id) const override {
    const FileNode* f = GetNode(id);
    if (!f || (f->mode & S_IFMT) != S_IFLNK) return Status::InvalidArgument("not a symlink");
    return String(f->data, f->data_len);
  }

  Result<Digest> Object(uint32_t id) const override {
    const FileNode* f = GetNode(id);
    if (!f || (f->mode & S_IFMT) != S_IFREG || f->data >= h_.object_count) {
      return Status::InvalidArgument("not a regular file");
    }
    return Digest::FromRaw(std::string_view(base_ + h_.objects_off + f->data * Digest::kSize, Digest::kSize));
  }

  Result<std::vector<std::pair<std::string_view, std::string_view>>> Xattrs(uint32_t id) const override {
    const FileNode* f = GetNode(id);
    if (!f || f->xattr_first > h_.xattr_count || f->xattr_count > h_.xattr_count - f->xattr_first) {
      return Status::Corruption("rootfs index: bad xattr run");
    }
    std::vector<std::pair<std::string_view, std::string_view>> out;
    const FileXattr* x = reinterpret_cast<const FileXattr*>(base_ + h_.xattrs_off) + f->xattr_first;
    for (uint32_t i = 0; i < f->xattr_count; ++i) {
      out.emplace_back(String(x[i].name_off, x[i].name_len), String(x[i].value_off, x[i].value_len));
    }
    return out;
  }

 private:
  const FileNode* GetNode(uint32_t id) const {
    if (id >= h_.node_count) return nullptr;
    return reinterpret_cast<const FileNode*>(base_ + h_.nodes_off) + id;
  }
  const FileDirent* Dirents() const { return reinterpret_cast<const FileDirent*>(base_ + h_.dirents_off); }
  // Out-of-range strings read as empty rather than past the mapping.
  std::string_view String(uint64_t off, uint64_t len) const {
    if (off > h_.strings_size || len > h_.strings_size - off) return {};
    return std::string_view(base_ + h_.strings_off + off, len);
  }

  const char* base_;
  size_t size_;
  FileHeader h_{};
  Digest chain_id_;
};

}  // namespace

Digest ChainId(const std::vector<Digest>& diff_ids) {
  Digest chain;
  for (size_t i = 0; i < diff_ids.size(); ++i) {
    chain = i == 0 ? diff_ids[0] : Sha256::Of(chain.str() + " " + diff_ids[i].str());
  }
  return chain;
}

Result<std::optional<uint32_t>> ResolvePath(const RootfsIndex& index, std::string_view path) {
  constexpr int kMaxLinks = 40;  // the kernel's limit
  std::deque<std::string> pending;
  auto push_front = [&](std::string_view p) {
    std::deque<std::string> parts;
    for (size_t pos = 0; pos <= p.size();) {
      size_t slash = std::min(p.find('/', pos), p.size());
      if (slash > pos) parts.emplace_back(p.substr(pos, slash - pos));
      pos = slash + 1;
    }
    pending.insert(pending.begin(), parts.begin(), parts.end());
  };
  push_front(path);
  uint32_t node = RootfsIndex::kRoot;
  int links = 0;
  while (!pending.empty()) {
    std::string name = std::move(pending.front());
    pending.pop_front();
    if (name == ".") continue;
    LS_ASSIGN_OR_RETURN(RootfsNode dir, index.Node(node));
    if (!S_ISDIR(dir.mode)) return Status::FailedPrecondition(std::string(path) + ": a component is not a directory");
    if (name == "..") {
      node = dir.parent;  // the root is its own parent: ".." cannot leave it
      continue;
    }
    std::optional<uint32_t> child = index.Lookup(node, name);
    if (!child) return std::optional<uint32_t>();
    LS_ASSIGN_OR_RETURN(RootfsNode found, index.Node(*child));
    if (!S_ISLNK(found.mode)) {
      node = *child;
      continue;
    }
    if (++links > kMaxLinks) return Status::FailedPrecondition(std::string(path) + ": too many levels of symbolic links");
    LS_ASSIGN_OR_RETURN(std::string_view target, index.SymlinkTarget(*child));
    if (!target.empty() && target[0] == '/') node = RootfsIndex::kRoot;  // absolute: from the root
    push_front(target);
  }
  return std::optional<uint32_t>(node);
}

Result<std::string> BuildRootfsIndex(const Digest& chain_id, const std::vector<LayerEntries>& layers, bool raw) {
  Builder builder;
  for (const LayerEntries& layer : layers) {
    if (raw) {
      LS_RETURN_IF_ERROR(layer([&](const Entry& e) {
        builder.ApplyRaw(e);
        return Status();
      }));
      continue;
    }
    // A layer's whiteouts and opaque markers hide what lies below it, never its own files, so
    // they are applied before its additions whatever their order in the tar.
    LS_RETURN_IF_ERROR(layer([&](const Entry& e) {
      if (e.type == EntryType::kWhiteout || e.type == EntryType::kOpaque) builder.ApplyDeletion(e);
      return Status();
    }));
    LS_RETURN_IF_ERROR(layer([&](const Entry& e) {
      if (e.type != EntryType::kWhiteout && e.type != EntryType::kOpaque) builder.ApplyAddition(e);
      return Status();
    }));
  }
  return builder.Serialize(chain_id);
}

Result<std::unique_ptr<RootfsIndex>> OpenRootfsIndex(int dirfd, const std::string& path) {
  UniqueFd fd(::openat(dirfd, path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Status::FromErrno("opening rootfs index " + path, errno);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno("stat " + path, errno);
  size_t size = static_cast<size_t>(st.st_size);
  if (size == 0) return Status::Corruption("rootfs index " + path + " is empty");
  void* base = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd.get(), 0);
  if (base == MAP_FAILED) return Status::FromErrno("mmap " + path, errno);
  auto index = std::make_unique<MappedIndex>(base, size);
  LS_RETURN_IF_ERROR(index->Validate().WithContext(path));
  return std::unique_ptr<RootfsIndex>(std::move(index));
}

}  // namespace layerstore
