// The merged rootfs index: OCI layer semantics (upper wins, whiteouts, opaque directories,
// whiteouts applied below their own layer whatever their position in the tar), hardlinks,
// raw single-layer views, and bounds-checked reading of a damaged file.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "layerstore/sha256.h"
#include "rootfs_index.h"

namespace layerstore {
namespace {

Entry File(std::string path, std::string content, uint32_t mode = 0644) {
  Entry e;
  e.path = std::move(path);
  e.type = EntryType::kRegular;
  e.mode = mode;
  e.size = content.size();
  e.object = Sha256::Of(content);
  return e;
}
Entry Dir(std::string path, uint32_t mode = 0755) {
  Entry e;
  e.path = std::move(path);
  e.type = EntryType::kDirectory;
  e.mode = mode;
  return e;
}
Entry Marker(std::string path, EntryType type) {
  Entry e;
  e.path = std::move(path);
  e.type = type;
  return e;
}
Entry Link(std::string path, std::string target, EntryType type) {
  Entry e;
  e.path = std::move(path);
  e.type = type;
  e.link_target = std::move(target);
  e.mode = 0777;
  return e;
}

LayerEntries Layer(std::vector<Entry> entries) {
  return [entries](const std::function<Status(const Entry&)>& fn) {
    for (const Entry& e : entries) LS_RETURN_IF_ERROR(fn(e));
    return Status();
  };
}

class RootfsIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("rootfs-index-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    dirfd_ = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY);
    ASSERT_GE(dirfd_, 0);
  }
  void TearDown() override {
    ::close(dirfd_);
    std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<RootfsIndex> Build(const std::vector<LayerEntries>& layers, bool raw = false) {
    auto bytes = BuildRootfsIndex(Digest(), layers, raw);
    EXPECT_TRUE(bytes.ok()) << bytes.status().message();
    std::ofstream(dir_ / "index", std::ios::binary) << *bytes;
    auto index = OpenRootfsIndex(dirfd_, "index");
    EXPECT_TRUE(index.ok()) << index.status().message();
    return std::move(*index);
  }

  // The node at a slash-separated path, or nullopt.
  static std::optional<uint32_t> Find(const RootfsIndex& index, const std::string& path) {
    uint32_t node = RootfsIndex::kRoot;
    size_t i = 0;
    while (i < path.size()) {
      size_t j = path.find('/', i);
      if (j == std::string::npos) j = path.size();
      auto child = index.Lookup(node, path.substr(i, j - i));
      if (!child) return std::nullopt;
      node = *child;
      i = j + 1;
    }
    return node;
  }

  static std::vector<std::string> Names(const RootfsIndex& index, uint32_t dir) {
    std::vector<std::string> names;
    auto n = index.Node(dir);
    for (uint32_t i = 0; n.ok() && i < n->child_count; ++i) names.emplace_back(index.Child(dir, i)->first);
    return names;
  }

  std::filesystem::path dir_;
  int dirfd_ = -1;
};

TEST_F(RootfsIndexTest, UpperLayerWinsAndDirectoriesMerge) {
  auto index = Build({Layer({Dir("etc"), File("etc/a", "lower"), File("etc/b", "b")}),
                      Layer({Dir("etc", 0700), File("etc/a", "upper!")})});
  auto a = Find(*index, "etc/a");
  ASSERT_TRUE(a);
  EXPECT_EQ(*index->Object(*a), Sha256::Of("upper!"));
  EXPECT_EQ(index->Node(*a)->size, 6u);
  EXPECT_TRUE(Find(*index, "etc/b")) << "lower children of a merged directory stay";
  EXPECT_EQ(index->Node(*Find(*index, "etc"))->mode, static_cast<uint32_t>(S_IFDIR | 0700));
}

TEST_F(RootfsIndexTest, WhiteoutsAndOpaqueHideOnlyLowerLayers) {
  auto index = Build({Layer({Dir("d"), File("d/old", "x"), File("gone", "y"), Dir("w"), File("w/f", "z")}),
                      // Opaque marker after the layer's own file: the file must survive.
                      Layer({Dir("d"), File("d/new", "n"), Marker("d", EntryType::kOpaque),
                             Marker("gone", EntryType::kWhiteout), Marker("w", EntryType::kWhiteout)})});
  EXPECT_EQ(Names(*index, *Find(*index, "d")), std::vector<std::string>{"new"});
  EXPECT_FALSE(Find(*index, "gone"));
  EXPECT_FALSE(Find(*index, "w"));
  EXPECT_EQ(Names(*index, RootfsIndex::kRoot), (std::vector<std::string>{"d"}));
}

TEST_F(RootfsIndexTest, HardlinksShareOneNodeWithLinkCount) {
  auto index = Build({Layer({File("a", "same"), Link("b", "a", EntryType::kHardlink), Link("s", "a", EntryType::kSymlink)})});
  auto a = Find(*index, "a"), b = Find(*index, "b"), s = Find(*index, "s");
  ASSERT_TRUE(a && b && s);
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(index->Node(*a)->nlink, 2u);
  EXPECT_EQ(*index->SymlinkTarget(*s), "a");
  EXPECT_EQ(index->Node(RootfsIndex::kRoot)->nlink, 2u);
}

TEST_F(RootfsIndexTest, MissingParentsAreCreatedAndReplaceLowerNonDirectories) {
  auto index = Build({Layer({File("x", "file")}), Layer({File("x/y/z", "deep")})});
  auto x = Find(*index, "x");
  ASSERT_TRUE(x);
  EXPECT_EQ(index->Node(*x)->mode & S_IFMT, static_cast<uint32_t>(S_IFDIR));
  EXPECT_TRUE(Find(*index, "x/y/z"));
  EXPECT_EQ(index->Node(*Find(*index, "x/y"))->parent, *x);
}

TEST_F(RootfsIndexTest, RawViewShowsMarkersAsFiles) {
  auto index = Build({Layer({Dir("d"), Marker("d", EntryType::kOpaque), Marker("d/gone", EntryType::kWhiteout),
                             Marker("top", EntryType::kWhiteout)})},
                     true);
  EXPECT_TRUE(Find(*index, "d/.wh..wh..opq"));
  EXPECT_TRUE(Find(*index, "d/.wh.gone"));
  EXPECT_TRUE(Find(*index, ".wh.top"));
}

TEST_F(RootfsIndexTest, ChildrenSortedForBinarySearchOnBytes) {
  std::vector<Entry> entries;
  for (const char* name : {"b", "a", "\xc3\xa9", "A", "_", "aa"}) entries.push_back(File(name, name));
  auto index = Build({Layer(entries)});
  auto names = Names(*index, RootfsIndex::kRoot);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  for (const auto& n : names) EXPECT_TRUE(index->Lookup(RootfsIndex::kRoot, n)) << n;
  EXPECT_FALSE(index->Lookup(RootfsIndex::kRoot, "c"));
}

TEST_F(RootfsIndexTest, DamagedFilesAreRejectedOrReadSafely) {
  std::ofstream(dir_ / "short", std::ios::binary) << "STRIDX01";
  EXPECT_EQ(OpenRootfsIndex(dirfd_, "short").status().code(), Code::kCorruption);

  auto bytes = BuildRootfsIndex(Digest(), {Layer({File("a", "x")})}, false);
  ASSERT_TRUE(bytes.ok());
  std::string damaged = *bytes;
  damaged.resize(damaged.size() / 2);
  std::ofstream(dir_ / "cut", std::ios::binary) << damaged;
  EXPECT_EQ(OpenRootfsIndex(dirfd_, "cut").status().code(), Code::kCorruption);

  auto index = Build({Layer({File("a", "x")})});
  EXPECT_FALSE(index->Node(index->node_count()).ok());
  EXPECT_FALSE(index->Lookup(index->node_count() + 5, "a"));
  EXPECT_FALSE(index->Child(RootfsIndex::kRoot, 99).ok());
}

TEST_F(RootfsIndexTest, ResolvePathFollowsSymlinksInsideTheRoot) {
  auto index = Build({Layer({Dir("etc"), File("etc/passwd", "root:x:0:0::/root:/bin/sh\n"), Dir("usr"),
                             Dir("usr/lib"), File("usr/lib/os-release", "ID=x\n"),
                             Link("etc/os-release", "../usr/lib/os-release", EntryType::kSymlink),
                             Link("abs", "/etc", EntryType::kSymlink), Link("up", "../../..", EntryType::kSymlink),
                             Link("loop", "loop", EntryType::kSymlink), Link("dangling", "nowhere", EntryType::kSymlink)})});
  auto node = [&](const std::string& path) {
    auto r = ResolvePath(*index, path);
    EXPECT_TRUE(r.ok()) << path << ": " << r.status().message();
    return r.ok() ? *r : std::nullopt;
  };
  EXPECT_EQ(node("/etc/passwd"), Find(*index, "etc/passwd"));
  EXPECT_EQ(node("etc//./passwd"), Find(*index, "etc/passwd"));
  EXPECT_EQ(node("/etc/os-release"), Find(*index, "usr/lib/os-release"));   // relative target
  EXPECT_EQ(node("/abs/passwd"), Find(*index, "etc/passwd"));               // absolute target
  EXPECT_EQ(node("/up/etc/passwd"), Find(*index, "etc/passwd"));            // ".." stops at the root
  EXPECT_EQ(node("/../../etc/passwd"), Find(*index, "etc/passwd"));
  EXPECT_EQ(node("/"), std::optional<uint32_t>(RootfsIndex::kRoot));
  EXPECT_EQ(node("/etc/shadow"), std::nullopt);
  EXPECT_EQ(node("/nope/passwd"), std::nullopt);
  EXPECT_EQ(node("/dangling"), std::nullopt);
  EXPECT_EQ(ResolvePath(*index, "/loop").status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(ResolvePath(*index, "/etc/passwd/x").status().code(), Code::kFailedPrecondition);
}

TEST(ChainIdTest, MatchesDockersDefinition) {
  Digest a = Sha256::Of("a"), b = Sha256::Of("b");
  EXPECT_EQ(ChainId({a}), a);
  EXPECT_EQ(ChainId({a, b}), Sha256::Of(a.str() + " " + b.str()));
}

}  // namespace
}  // namespace layerstore
