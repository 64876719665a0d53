// Container tests: records (create, resolve, list, remove), Docker's name rules, atomic creation,
// the container lock, rmi/prune keeping images that containers use, fsck of crash leftovers,
// lease records with a container, stores that predate containers; and the changes module:
// `docker diff` of a hand-made overlayfs upper directory, the commit layer it yields (applied
// over the image it must give the container's view), and the export tar.
//
// Whiteouts are device nodes and overlay markers are trusted.* xattrs: the tests that build an
// upper directory need root, as the FUSE driver does.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <lmdb.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "layerstore/changes.h"
#include "layerstore/sha256.h"
#include "layerstore/store.h"
#include "lmdb_env.h"
#include "schema.h"
#include "testutil/temp_base.h"

namespace layerstore {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;


void WriteFile(const fs::path& path, std::string_view data, mode_t mode = 0644) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  out.close();
  ASSERT_TRUE(out.good()) << path;
  ASSERT_EQ(::chmod(path.c_str(), mode), 0) << path;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void SetXattr(const fs::path& path, const std::string& name, std::string_view value) {
  ASSERT_EQ(::lsetxattr(path.c_str(), name.c_str(), value.data(), value.size(), 0), 0)
      << path << " " << name << ": " << std::strerror(errno);
}

void Whiteout(const fs::path& path) {
  ASSERT_EQ(::mknod(path.c_str(), S_IFCHR | 0, makedev(0, 0)), 0) << path << ": " << std::strerror(errno);
}

class StringSink final : public ByteSink {
 public:
  Status Write(const void* data, size_t size) override {
    out.append(static_cast<const char*>(data), size);
    return {};
  }
  std::string out;
};

class StringSource final : public ByteSource {
 public:
  explicit StringSource(std::string data) : data_(std::move(data)) {}
  Result<size_t> Read(void* buf, size_t size) override {
    size_t n = std::min(size, data_.size() - pos_);
    std::memcpy(buf, data_.data() + pos_, n);
    pos_ += n;
    return n;
  }
  std::string Name() const override { return "test layer"; }

 private:
  std::string data_;
  size_t pos_ = 0;
};

// One line per entry below the root: path, type and mode, owner, size, content digest, link
// target, device numbers, xattrs, mtime (s), and the first path of its hardlink group.
using Dump = std::vector<std::string>;

std::string Line(const std::string& path, uint32_t mode, uint32_t uid, uint32_t gid, uint64_t size,
                 const std::string& content, const std::string& target, uint32_t maj, uint32_t min,
                 std::vector<std::pair<std::string, std::string>> xattrs, int64_t mtime, const std::string& link) {
  std::sort(xattrs.begin(), xattrs.end());
  std::ostringstream s;
  s << path << " mode=" << std::oct << mode << std::dec << " owner=" << uid << ":" << gid;
  if (S_ISREG(mode)) s << " size=" << size << " sha256=" << content;
  if (S_ISLNK(mode)) s << " target=" << target;
  if (S_ISCHR(mode) || S_ISBLK(mode)) s << " rdev=" << maj << "," << min;
  for (const auto& [n, v] : xattrs) s << " xattr:" << n << "=" << v;
  if (!S_ISLNK(mode)) s << " mtime=" << mtime;
  if (!link.empty()) s << " link=" << link;
  return s.str();
}

void DumpIndex(const RootfsIndex& index, uint32_t dir, const std::string& prefix, std::map<uint32_t, std::string>* seen,
               Dump* out) {
  auto node = index.Node(dir);
  ASSERT_TRUE(node.ok());
  for (uint32_t i = 0; i < node->child_count; ++i) {
    auto child = index.Child(dir, i);
    ASSERT_TRUE(child.ok());
    std::string path = prefix + std::string(child->first);
    auto n = index.Node(child->second);
    ASSERT_TRUE(n.ok());
    std::string content, target, link;
    if (S_ISREG(n->mode)) {
      auto obj = index.Object(child->second);
      ASSERT_TRUE(obj.ok());
      content = obj->hex();
    }
    if (S_ISLNK(n->mode)) target = std::string(*index.SymlinkTarget(child->second));
    if (!S_ISDIR(n->mode) && n->nlink > 1) {
      auto [it, first] = seen->emplace(child->second, path);
      if (!first) link = it->second;
    }
    std::vector<std::pair<std::string, std::string>> xattrs;
    auto x = index.Xattrs(child->second);
    ASSERT_TRUE(x.ok());
    for (const auto& [k, v] : *x) {
      if (std::string_view(k).substr(0, 5) == "user.") xattrs.emplace_back(std::string(k), std::string(v));
    }
    out->push_back(Line(path, n->mode, n->uid, n->gid, n->size, content, target, n->dev_major, n->dev_minor, xattrs,
                        n->mtime_sec, link));
    if (S_ISDIR(n->mode)) DumpIndex(index, child->second, path + "/", seen, out);
  }
}

Dump DumpOf(const RootfsIndex& index) {
  Dump out;
  std::map<uint32_t, std::string> seen;
  DumpIndex(index, RootfsIndex::kRoot, "", &seen, &out);
  return out;
}

Dump DumpOf(const fs::path& root) {
  std::vector<fs::path> paths;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    paths.push_back(it->path());
  }
  std::vector<std::string> rels;
  for (const auto& p : paths) rels.push_back(p.lexically_relative(root).string());
  std::sort(rels.begin(), rels.end(), [](const std::string& a, const std::string& b) {
    // Index order: per directory, children sorted by bytes; so compare component-wise.
    return fs::path(a) < fs::path(b);
  });
  Dump out;
  std::map<std::pair<dev_t, ino_t>, std::string> seen;
  for (const std::string& rel : rels) {
    fs::path full = root / rel;
    struct stat st;
    EXPECT_EQ(::lstat(full.c_str(), &st), 0) << full;
    if (S_ISSOCK(st.st_mode)) continue;
    std::string content, target, link;
    if (S_ISREG(st.st_mode)) content = Sha256::Of(ReadFile(full)).hex();
    if (S_ISLNK(st.st_mode)) target = fs::read_symlink(full).string();
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
      auto [it, first] = seen.emplace(std::make_pair(st.st_dev, st.st_ino), rel);
      if (!first) link = it->second;
    }
    std::vector<std::pair<std::string, std::string>> xattrs;
    char names[4096];
    ssize_t n = ::llistxattr(full.c_str(), names, sizeof names);
    for (ssize_t pos = 0; n > 0 && pos < n;) {
      std::string name(names + pos);
      pos += static_cast<ssize_t>(name.size()) + 1;
      if (name.substr(0, 5) != "user.") continue;
      char value[4096];
      ssize_t v = ::lgetxattr(full.c_str(), name.c_str(), value, sizeof value);
      if (v >= 0) xattrs.emplace_back(name, std::string(value, static_cast<size_t>(v)));
    }
    out.push_back(Line(rel, st.st_mode, st.st_uid, st.st_gid, static_cast<uint64_t>(st.st_size), content, target,
                       major(st.st_rdev), minor(st.st_rdev), xattrs, st.st_mtim.tv_sec, link));
  }
  return out;
}

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines) out += "  " + l + "\n";
  return out;
}

class ContainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = TempBase() + "/strata-containers-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    tmp_ = tmpl;
    root_ = tmp_ / "store";
    Open();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }
  void Open() {
    store_.reset();
    auto s = Store::Open({.root = root_.string()});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }

  // Imports `dir` as one layer (through WriteDirectoryTar, so export is exercised as well).
  Digest ImportDir(const fs::path& dir) {
    StringSink tar;
    Status s = WriteDirectoryTar(dir.string(), tar);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return ImportTar(tar.out);
  }
  Digest ImportTar(std::string tar) {
    auto lease = store_->AcquireWriteLease();
    EXPECT_TRUE(lease.ok());
    StringSource src(std::move(tar));
    auto info = store_->ImportLayer(src, {}, nullptr);
    EXPECT_TRUE(info.ok()) << info.status().ToString();
    return info.ok() ? info->diff_id : Digest();
  }
  Digest MakeImage(const std::vector<Digest>& layers, const std::string& tag) {
    json ids = json::array();
    for (const Digest& d : layers) ids.push_back(d.str());
    json config = {{"architecture", "amd64"},
                   {"os", "linux"},
                   {"config", {{"Cmd", {"sh"}}}},
                   {"rootfs", {{"type", "layers"}, {"diff_ids", ids}}}};
    NewImage image;
    image.config = config.dump();
    if (!tag.empty()) image.tags.push_back(*ParseReference(tag));
    auto rec = store_->CreateImage(image);
    EXPECT_TRUE(rec.ok()) << rec.status().ToString();
    return rec.ok() ? rec->id : Digest();
  }
  // A small image tagged `tag`, with a content distinct per `seed`.
  Digest SimpleImage(const std::string& tag, const std::string& seed = "one") {
    fs::path dir = tmp_ / ("simple-" + seed);
    WriteFile(dir / "etc/hostname", seed + "\n");
    return MakeImage({ImportDir(dir)}, tag);
  }
  ContainerRecord MustCreate(std::string_view name, std::string_view image, std::string_view config = "") {
    auto c = store_->CreateContainer(name, image, config, layerstore::ContainerDurability::kSynced);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? *c : ContainerRecord{};
  }
  size_t Entries(const fs::path& dir) {
    std::error_code ec;
    if (!fs::exists(dir, ec)) return 0;
    return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
  }

  fs::path tmp_, root_;
  std::unique_ptr<Store> store_;
};

// ---------------------------------------------------------------------------------------------
// Records

TEST_F(ContainerTest, CreateResolveListRemove) {
  Digest image = SimpleImage("test/app:1");
  ContainerRecord web = MustCreate("web", "test/app:1", R"({"Cmd":["sh","-c","echo hi"]})");
  EXPECT_TRUE(std::regex_match(web.id, std::regex("[0-9a-f]{64}"))) << web.id;
  EXPECT_EQ(web.name, "web");
  EXPECT_EQ(web.image, "test/app:1");
  EXPECT_EQ(web.image_id, image);
  EXPECT_EQ(json::parse(web.config), json::parse(R"({"Cmd":["sh","-c","echo hi"]})"));
  EXPECT_NEAR(static_cast<double>(web.created_at), static_cast<double>(::time(nullptr)), 5);

  // The directory: upper/ (0755), work/, lock; nothing left under tmp/.
  const std::string dir = store_->ContainerDir(web.id);
  EXPECT_EQ(dir, (fs::absolute(root_) / "containers" / web.id).lexically_normal().string());
  struct stat st;
  ASSERT_EQ(::stat((dir + "/upper").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(Entries(dir + "/upper"), 0u);
  EXPECT_TRUE(fs::is_directory(dir + "/work"));
  EXPECT_TRUE(fs::is_regular_file(dir + "/lock"));
  EXPECT_EQ(Entries(root_ / "tmp"), 0u);

  // A generated name, and a config defaulting to {}.
  ContainerRecord anon = MustCreate("", image.hex().substr(0, 12));
  EXPECT_TRUE(std::regex_match(anon.name, std::regex("[a-z]+_[a-z]+"))) << anon.name;
  EXPECT_EQ(anon.config, "{}");
  EXPECT_EQ(anon.image, image.hex().substr(0, 12));
  EXPECT_NE(anon.id, web.id);

  for (std::string key : {std::string("web"), std::string("/web"), web.id, web.id.substr(0, 12)}) {
    SCOPED_TRACE(key);
    auto r = store_->ResolveContainer(key);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->id, web.id);
    EXPECT_EQ(r->name, "web");
    EXPECT_EQ(r->config, web.config);
  }
  auto missing = store_->ResolveContainer("nosuch");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_EQ(missing.status().message(), "No such container: nosuch");

  auto list = store_->ListContainers();
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_LT((*list)[0].id, (*list)[1].id);

  // Records survive reopening.
  Open();
  auto again = store_->ResolveContainer("web");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->id, web.id);

  ASSERT_TRUE(store_->RemoveContainer(web.id).ok());
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_EQ(store_->ResolveContainer("web").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->RemoveContainer(web.id).code(), Code::kNotFound);
  EXPECT_EQ(store_->RemoveContainer("web").code(), Code::kNotFound) << "RemoveContainer takes a full ID";
  list = store_->ListContainers();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 1u);
}

TEST_F(ContainerTest, AmbiguousIdPrefixAndNamesBeforePrefixes) {
  SimpleImage("test/app:1");
  // 17 containers: two of them share a first hex digit (pigeonhole).
  std::map<char, std::vector<std::string>> by_first;
  for (int i = 0; i < 17; ++i) {
    ContainerRecord c = MustCreate("", "test/app:1");
    by_first[c.id[0]].push_back(c.id);
  }
  auto shared = std::find_if(by_first.begin(), by_first.end(), [](const auto& kv) { return kv.second.size() > 1; });
  ASSERT_NE(shared, by_first.end());
  std::string prefix(1, shared->first);
  auto r = store_->ResolveContainer(prefix);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "multiple IDs found with provided prefix: " + prefix);

  // A name wins over an ID prefix that spells the same.
  std::string victim = shared->second[0];
  ContainerRecord named = MustCreate(victim.substr(0, 6), "test/app:1");
  auto by_name = store_->ResolveContainer(victim.substr(0, 6));
  ASSERT_TRUE(by_name.ok());
  EXPECT_EQ(by_name->id, named.id);
  auto by_id = store_->ResolveContainer(victim);
  ASSERT_TRUE(by_id.ok());
  EXPECT_EQ(by_id->id, victim);
}

TEST_F(ContainerTest, NamesFollowDockerRules) {
  SimpleImage("test/app:1");
  for (std::string bad : {"a", "-web", ".web", "_web", "we b", "web/1", "w\u00e9b", "web:1"}) {
    SCOPED_TRACE(bad);
    auto c = store_->CreateContainer(bad, "test/app:1", "", layerstore::ContainerDurability::kSynced);
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.status().code(), Code::kInvalidArgument);
    EXPECT_EQ(c.status().message(), "Invalid container name (" + bad + "), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
  }
  for (std::string good : {"ab", "Web_1.2-x", "9lives"}) {
    SCOPED_TRACE(good);
    EXPECT_EQ(MustCreate(good, "test/app:1").name, good);
  }
  // Docker's stored form with the leading slash is accepted and stored without it.
  ContainerRecord slashed = MustCreate("/slashed", "test/app:1");
  EXPECT_EQ(slashed.name, "slashed");

  ContainerRecord first = MustCreate("dup", "test/app:1");
  size_t before = Entries(root_ / "containers");
  auto second = store_->CreateContainer("dup", "test/app:1", "", layerstore::ContainerDurability::kSynced);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kAlreadyExists);
  EXPECT_EQ(second.status().message(),
            "Conflict. The container name \"/dup\" is already in use by container \"" + first.id +
                "\". You have to remove (or rename) that container to be able to reuse that name.");
  EXPECT_EQ(Entries(root_ / "containers"), before) << "a refused create leaves no directory";

  // Generated names are Docker's adjective_surname and never collide.
  std::set<std::string> names;
  for (int i = 0; i < 40; ++i) {
    ContainerRecord c = MustCreate("", "test/app:1");
    EXPECT_TRUE(std::regex_match(c.name, std::regex("[a-z]+_[a-z]+[0-9]?"))) << c.name;
    EXPECT_NE(c.name, "boring_wozniak");
    EXPECT_TRUE(names.insert(c.name).second) << c.name;
  }
}

TEST_F(ContainerTest, BadImageOrConfigCreatesNothing) {
  SimpleImage("test/app:1");
  auto c = store_->CreateContainer("x1", "test/nosuch", "", layerstore::ContainerDurability::kSynced);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kNotFound);
  EXPECT_EQ(c.status().message(), "No such image: test/nosuch");
  for (std::string config : {"[1,2]", "{not json", "\"text\""}) {
    SCOPED_TRACE(config);
    auto bad = store_->CreateContainer("x2", "test/app:1", config, layerstore::ContainerDurability::kSynced);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  }
  EXPECT_EQ(Entries(root_ / "containers"), 0u);
  EXPECT_EQ(Entries(root_ / "tmp"), 0u);
  auto list = store_->ListContainers();
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
}

TEST_F(ContainerTest, RemoveWaitsForTheDaemonsLock) {
  SimpleImage("test/app:1");
  ContainerRecord c = MustCreate("served", "test/app:1");
  const std::string lock = store_->ContainerDir(c.id) + "/lock";
  // What the daemon does: an exclusive flock on the lock file, on its own open file description.
  UniqueFd held(::open(lock.c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(held.valid());
  ASSERT_EQ(::flock(held.get(), LOCK_EX | LOCK_NB), 0);
  Status s = store_->RemoveContainer(c.id);
  EXPECT_EQ(s.code(), Code::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find("in use"), std::string::npos) << s.message();
  EXPECT_TRUE(store_->ResolveContainer("served").ok()) << "nothing is removed while the lock is held";
  EXPECT_TRUE(fs::exists(store_->ContainerDir(c.id) + "/upper"));
  held.Reset();
  s = store_->RemoveContainer(c.id);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_FALSE(fs::exists(store_->ContainerDir(c.id)));
}

TEST_F(ContainerTest, RemoveDeletesTheWholeLayer) {
  SimpleImage("test/app:1");
  ContainerRecord c = MustCreate("busy", "test/app:1");
  const fs::path upper = store_->ContainerDir(c.id) + "/upper";
  WriteFile(upper / "a/b/c/file", "data");
  ASSERT_EQ(::symlink("/etc/passwd", (upper / "a/link").c_str()), 0);
  ASSERT_EQ(::chmod((upper / "a/b").c_str(), 0500), 0);  // not writable: made so before removal
  ASSERT_TRUE(store_->RemoveContainer(c.id).ok());
  EXPECT_FALSE(fs::exists(store_->ContainerDir(c.id)));
  EXPECT_TRUE(fs::exists("/etc/passwd")) << "a symlink is removed, never followed";
}

// ---------------------------------------------------------------------------------------------
// Images that containers use

TEST_F(ContainerTest, RmiRefusesAnImageAContainerUses) {
  Digest id = SimpleImage("test/app:1");
  const std::string short_id = id.hex().substr(0, 12);
  ContainerRecord c = MustCreate("user", "test/app:1");
  const std::string cshort = c.id.substr(0, 12);

  auto by_tag = store_->RemoveImage("test/app:1", false);
  ASSERT_FALSE(by_tag.ok());
  EXPECT_EQ(by_tag.status().message(),
            "conflict: unable to remove repository reference \"test/app:1\" (must force) - container " + cshort +
                " is using its referenced image " + short_id);
  auto by_id = store_->RemoveImage(short_id, false);
  ASSERT_FALSE(by_id.ok());
  EXPECT_EQ(by_id.status().message(), "conflict: unable to delete " + short_id +
                                          " (must be forced) - image is being used by stopped container " + cshort);
  ASSERT_TRUE(store_->ResolveImage("test/app:1").ok()) << "refusals change nothing";

  // Prune never takes it, dangling or not.
  auto pruned = store_->PruneImages(true);
  ASSERT_TRUE(pruned.ok());
  EXPECT_TRUE(pruned->events.empty());

  // -f untags but keeps the image while the container exists.
  auto forced = store_->RemoveImage("test/app:1", true);
  ASSERT_TRUE(forced.ok()) << forced.status().ToString();
  ASSERT_EQ(forced->size(), 1u);
  EXPECT_EQ((*forced)[0].kind, RemovalEvent::kUntagged);
  EXPECT_EQ((*forced)[0].what, "test/app:1");
  auto kept = store_->ResolveImage(id.str());
  ASSERT_TRUE(kept.ok());
  EXPECT_TRUE(kept->tags.empty());
  pruned = store_->PruneImages(false);
  ASSERT_TRUE(pruned.ok());
  EXPECT_TRUE(pruned->events.empty()) << "a dangling image a container uses is kept";
  auto dangling_forced = store_->RemoveImage(id.str(), true);
  ASSERT_FALSE(dangling_forced.ok());
  EXPECT_NE(dangling_forced.status().message().find("image is being used by container " + cshort), std::string::npos)
      << dangling_forced.status().message();

  // Several tags, by ID: -f untags them all and keeps the image.
  ASSERT_TRUE(store_->Tag(id, *ParseReference("test/app:2")).ok());
  ASSERT_TRUE(store_->Tag(id, *ParseReference("test/other:1")).ok());
  auto multi = store_->RemoveImage(short_id, false);
  ASSERT_FALSE(multi.ok());
  EXPECT_NE(multi.status().message().find("referenced in multiple repositories"), std::string::npos);
  auto multi_forced = store_->RemoveImage(short_id, true);
  ASSERT_TRUE(multi_forced.ok()) << multi_forced.status().ToString();
  EXPECT_EQ(multi_forced->size(), 2u);
  for (const auto& e : *multi_forced) EXPECT_EQ(e.kind, RemovalEvent::kUntagged);
  ASSERT_TRUE(store_->ResolveImage(id.str()).ok());

  // A mounted container is a running one: refused even with -f.
  ASSERT_TRUE(store_->Tag(id, *ParseReference("test/app:1")).ok());
  MountLease lease{(tmp_ / "mnt").string(), id, ::getpid(), ProcessStartTime(::getpid()), c.id};
  ASSERT_TRUE(store_->AddMountLease(lease).ok());
  auto running = store_->RemoveImage(short_id, true);
  ASSERT_FALSE(running.ok());
  EXPECT_EQ(running.status().message(), "conflict: unable to delete " + short_id +
                                            " (cannot be forced) - image is being used by running container " + cshort);
  ASSERT_TRUE(store_->RemoveMountLease(lease.mountpoint).ok());

  // Once the container is gone, the image goes as usual.
  ASSERT_TRUE(store_->RemoveContainer(c.id).ok());
  auto removed = store_->RemoveImage("test/app:1", false);
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  ASSERT_EQ(removed->size(), 2u);
  EXPECT_EQ((*removed)[1].kind, RemovalEvent::kDeleted);
  EXPECT_EQ(store_->ResolveImage(id.str()).status().code(), Code::kNotFound);
}

TEST_F(ContainerTest, OtherTagsOfAUsedImageCanGo) {
  Digest id = SimpleImage("test/app:1");
  ASSERT_TRUE(store_->Tag(id, *ParseReference("test/app:2")).ok());
  MustCreate("user", "test/app:1");
  auto untag = store_->RemoveImage("test/app:2", false);
  ASSERT_TRUE(untag.ok()) << untag.status().ToString();
  ASSERT_EQ(untag->size(), 1u);
  EXPECT_EQ((*untag)[0].what, "test/app:2");
  // Prune -a keeps the image but another, unused one goes.
  Digest other = SimpleImage("test/unused:1", "two");
  auto pruned = store_->PruneImages(true);
  ASSERT_TRUE(pruned.ok());
  ASSERT_EQ(pruned->events.size(), 2u);
  EXPECT_EQ(pruned->events[1].what, other.str());
  EXPECT_TRUE(store_->ResolveImage("test/app:1").ok());
}

// ---------------------------------------------------------------------------------------------
// Lease files, container records

TEST_F(ContainerTest, LeasesAreFilesAShellCanReadAndFsckRemovesTheDead) {
  Digest img = Sha256::Of("image");
  const std::string mountpoint = (tmp_ / "mnt b").string();
  MountLease container_mount{mountpoint, img, ::getpid(), ProcessStartTime(::getpid()), std::string(64, 'c')};
  ASSERT_TRUE(store_->AddMountLease(container_mount).ok());
  const fs::path file = root_ / "mounts" / Sha256::Of(mountpoint).hex();
  std::ifstream in(file);
  ASSERT_TRUE(in) << file;
  auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["mountpoint"], mountpoint);
  EXPECT_EQ(j["image"], img.str());
  EXPECT_EQ(j["pid"], ::getpid());
  EXPECT_EQ(j["container"], std::string(64, 'c'));
  MountLease image_mount{(tmp_ / "mnt a").string(), img, 42, 7, ""};  // a dead daemon's
  ASSERT_TRUE(store_->AddMountLease(image_mount).ok());
  std::ofstream(root_ / "mounts" / "torn") << "{\"mountpoint\": \"/x\", \"im";

  auto leases = store_->ListMountLeases();
  ASSERT_TRUE(leases.ok());
  ASSERT_EQ(leases->size(), 2u) << "the torn file is no lease";
  EXPECT_EQ((*leases)[0].mountpoint, image_mount.mountpoint) << "ordered by mountpoint";
  EXPECT_TRUE((*leases)[0].container_id.empty());
  EXPECT_EQ((*leases)[0].pid, 42);
  EXPECT_EQ((*leases)[0].start_time, 7u);
  EXPECT_EQ((*leases)[1].container_id, container_mount.container_id);

  auto checked = store_->Fsck({.repair = false});
  ASSERT_TRUE(checked.ok());
  EXPECT_TRUE(fs::exists(root_ / "mounts" / "torn")) << "fsck -n changes nothing";
  auto report = store_->Fsck({});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  std::set<std::string> repaired(report->repaired.begin(), report->repaired.end());
  EXPECT_TRUE(repaired.count("lease of a dead mount daemon at " + image_mount.mountpoint + ": removed"));
  EXPECT_TRUE(repaired.count("unreadable lease mounts/torn: removed"));
  EXPECT_FALSE(fs::exists(root_ / "mounts" / "torn"));
  leases = store_->ListMountLeases();
  ASSERT_TRUE(leases.ok());
  ASSERT_EQ(leases->size(), 1u) << "the live one stays";
  EXPECT_EQ((*leases)[0].mountpoint, mountpoint);

  ASSERT_TRUE(store_->RemoveMountLease(mountpoint).ok());
  EXPECT_FALSE(fs::exists(file));
  EXPECT_TRUE(store_->RemoveMountLease(mountpoint).ok()) << "removing an absent lease is no error";
  leases = store_->ListMountLeases();
  ASSERT_TRUE(leases.ok());
  EXPECT_TRUE(leases->empty());

  ContainerRecord rec{std::string(64, 'a'), "name", img, "busybox", 1700000000, R"({"Cmd":["sh"]})"};
  auto back = DecodeContainer(rec.id, EncodeContainer(rec));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->name, rec.name);
  EXPECT_EQ(back->image_id, rec.image_id);
  EXPECT_EQ(back->image, rec.image);
  EXPECT_EQ(back->created_at, rec.created_at);
  EXPECT_EQ(back->config, rec.config);
}

TEST_F(ContainerTest, StoreFromBeforeContainersOpens) {
  Digest id = SimpleImage("test/app:1");
  store_.reset();
  // Make it an older store: no containers table, no containers/ directory.
  {
    auto env = lmdb::Env::Open((root_ / "meta").string(), size_t{64} << 30);
    ASSERT_TRUE(env.ok());
    auto txn = lmdb::Txn::Begin(**env, true);
    ASSERT_TRUE(txn.ok());
    auto dbi = txn->Open("containers");
    ASSERT_TRUE(dbi.ok());
    ASSERT_EQ(mdb_drop(txn->get(), *dbi, 1), 0);
    ASSERT_TRUE(txn->Commit().ok());
  }
  fs::remove_all(root_ / "containers");
  Open();
  auto list = store_->ListContainers();
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_TRUE(list->empty());
  EXPECT_TRUE(store_->ResolveImage("test/app:1").ok());
  ContainerRecord c = MustCreate("late", "test/app:1");
  EXPECT_EQ(c.image_id, id);
  auto report = store_->Fsck({.repair = false});
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->consistent()) << Join(report->problems);
  EXPECT_TRUE(report->repaired.empty()) << Join(report->repaired);
}

// ---------------------------------------------------------------------------------------------
// Fsck

TEST_F(ContainerTest, FsckRemovesLeftoversAndReportsLostLayers) {
  SimpleImage("test/app:1");
  ContainerRecord keep = MustCreate("keep", "test/app:1");
  ContainerRecord lost = MustCreate("lost", "test/app:1");
  WriteFile(fs::path(store_->ContainerDir(keep.id)) / "upper/etc/file", "changed");
  // What crashes leave: a create interrupted before its commit (a directory without a record,
  // in place or still under tmp/), an rm interrupted after its commit, and a lost directory.
  const std::string orphan_id = std::string(63, 'e') + "1";
  WriteFile(root_ / "containers" / orphan_id / "upper/usr/deep/file", "orphan");
  WriteFile(root_ / "tmp" / ("container-" + orphan_id) / "upper/x", "half-built");
  fs::remove_all(store_->ContainerDir(lost.id));

  auto check = store_->Fsck({.repair = false});
  ASSERT_TRUE(check.ok()) << check.status().ToString();
  ASSERT_EQ(check->problems.size(), 1u) << Join(check->problems);
  EXPECT_NE(check->problems[0].find("container lost (" + lost.id.substr(0, 12) + ")"), std::string::npos)
      << check->problems[0];
  EXPECT_NE(check->problems[0].find("missing"), std::string::npos) << check->problems[0];
  auto has = [&](const std::vector<std::string>& lines, const std::string& needle) {
    return std::any_of(lines.begin(), lines.end(),
                       [&](const std::string& l) { return l.find(needle) != std::string::npos; });
  };
  EXPECT_TRUE(has(check->repaired, "containers/" + orphan_id + " without a record")) << Join(check->repaired);
  EXPECT_TRUE(has(check->repaired, "tmp/container-" + orphan_id)) << Join(check->repaired);
  EXPECT_TRUE(has(check->repaired, "record of container " + lost.id.substr(0, 12))) << Join(check->repaired);
  EXPECT_TRUE(fs::exists(root_ / "containers" / orphan_id)) << "a dry run changes nothing";
  EXPECT_TRUE(store_->ResolveContainer("lost").ok());

  auto repair = store_->Fsck({.repair = true});
  ASSERT_TRUE(repair.ok());
  EXPECT_EQ(repair->problems.size(), 1u) << "the lost layer stays reported: its changes are gone";
  EXPECT_FALSE(fs::exists(root_ / "containers" / orphan_id));
  EXPECT_EQ(Entries(root_ / "tmp"), 0u);
  EXPECT_EQ(store_->ResolveContainer("lost").status().code(), Code::kNotFound);
  auto kept = store_->ResolveContainer("keep");
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(ReadFile(fs::path(store_->ContainerDir(keep.id)) / "upper/etc/file"), "changed");

  auto after = store_->Fsck({.repair = true});
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->consistent()) << Join(after->problems);
  EXPECT_TRUE(after->repaired.empty()) << Join(after->repaired);
}

// ---------------------------------------------------------------------------------------------
// Changes: diff, commit layer, export

class ChangesTest : public ContainerTest {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root: whiteouts are device nodes, overlay markers trusted.* xattrs";
    ContainerTest::SetUp();
    // The image: one layer.
    image_dir_ = tmp_ / "image";
    const fs::path& i = image_dir_;
    WriteFile(i / "etc/passwd", "root:x:0:0::/root:/bin/sh\n");
    WriteFile(i / "etc/group", "root:x:0:\n");
    WriteFile(i / "etc/hosts", "127.0.0.1 localhost\n");
    WriteFile(i / "usr/share/doc/a", "doc a\n");
    WriteFile(i / "usr/share/doc/b/c", "doc c\n");
    WriteFile(i / "usr/bin/tool", "#!/bin/sh\n", 0755);
    ASSERT_EQ(::link((i / "usr/bin/tool").c_str(), (i / "usr/bin/tool-link").c_str()), 0);
    ASSERT_EQ(::symlink("tool", (i / "usr/bin/alias").c_str()), 0);
    WriteFile(i / "opaque/x", "old x\n");
    WriteFile(i / "opaque/y/z", "old z\n");
    WriteFile(i / "keep/file", "kept\n");
    SetXattr(i / "keep/file", "user.color", "blue");
    image_id_ = MakeImage({ImportDir(i)}, "test/base:1");
    auto view = store_->ResolveImage("test/base:1");
    ASSERT_TRUE(view.ok());
    layers_ = view->record.layers;
    auto index = store_->OpenRootfs(layers_, false);
    ASSERT_TRUE(index.ok()) << index.status().ToString();
    index_ = std::move(*index);
  }

  // The container's writable layer as the driver writes it, and its merged view as the driver
  // shows it (a copy of the image with the same changes).
  void MakeChanges() {
    view_ = tmp_ / "view";
    ASSERT_EQ(std::system(("cp -a " + image_dir_.string() + " " + view_.string()).c_str()), 0);
    upper_ = tmp_ / "upper";
    const fs::path& u = upper_;
    const fs::path& v = view_;
    // etc/passwd: chmod only (metacopy: right size, no data, the object named by xattr).
    fs::create_directories(u / "etc");
    WriteFile(u / "etc/passwd", "", 0600);
    ASSERT_EQ(::truncate((u / "etc/passwd").c_str(), static_cast<off_t>(fs::file_size(v / "etc/passwd"))), 0);
    SetXattr(u / "etc/passwd", "trusted.overlay.metacopy", "");
    SetXattr(u / "etc/passwd", "trusted.strata.object", "sha256:" + Sha256::Of(ReadFile(v / "etc/passwd")).hex());
    SetXattr(u / "etc/passwd", "trusted.strata.origin", "12");
    ASSERT_EQ(::chmod((v / "etc/passwd").c_str(), 0600), 0);
    // etc/new and a hardlink to it, with a user xattr: added.
    WriteFile(u / "etc/new", "new file\n");
    ASSERT_EQ(::link((u / "etc/new").c_str(), (u / "etc/new-link").c_str()), 0);
    WriteFile(v / "etc/new", "new file\n");
    ASSERT_EQ(::link((v / "etc/new").c_str(), (v / "etc/new-link").c_str()), 0);
    SetXattr(v / "etc/new", "user.mood", "fresh");
    // etc/group: deleted.
    Whiteout(u / "etc/group");
    fs::remove(v / "etc/group");
    // opaque/: emptied and refilled (rm -rf opaque/*; echo > opaque/x).
    fs::create_directories(u / "opaque");
    SetXattr(u / "opaque", "trusted.overlay.opaque", "y");
    WriteFile(u / "opaque/x", "new x\n");
    fs::remove_all(v / "opaque/y");
    WriteFile(v / "opaque/x", "new x\n");
    // newdir/: a new tree with a fifo, a device and a symlink.
    fs::create_directories(u / "newdir");
    WriteFile(u / "newdir/f", "f\n");
    WriteFile(v / "newdir/f", "f\n");
    for (const fs::path& base : {u, v}) {
      ASSERT_EQ(::mkfifo((base / "newdir/fifo").c_str(), 0640), 0);
      ASSERT_EQ(::mknod((base / "newdir/null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
      ASSERT_EQ(::symlink("../etc/new", (base / "newdir/link").c_str()), 0);
    }
    // usr/share/doc renamed to usr/share/moved, and a file added in it.
    fs::create_directories(u / "usr/share/moved");
    Whiteout(u / "usr/share/doc");
    SetXattr(u / "usr/share/moved", "trusted.overlay.redirect", "/usr/share/doc");
    WriteFile(u / "usr/share/moved/added", "added\n");
    fs::rename(v / "usr/share/doc", v / "usr/share/moved");
    WriteFile(v / "usr/share/moved/added", "added\n");
    // The directories the driver copied up carry the view's metadata.
    for (const char* dir : {"etc", "usr", "usr/share", "opaque"}) {
      struct stat st;
      ASSERT_EQ(::stat((v / dir).c_str(), &st), 0);
      ASSERT_EQ(::chmod((u / dir).c_str(), st.st_mode & 07777), 0);
    }
  }

  fs::path image_dir_, upper_, view_;
  Digest image_id_;
  std::vector<Digest> layers_;
  std::unique_ptr<RootfsIndex> index_;
};

TEST_F(ChangesTest, DiffListsWhatDockerDiffWould) {
  MakeChanges();
  auto changes = ContainerChanges(*index_, upper_.string(), {});
  ASSERT_TRUE(changes.ok()) << changes.status().ToString();
  std::vector<std::string> got;
  for (const Change& c : *changes) got.push_back(std::string(1, static_cast<char>(c.kind)) + " " + c.path);
  std::vector<std::string> want = {
      "C /etc",
      "D /etc/group",
      "A /etc/new",
      "A /etc/new-link",
      "C /etc/passwd",
      "A /newdir",
      "A /newdir/f",
      "A /newdir/fifo",
      "A /newdir/link",
      "A /newdir/null",
      "C /opaque",
      "C /opaque/x",
      "D /opaque/y",
      "C /usr",
      "C /usr/share",
      "D /usr/share/doc",
      "A /usr/share/moved",
      "A /usr/share/moved/a",
      "A /usr/share/moved/added",
      "A /usr/share/moved/b",
      "A /usr/share/moved/b/c",
  };
  EXPECT_EQ(got, want) << Join(got);

  // An empty layer changes nothing; a missing one is NotFound.
  fs::create_directories(tmp_ / "empty");
  auto none = ContainerChanges(*index_, (tmp_ / "empty").string(), {});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(ContainerChanges(*index_, (tmp_ / "nosuch").string(), {}).status().code(), Code::kNotFound);
}

TEST_F(ChangesTest, RelativeRedirectAndRenamedTreeOverAnImageDirectory) {
  // mv usr/share/doc usr/share/doc2 (a relative redirect, as the kernel writes within one
  // directory), then mv usr/bin opaque/y: a renamed tree replacing an image directory.
  upper_ = tmp_ / "upper";
  fs::create_directories(upper_ / "usr/share/doc2");
  SetXattr(upper_ / "usr/share/doc2", "trusted.overlay.redirect", "doc");
  Whiteout(upper_ / "usr/share/doc");
  Whiteout(upper_ / "usr/bin");
  fs::create_directories(upper_ / "opaque/y");
  SetXattr(upper_ / "opaque/y", "trusted.overlay.redirect", "/usr/bin");
  auto changes = ContainerChanges(*index_, upper_.string(), {});
  ASSERT_TRUE(changes.ok()) << changes.status().ToString();
  std::vector<std::string> got;
  for (const Change& c : *changes) got.push_back(std::string(1, static_cast<char>(c.kind)) + " " + c.path);
  std::vector<std::string> want = {
      "C /opaque",
      "C /opaque/y",
      "A /opaque/y/alias",
      "A /opaque/y/tool",
      "A /opaque/y/tool-link",
      "D /opaque/y/z",
      "C /usr",
      "D /usr/bin",
      "C /usr/share",
      "D /usr/share/doc",
      "A /usr/share/doc2",
      "A /usr/share/doc2/a",
      "A /usr/share/doc2/b",
      "A /usr/share/doc2/b/c",
  };
  EXPECT_EQ(got, want) << Join(got);
}

TEST_F(ChangesTest, InitPathsAreLeftOutWhileAsMade) {
  // What a start made where the image had nothing, then what the user did there.
  upper_ = tmp_ / "upper";
  const fs::path& u = upper_;
  fs::create_directories(u / "proc");      // an empty mount point
  fs::create_directories(u / "data/vol");  // a volume target two levels down
  WriteFile(u / "etc/hostname", "");       // a file's mount point: /etc copied up for it
  WriteFile(u / "usr/made", "");           // ... but the user chmod'ed /usr too
  WriteFile(u / "opaque/made", "filled");  // a made file the user wrote to
  WriteFile(u / "keep/mnt/mine", "x");     // a made directory the user filled
  WriteFile(u / "keep/file", "");          // listed, but the image has it: the user's truncation
  WriteFile(u / "newfile", "");            // not made by the runtime
  for (const char* dir : {"etc", "usr", "opaque", "keep"}) {
    struct stat st;
    ASSERT_EQ(::stat((image_dir_ / dir).c_str(), &st), 0);
    ASSERT_EQ(::chmod((u / dir).c_str(), dir == std::string("usr") ? 0700 : st.st_mode & 07777), 0);
  }
  InitPaths init = {"/proc", "/data", "/data/vol", "/etc/hostname", "/usr/made", "/opaque/made",
                    "/keep/mnt", "/keep/file"};
  auto changes = ContainerChanges(*index_, upper_.string(), init);
  ASSERT_TRUE(changes.ok()) << changes.status().ToString();
  std::vector<std::string> got;
  for (const Change& c : *changes) got.push_back(std::string(1, static_cast<char>(c.kind)) + " " + c.path);
  std::vector<std::string> want = {
      "C /keep", "C /keep/file", "A /keep/mnt", "A /keep/mnt/mine", "A /newfile", "C /opaque", "A /opaque/made",
      "C /usr",
  };
  EXPECT_EQ(got, want) << Join(got);

  // Without the record, what was left out shows too.
  auto all = ContainerChanges(*index_, upper_.string(), {});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  std::vector<std::string> all_got;
  for (const Change& c : *all) all_got.push_back(std::string(1, static_cast<char>(c.kind)) + " " + c.path);
  std::vector<std::string> all_want = {"A /data", "A /data/vol", "C /etc", "A /etc/hostname", "A /proc", "A /usr/made"};
  all_want.insert(all_want.end(), want.begin(), want.end());
  std::sort(all_want.begin(), all_want.end(), [](const std::string& a, const std::string& b) {
    return a.substr(2) < b.substr(2);
  });
  EXPECT_EQ(all_got, all_want) << Join(all_got);
}

TEST_F(ChangesTest, CommitLayerOverTheImageGivesTheView) {
  MakeChanges();
  StringSink tar;
  Status s = WriteContainerLayer(*index_, upper_.string(), {}, view_.string(), tar);
  ASSERT_TRUE(s.ok()) << s.ToString();
  Digest diff_id = ImportTar(tar.out);
  ASSERT_FALSE(diff_id.empty());

  // What the layer holds: whiteouts for deletions, an opaque marker for the emptied directory,
  // the renamed tree whole, hardlinks as hardlinks; no whiteout the marker already covers.
  std::map<std::string, Entry> entries;  // the opaque marker shares its directory's path
  std::vector<std::string> names;
  ASSERT_TRUE(store_
                  ->ForEachEntry(diff_id,
                                 [&](const Entry& e) {
                                   if (e.type != EntryType::kOpaque) entries[e.path] = e;
                                   names.push_back(e.path + ":" + EntryTypeName(e.type));
                                   return true;
                                 })
                  .ok());
  std::vector<std::string> want = {
      "etc:directory",
      "etc/group:whiteout",
      "etc/new:file",
      "etc/new-link:hardlink",
      "etc/passwd:file",
      "newdir:directory",
      "newdir/f:file",
      "newdir/fifo:fifo",
      "newdir/link:symlink",
      "newdir/null:char device",
      "opaque:directory",
      "opaque:opaque marker",
      "opaque/x:file",
      "usr:directory",
      "usr/share:directory",
      "usr/share/doc:whiteout",
      "usr/share/moved:directory",
      "usr/share/moved/a:file",
      "usr/share/moved/added:file",
      "usr/share/moved/b:directory",
      "usr/share/moved/b/c:file",
  };
  std::sort(want.begin(), want.end());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, want) << Join(names);
  EXPECT_EQ(entries["etc/passwd"].mode, 0600u);
  EXPECT_EQ(entries["etc/passwd"].object, Sha256::Of(ReadFile(view_ / "etc/passwd")))
      << "a metacopy file's data comes from the view";
  EXPECT_EQ(entries["etc/new-link"].link_target, "etc/new");
  ASSERT_EQ(entries["etc/new"].xattrs.size(), 1u);
  EXPECT_EQ(entries["etc/new"].xattrs[0], (std::pair<std::string, std::string>("user.mood", "fresh")));
  for (const auto& [path, e] : entries) {
    for (const auto& [name, value] : e.xattrs) {
      EXPECT_NE(name.rfind("trusted.overlay.", 0), 0u) << path << " carries the driver's " << name;
    }
  }

  // The image plus the layer is the view, entry for entry.
  std::vector<Digest> committed = layers_;
  committed.push_back(diff_id);
  auto merged = store_->OpenRootfs(committed, false);
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  Dump got = DumpOf(**merged), expect = DumpOf(view_);
  EXPECT_EQ(got, expect) << "committed:\n" << Join(got) << "view:\n" << Join(expect);
}

TEST_F(ChangesTest, ExportIsTheViewFlattened) {
  MakeChanges();
  ASSERT_EQ(::mkfifo((view_ / "newdir/fifo2").c_str(), 0600), 0);
  StringSink tar;
  Status s = WriteDirectoryTar(view_.string(), tar);
  ASSERT_TRUE(s.ok()) << s.ToString();
  Digest diff_id = ImportTar(tar.out);
  auto flat = store_->OpenRootfs({diff_id}, false);
  ASSERT_TRUE(flat.ok()) << flat.status().ToString();
  EXPECT_EQ(DumpOf(**flat), DumpOf(view_));
  // Names in the tar: parents first, sorted, no root entry, no whiteouts.
  std::vector<std::string> order;
  ASSERT_TRUE(store_
                  ->ForEachEntry(diff_id,
                                 [&](const Entry& e) {
                                   order.push_back(e.path);
                                   EXPECT_NE(e.type, EntryType::kWhiteout) << e.path;
                                   return true;
                                 })
                  .ok());
  ASSERT_FALSE(order.empty());
  EXPECT_EQ(order.front(), "etc");
  EXPECT_EQ(std::count(order.begin(), order.end(), "."), 0);
  // Writing is deterministic.
  StringSink again;
  ASSERT_TRUE(WriteDirectoryTar(view_.string(), again).ok());
  EXPECT_EQ(Sha256::Of(again.out), Sha256::Of(tar.out));
  EXPECT_EQ(WriteDirectoryTar((tmp_ / "nosuch").string(), again).code(), Code::kNotFound);
}

// Leases live outside LMDB, a file each, a process's own: whoever opens the store sees them, and
// LMDB's writer lock, which an import holds across its commits, is never taken for one.
TEST_F(ContainerTest, LeasesAreRecordedWhileAWriterHoldsTheMetadata) {
  Digest id = SimpleImage("test/app:1");
  MountLease lease{(tmp_ / "mnt").string(), id, ::getpid(), ProcessStartTime(::getpid()), ""};
  store_.reset();  // one handle of an environment per process
  auto env = lmdb::Env::Open((root_ / "meta").string(), size_t{64} << 30);
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  MDB_txn* writer = nullptr;
  ASSERT_EQ(mdb_txn_begin((*env)->get(), nullptr, 0, &writer), 0);
  // Another process: LMDB's writer lock is per environment and process, and this one holds it.
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto other = Store::Open({.root = root_.string()});
    ::_exit(other.ok() && (*other)->AddMountLease(lease).ok() ? 0 : 1);
  }
  int status = 0;
  bool exited = false;
  for (int i = 0; i < 500 && !exited; ++i) {  // up to 5 s
    exited = ::waitpid(child, &status, WNOHANG) == child;
    if (!exited) ::usleep(10000);
  }
  mdb_txn_abort(writer);
  if (!exited) ::waitpid(child, &status, 0);
  env->reset();
  Open();
  ASSERT_TRUE(exited) << "recording a lease waited for LMDB's writer";
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  auto leases = store_->ListMountLeases();
  ASSERT_TRUE(leases.ok()) << leases.status().ToString();
  ASSERT_EQ(leases->size(), 1u);
  EXPECT_EQ((*leases)[0].mountpoint, lease.mountpoint);
  EXPECT_EQ((*leases)[0].image, id);
}

}  // namespace
}  // namespace layerstore
