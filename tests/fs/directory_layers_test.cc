// DirectoryLayers read as overlayfs reads lower directories (every whiteout and opaque form,
// redirects, xattrs), and UnionFs over them writing an upper that overlayfs reads back: copies
// with their data and no strata markers, whiteouts as 0:0 devices, redirects for renamed lower
// directories. Needs root (whiteout devices, trusted.* xattrs). Through a real mount, against
// fuse-overlayfs and kernel overlayfs: tests/integration/test_overlay_dirs.sh.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "directory_layers.h"
#include "ops.h"  // FUSE_SET_ATTR_*
#include "union_fs.h"

namespace layerfs {
namespace {

namespace fs = std::filesystem;

void WriteFile(const fs::path& p, const std::string& data) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << data;
}

void SetXattr(const fs::path& p, const char* name, const std::string& value) {
  ASSERT_EQ(::lsetxattr(p.c_str(), name, value.data(), value.size(), 0), 0) << p << " " << name;
}

std::string Pread(int fd) {
  std::string out(1 << 16, '\0');
  ssize_t n = ::pread(fd, out.data(), out.size(), 0);
  out.resize(n < 0 ? 0 : static_cast<size_t>(n));
  return out;
}

class DirectoryLayersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "whiteout devices and trusted.* xattrs need root";
    tmp_ = fs::temp_directory_path() / ("dir-layers-test-" + std::to_string(::getpid()));
    fs::remove_all(tmp_);
    const fs::path bottom = tmp_ / "bottom", middle = tmp_ / "middle", top = tmp_ / "top";
    // bottom
    WriteFile(bottom / "a/x", "x bottom\n");
    WriteFile(bottom / "a/y", "y\n");
    WriteFile(bottom / "c", "deleted by a .wh. file\n");
    WriteFile(bottom / "d/g", "deleted by a device\n");
    WriteFile(bottom / "e/hidden", "under an opaque xattr\n");
    WriteFile(bottom / "f/hidden", "under .wh..wh..opq\n");
    WriteFile(bottom / "orig/z", "reached through a redirect\n");
    WriteFile(bottom / "x/w", "under an xattr whiteout\n");
    WriteFile(bottom / "x/kept", "kept\n");
    fs::create_symlink("a/x", bottom / "lnk");
    // middle
    WriteFile(middle / "a/x", "x middle\n");
    WriteFile(middle / ".wh.c", "");
    ASSERT_EQ(::mknod((middle / "d").c_str(), S_IFCHR | 0600, makedev(0, 0)), 0);
    WriteFile(middle / "e/shown", "e\n");
    SetXattr(middle / "e", "trusted.overlay.opaque", "y");
    WriteFile(middle / "f/shown", "f\n");
    WriteFile(middle / "f/.wh..wh..opq", "");
    WriteFile(middle / "moved/new", "new\n");
    SetXattr(middle / "moved", "trusted.overlay.redirect", "/orig");
    ASSERT_EQ(::mknod((middle / "orig").c_str(), S_IFCHR | 0600, makedev(0, 0)), 0);
    WriteFile(middle / "x/w", "");
    SetXattr(middle / "x/w", "trusted.overlay.whiteout", "");
    SetXattr(middle / "x", "user.overlay.opaque", "x");
    SetXattr(middle / "a/x", "user.note", "middle");
    // top
    WriteFile(top / "n", "n\n");
    fs::create_directories(tmp_ / "upper");
    fs::create_directories(tmp_ / "work");
    layers_ = {top.string(), middle.string(), bottom.string()};
  }

  void TearDown() override {
    union_.reset();
    if (!tmp_.empty()) fs::remove_all(tmp_);
  }

  std::unique_ptr<DirectoryLayers> OpenLayers() {
    auto opened = DirectoryLayers::Open(layers_);
    EXPECT_TRUE(opened.ok()) << opened.status().message();
    return opened.ok() ? std::move(*opened) : nullptr;
  }

  void MountUnion() {
    union_.reset();
    auto opened = UnionFs::Open(OpenLayers(), (tmp_ / "upper").string(), (tmp_ / "work").string(), {});
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    union_ = std::move(*opened);
  }

  static std::vector<std::string> Children(const DirectoryLayers& layers, uint32_t dir) {
    std::vector<std::string> names;
    for (uint32_t i = 0; i < layers.ChildCount(dir); ++i) names.emplace_back(layers.index().Child(dir, i)->first);
    return names;
  }

  static uint32_t Find(const DirectoryLayers& layers, const std::string& path) {
    uint32_t node = 0;
    for (const auto& part : fs::path(path)) {
      auto child = layers.index().Lookup(node, part.string());
      if (!child) return UINT32_MAX;
      node = *child;
    }
    return node;
  }

  uint64_t Walk(const std::string& path) {
    uint64_t node = 1;
    for (const auto& part : fs::path(path)) {
      EntryOut out;
      if (union_->Lookup(node, part.c_str(), &out) != 0) return 0;
      node = out.nodeid;
    }
    return node;
  }

  std::vector<std::string> List(const std::string& dir) {
    std::unique_ptr<UnionFs::DirHandle> dh;
    EXPECT_EQ(union_->OpenDir(dir.empty() ? 1 : Walk(dir), &dh), 0);
    std::vector<std::string> names;
    for (const auto& item : dh->items) names.push_back(item.name);
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string ReadAll(const std::string& path) {
    std::unique_ptr<UnionFs::FileHandle> fh;
    EXPECT_EQ(union_->Open(Walk(path), O_RDONLY, &fh), 0) << path;
    return fh ? Pread(union_->ReadFd(*fh)) : "";
  }

  fs::path tmp_;
  std::vector<std::string> layers_;
  std::unique_ptr<UnionFs> union_;
};

using Names = std::vector<std::string>;

TEST_F(DirectoryLayersTest, MergesAsOverlayfsDoes) {
  auto layers = OpenLayers();
  ASSERT_TRUE(layers);
  EXPECT_EQ(Children(*layers, 0), (Names{"a", "e", "f", "lnk", "moved", "n", "x"}));
  EXPECT_EQ(Children(*layers, Find(*layers, "a")), (Names{"x", "y"}));
  EXPECT_EQ(Children(*layers, Find(*layers, "e")), (Names{"shown"})) << "opaque by xattr";
  EXPECT_EQ(Children(*layers, Find(*layers, "f")), (Names{"shown"})) << "opaque by .wh..wh..opq";
  EXPECT_EQ(Children(*layers, Find(*layers, "moved")), (Names{"new", "z"})) << "redirect to /orig";
  EXPECT_EQ(Children(*layers, Find(*layers, "x")), (Names{"kept"})) << "xattr whiteout in an opaque=x dir";
  layerstore::UniqueFd fd;
  ASSERT_EQ(layers->OpenContent(Find(*layers, "a/x"), &fd), 0);
  EXPECT_EQ(Pread(fd.get()), "x middle\n");
  ASSERT_EQ(layers->OpenContent(Find(*layers, "moved/z"), &fd), 0);
  EXPECT_EQ(Pread(fd.get()), "reached through a redirect\n");
  EXPECT_EQ(*layers->index().SymlinkTarget(Find(*layers, "lnk")), "a/x");
  EXPECT_EQ(layers->Path(Find(*layers, "moved/z")), "/moved/z");
  auto node = layers->index().Node(Find(*layers, "a/x"));
  ASSERT_TRUE(node.ok());
  EXPECT_EQ(node->size, 9u);
  EXPECT_EQ(node->mode & S_IFMT, static_cast<uint32_t>(S_IFREG));
}

TEST_F(DirectoryLayersTest, ARelativeRedirectIsFollowedFromWhereItsParentWasRenamedFrom) {
  // middle's "moved" merges bottom's "orig"; its "renamed" is bottom's orig/inner renamed (a
  // redirect to a name in the same directory, as overlayfs writes one), not moved/inner.
  WriteFile(tmp_ / "bottom/orig/inner/deep", "deep\n");
  fs::create_directories(tmp_ / "middle/moved/renamed");
  SetXattr(tmp_ / "middle/moved/renamed", "trusted.overlay.redirect", "inner");
  ASSERT_EQ(::mknod((tmp_ / "middle/moved/inner").c_str(), S_IFCHR | 0600, makedev(0, 0)), 0);
  auto layers = OpenLayers();
  ASSERT_TRUE(layers);
  EXPECT_EQ(Children(*layers, Find(*layers, "moved")), (Names{"new", "renamed", "z"}));
  EXPECT_EQ(Children(*layers, Find(*layers, "moved/renamed")), (Names{"deep"}));
}

TEST_F(DirectoryLayersTest, AnUpperWrittenByOverlayfsWithARelativeRedirectIsRead) {
  // Kernel overlayfs renaming a/sub to a/renamed writes the redirect "sub": a name in the lower
  // directory that a/ merges, not a path from the root.
  WriteFile(tmp_ / "bottom/a/sub/k", "k\n");
  fs::create_directories(tmp_ / "upper/a/renamed");
  SetXattr(tmp_ / "upper/a/renamed", "trusted.overlay.redirect", "sub");
  ASSERT_EQ(::mknod((tmp_ / "upper/a/sub").c_str(), S_IFCHR | 0600, makedev(0, 0)), 0);
  MountUnion();
  EXPECT_EQ(List("a"), (Names{"renamed", "x", "y"}));
  EXPECT_EQ(List("a/renamed"), (Names{"k"}));
}

TEST_F(DirectoryLayersTest, ShowsUserXattrsAndHidesOverlayMarkers) {
  auto layers = OpenLayers();
  ASSERT_TRUE(layers);
  auto ax = layers->index().Xattrs(Find(*layers, "a/x"));
  ASSERT_TRUE(ax.ok());
  ASSERT_EQ(ax->size(), 1u);
  EXPECT_EQ((*ax)[0].first, "user.note");
  EXPECT_EQ((*ax)[0].second, "middle");
  auto e = layers->index().Xattrs(Find(*layers, "e"));
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->empty()) << "trusted.overlay.opaque is the union's, not the file's";
}

TEST_F(DirectoryLayersTest, AMissingLayerIsNamed) {
  layers_.push_back((tmp_ / "nonexistent").string());
  auto opened = DirectoryLayers::Open(layers_);
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.status().message().find("nonexistent"), std::string::npos) << opened.status().message();
}

TEST_F(DirectoryLayersTest, TheUpperIsWrittenInOverlayFormat) {
  MountUnion();
  EXPECT_EQ(List(""), (Names{"a", "e", "f", "lnk", "moved", "n", "x"}));
  // A write copies the file up whole: overlayfs has no strata object to fall back on.
  {
    std::unique_ptr<UnionFs::FileHandle> fh;
    ASSERT_EQ(union_->Open(Walk("a/y"), O_WRONLY | O_APPEND, &fh), 0);
    ASSERT_EQ(::write(fh->fd(), "more\n", 5), 5);
  }
  EXPECT_EQ(ReadAll("a/y"), "y\nmore\n");
  // No strata markers in the upper: only overlayfs' origin, the lower file's handle.
  char buf[256];
  ssize_t names = ::listxattr((tmp_ / "upper/a/y").c_str(), buf, sizeof buf);
  ASSERT_GT(names, 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(names)), std::string("trusted.overlay.origin", 23));
  // A chmod copies data too (no metacopy without an object).
  struct stat in {}, out;
  in.st_mode = 0600;
  ASSERT_EQ(union_->SetAttr(Walk("a/x"), in, FUSE_SET_ATTR_MODE, &out), 0);
  struct stat up;
  ASSERT_EQ(::lstat((tmp_ / "upper/a/x").c_str(), &up), 0);
  EXPECT_EQ(up.st_size, 9);
  EXPECT_EQ(ReadAll("a/x"), "x middle\n");
  // Deleting a lower file leaves a 0:0 device; renaming a lower directory leaves a redirect.
  ASSERT_EQ(union_->Unlink(Walk("a"), "x"), 0);
  ASSERT_EQ(::lstat((tmp_ / "upper/a/x").c_str(), &up), 0);
  EXPECT_TRUE(S_ISCHR(up.st_mode) && up.st_rdev == makedev(0, 0));
  ASSERT_EQ(union_->Rename(1, "e", 1, "e2", 0), 0);
  char value[64] = {};
  ASSERT_GT(::getxattr((tmp_ / "upper/e2").c_str(), "trusted.overlay.redirect", value, sizeof value), 0);
  EXPECT_EQ(std::string(value), "/e");
  EXPECT_EQ(List("e2"), (Names{"shown"}));
  // A fresh mount of the same layers and upper sees the same tree.
  MountUnion();
  EXPECT_EQ(List(""), (Names{"a", "e2", "f", "lnk", "moved", "n", "x"}));
  EXPECT_EQ(List("a"), (Names{"y"}));
  EXPECT_EQ(ReadAll("e2/shown"), "e\n");
}

TEST_F(DirectoryLayersTest, AWriteThroughOneNameOfALowerHardlinkChangesThatNameOnly) {
  // As kernel overlayfs without index=on: the copy-up parts the names. (The names used to share a
  // node, so a write through the second name copied up the first one found and landed there,
  // and after a remount the name written through showed the old content again.)
  fs::create_hard_link(tmp_ / "bottom/a/y", tmp_ / "bottom/hl");
  MountUnion();
  EXPECT_EQ(ReadAll("a/y"), "y\n");  // found first
  {
    std::unique_ptr<UnionFs::FileHandle> fh;
    ASSERT_EQ(union_->Open(Walk("hl"), O_WRONLY | O_TRUNC, &fh), 0);
    ASSERT_EQ(::pwrite(fh->fd(), "changed\n", 8, 0), 8);
  }
  EXPECT_EQ(ReadAll("hl"), "changed\n");
  EXPECT_EQ(ReadAll("a/y"), "y\n");
  MountUnion();
  EXPECT_EQ(ReadAll("hl"), "changed\n") << "after a remount";
  EXPECT_EQ(ReadAll("a/y"), "y\n") << "after a remount";
  EXPECT_TRUE(fs::exists(tmp_ / "upper/hl"));
  EXPECT_FALSE(fs::exists(tmp_ / "upper/a/y"));
}

TEST_F(DirectoryLayersTest, ACopyKeepsItsNodeIdAndInodeNumber) {
  fs::create_hard_link(tmp_ / "bottom/a/y", tmp_ / "bottom/hl");
  MountUnion();
  auto stat_of = [&](const std::string& path) {
    struct stat st {};
    EXPECT_EQ(union_->GetAttr(Walk(path), &st), 0) << path;
    return st;
  };
  const uint64_t x_node = Walk("a/x"), y_node = Walk("a/y");
  const ino_t x_ino = stat_of("a/x").st_ino, hl_ino = stat_of("hl").st_ino, n_ino = stat_of("n").st_ino;
  EXPECT_EQ(stat_of("a/y").st_ino, hl_ino);
  struct stat in {}, out;
  in.st_mode = 0600;
  for (const char* path : {"a/x", "a/y", "hl", "n"}) {
    ASSERT_EQ(union_->SetAttr(Walk(path), in, FUSE_SET_ATTR_MODE, &out), 0);
  }
  ASSERT_EQ(union_->Rename(1, "n", Walk("a"), "n2", 0), 0);
  EXPECT_EQ(stat_of("a/n2").st_ino, n_ino);
  // The kernel may look a copy up again at any time (a listing does): it must find the same node,
  // or it would take it for another file, with a page cache of its own.
  EXPECT_EQ(Walk("a/x"), x_node);
  EXPECT_EQ(stat_of("a/x").st_ino, x_ino);
  ASSERT_EQ(union_->Rename(Walk("a"), "y", Walk("a"), "z", 0), 0);
  EXPECT_EQ(Walk("a/z"), y_node) << "renamed after its copy-up";
  // A copy of one name of a hardlinked file is a file of its own now.
  EXPECT_NE(stat_of("hl").st_ino, hl_ino);
  EXPECT_NE(stat_of("a/z").st_ino, stat_of("hl").st_ino);
  // On the next mount, the copy is known by its origin (overlayfs' own xattr).
  MountUnion();
  EXPECT_EQ(stat_of("a/x").st_ino, x_ino);
  EXPECT_EQ(stat_of("a/n2").st_ino, n_ino) << "renamed away from its lower file";
  EXPECT_NE(stat_of("hl").st_ino, hl_ino);
}

TEST_F(DirectoryLayersTest, AUserCannotMakeAWhiteoutDevice) {
  MountUnion();
  EntryOut out;
  EXPECT_EQ(union_->MkNod(1, "fake", S_IFCHR | 0600, makedev(0, 0), {}, &out), EPERM);
  EXPECT_EQ(union_->MkNod(1, "null", S_IFCHR | 0600, makedev(1, 3), {}, &out), 0);
  EXPECT_EQ(union_->Lookup(1, std::string(256, 'n').c_str(), &out), ENAMETOOLONG);
}

TEST_F(DirectoryLayersTest, PathsDeeperThanPathMaxWork) {
  // 40 levels of 120-byte names: 4,840 bytes, more than PATH_MAX, as ext4 allows.
  const std::string level(120, 'd');
  int dir = ::open((tmp_ / "bottom").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(dir, 0);
  std::string path;
  for (int i = 0; i < 40; ++i) {
    ASSERT_EQ(::mkdirat(dir, level.c_str(), 0755), 0);
    int next = ::openat(dir, level.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    ::close(dir);
    ASSERT_GE(next, 0);
    dir = next;
    path += (path.empty() ? "" : "/") + level;
  }
  int file = ::openat(dir, "deep", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  ::close(dir);
  ASSERT_GE(file, 0);
  ASSERT_EQ(::write(file, "bottom of it\n", 13), 13);
  ::close(file);
  MountUnion();
  ASSERT_NE(Walk(path + "/deep"), 0u);
  EXPECT_EQ(ReadAll(path + "/deep"), "bottom of it\n");
  // And a copy-up down there.
  std::unique_ptr<UnionFs::FileHandle> fh;
  ASSERT_EQ(union_->Open(Walk(path + "/deep"), O_WRONLY | O_APPEND, &fh), 0);
  ASSERT_EQ(::write(fh->fd(), "x", 1), 1);
  fh.reset();
  EXPECT_EQ(ReadAll(path + "/deep"), "bottom of it\nx");
}

TEST_F(DirectoryLayersTest, OwnersAreMappedBothWays) {
  OverlayOptions o;
  o.uid_mappings = {{0, 1000, 10}};
  o.gid_mappings = {{0, 2000, 10}};
  ASSERT_EQ(::lchown((tmp_ / "bottom/a/y").c_str(), 1003, 2004), 0);
  auto opened = UnionFs::Open(OpenLayers(), (tmp_ / "upper").string(), (tmp_ / "work").string(), {AttrPolicy(o), true});
  ASSERT_TRUE(opened.ok());
  union_ = std::move(*opened);
  EntryOut out;
  ASSERT_EQ(union_->Lookup(Walk("a"), "y", &out), 0);
  EXPECT_EQ(out.attr.st_uid, 3u);
  EXPECT_EQ(out.attr.st_gid, 4u);
  ASSERT_EQ(union_->Lookup(1, "n", &out), 0);
  EXPECT_EQ(out.attr.st_uid, AttrPolicy::kOverflowId) << "root on disk is not mapped";
  EXPECT_EQ(AttrPolicy(o).DiskUid(5), 1005u);
}

}  // namespace
}  // namespace layerfs
