// UnionFs driven directly, without a kernel: copy-up (data and metadata-only), whiteouts, opaque
// directories, renames of lower directories, hardlinks kept together across copy-up, handles
// opened before a copy-up, stable node ids, and the errors the kernel would give. The same
// semantics are checked through a real mount, against kernel overlayfs, in
// tests/integration/test_union.sh.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "layerstore/sha256.h"
#include "layerstore/store.h"
#include "ops.h"
#include "testutil/tar_builder.h"
#include "union_fs.h"

namespace layerfs {
namespace {

namespace fs = std::filesystem;
using layerstore::Store;
using layerstore::TarBuilder;

std::string Pread(int fd, size_t size, off_t off = 0) {
  std::string out(size, '\0');
  ssize_t n = ::pread(fd, out.data(), size, off);
  out.resize(n < 0 ? 0 : static_cast<size_t>(n));
  return out;
}

class UnionFsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = fs::temp_directory_path() / ("union-fs-test-" + std::to_string(::getpid()));
    fs::remove_all(tmp_);
    fs::create_directories(tmp_ / "upper");
    fs::create_directories(tmp_ / "work");
    std::string layer = TarBuilder()
                            .Dir("etc/")
                            .File("etc/config", "lower config\n")
                            .File("etc/other", "other\n")
                            .Hardlink("etc/config-alias", "etc/config")
                            .Dir("data/")
                            .Dir("data/sub/")
                            .File("data/sub/file", "deep\n")
                            .File("data/top", "top\n")
                            .Symlink("link", "etc/config")
                            .Dir("empty/")
                            .Finish();
    std::vector<layerstore::Digest> layers;
    {
      auto store = Store::Open({.root = (tmp_ / "store").string()});
      ASSERT_TRUE(store.ok()) << store.status().message();
      auto lease = (*store)->AcquireWriteLease();
      ASSERT_TRUE(lease.ok());
      layerstore::StringSource source(layer);
      auto info = (*store)->ImportLayer(source, {}, nullptr);
      ASSERT_TRUE(info.ok()) << info.status().message();
      layers.push_back(info->diff_id);
      config_object_ = layerstore::Sha256::Of("lower config\n");
    }
    Mount(layers);
    layers_ = layers;
  }

  // copy_at_open_below: 0 keeps even this image's small files metadata-only when opened for
  // writing, so that the tests can reach the object's end with a few bytes.
  void Mount(const std::vector<layerstore::Digest>& layers, uint64_t copy_at_open_below = 0) {
    fs_.reset();
    auto store = Store::Open({.root = (tmp_ / "store").string()});
    ASSERT_TRUE(store.ok());
    auto index = (*store)->OpenRootfs(layers, false);
    ASSERT_TRUE(index.ok()) << index.status().message();
    auto opened = UnionFs::Open(std::make_unique<layerfs::StoreLower>(std::move(*store), std::move(*index)),
                                (tmp_ / "upper").string(), (tmp_ / "work").string(),
                                {.copy_at_open_below = copy_at_open_below});
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    fs_ = std::move(*opened);
  }

  void TearDown() override {
    fs_.reset();
    fs::remove_all(tmp_);
  }

  // Looks up a slash-separated path from the root; 0 when absent.
  uint64_t Walk(const std::string& path, struct stat* st = nullptr) {
    uint64_t node = 1;
    EntryOut out;
    size_t pos = 0;
    while (pos < path.size()) {
      size_t end = path.find('/', pos);
      if (end == std::string::npos) end = path.size();
      if (fs_->Lookup(node, path.substr(pos, end - pos).c_str(), &out) != 0) return 0;
      node = out.nodeid;
      pos = end + 1;
    }
    if (st) *st = out.attr;
    return node;
  }

  std::string ReadAll(const std::string& path) {
    uint64_t node = Walk(path);
    EXPECT_NE(node, 0u) << path;
    std::unique_ptr<UnionFs::FileHandle> fh;
    EXPECT_EQ(fs_->Open(node, O_RDONLY, &fh), 0);
    return fh ? ReadVia(*fh, 1 << 16) : "";
  }

  void Write(const std::string& path, const std::string& data, off_t off) {
    std::unique_ptr<UnionFs::FileHandle> fh;
    ASSERT_EQ(fs_->Open(Walk(path), O_RDWR, &fh), 0);
    ASSERT_EQ(WriteVia(*fh, data, off), static_cast<ssize_t>(data.size()));
  }

  // What the FUSE handlers do with a handle: reads as PlanRead says, writes through WriteAt.
  std::string ReadVia(UnionFs::FileHandle& fh, size_t size, off_t off = 0) {
    UnionFs::ReadPlan plan;
    if (fs_->PlanRead(fh, off, size, &plan) != 0) return "<error>";
    if (plan.pieces.empty()) return Pread(plan.fd, size, off);
    std::string out;
    for (const auto& piece : plan.pieces) {
      std::string got = Pread(piece.fd, piece.len, piece.pos);
      out += got;
      if (got.size() < piece.len) break;
    }
    return out;
  }
  ssize_t WriteVia(UnionFs::FileHandle& fh, const std::string& data, off_t off) {
    return fs_->WriteAt(fh, off, data.size(), [&](int fd) { return ::pwrite(fd, data.data(), data.size(), off); });
  }
  off_t SeekVia(UnionFs::FileHandle& fh, off_t off, int whence) {
    off_t at;
    int err = fs_->Seek(fh, off, whence, &at);
    return err ? -err : at;
  }

  std::vector<std::string> List(const std::string& dir) {
    std::unique_ptr<UnionFs::DirHandle> dh;
    EXPECT_EQ(fs_->OpenDir(dir.empty() ? 1 : Walk(dir), &dh), 0);
    std::vector<std::string> names;
    if (dh) {
      for (const auto& item : dh->items) names.push_back(item.name);
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  fs::path Upper(const std::string& rel) const { return tmp_ / "upper" / rel; }

  std::string ObjectXattr(const std::string& rel) const {
    char value[256];
    ssize_t n = ::getxattr(Upper(rel).c_str(), "trusted.strata.object", value, sizeof value);
    return n < 0 ? "" : std::string(value, static_cast<size_t>(n));
  }

  fs::path tmp_;
  std::vector<layerstore::Digest> layers_;
  layerstore::Digest config_object_;
  std::unique_ptr<UnionFs> fs_;
};

TEST_F(UnionFsTest, ReadsTheLowerViewWithoutTouchingUpper) {
  EXPECT_EQ(ReadAll("etc/config"), "lower config\n");
  EXPECT_EQ(List(""), (std::vector<std::string>{"data", "empty", "etc", "link"}));
  EXPECT_TRUE(fs::is_empty(tmp_ / "upper"));
}

TEST_F(UnionFsTest, WriteCopiesUpAndNeverChangesTheObject) {
  uint64_t before = Walk("etc/config");
  Write("etc/config", "UPPER", 0);
  EXPECT_EQ(ReadAll("etc/config"), "UPPER config\n");
  EXPECT_EQ(Walk("etc/config"), before) << "copy-up must keep the node id";
  Mount(layers_);
  EXPECT_EQ(ReadAll("etc/config"), "UPPER config\n") << "after a remount";
  // The shared content object still holds the image's bytes.
  std::ifstream object(tmp_ / "store" / "objects" / config_object_.hex().substr(0, 2) / config_object_.hex().substr(2));
  std::string content((std::istreambuf_iterator<char>(object)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "lower config\n");
}

TEST_F(UnionFsTest, AnAppendCopiesNothingAndAWriteInsideTheObjectCopiesOneBlock) {
  // Larger than the 8 MiB pieces a copy-up hands to writeback, and not a multiple of them.
  std::string big((20 << 20) + 12345, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  {
    auto store = Store::Open({.root = (tmp_ / "store").string()});
    ASSERT_TRUE(store.ok());
    auto lease = (*store)->AcquireWriteLease();
    ASSERT_TRUE(lease.ok());
    layerstore::StringSource source(TarBuilder().Dir("data/").File("data/big", big).Finish());
    auto info = (*store)->ImportLayer(source, {}, nullptr);
    ASSERT_TRUE(info.ok()) << info.status().message();
    layers_.push_back(info->diff_id);
  }
  Mount(layers_);
  std::unique_ptr<UnionFs::FileHandle> before;  // a reader from before the append
  ASSERT_EQ(fs_->Open(Walk("data/big"), O_RDONLY, &before), 0);
  Write("data/big", "!", static_cast<off_t>(big.size()));
  big += '!';
  auto upper_file = [&] {
    std::ifstream upper(Upper("data/big"), std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(upper)), std::istreambuf_iterator<char>());
  };
  struct stat st;
  ASSERT_EQ(::stat(Upper("data/big").c_str(), &st), 0);
  EXPECT_EQ(static_cast<size_t>(st.st_size), big.size());
  EXPECT_LT(st.st_blocks * 512, 1 << 20) << "an append copies none of the object";
  EXPECT_GE(::getxattr(Upper("data/big").c_str(), "trusted.overlay.metacopy", nullptr, 0), 0);
  std::unique_ptr<UnionFs::FileHandle> fh;
  ASSERT_EQ(fs_->Open(Walk("data/big"), O_RDONLY, &fh), 0);
  EXPECT_TRUE(fh->spans_object_end()) << "its reads need the daemon";
  EXPECT_TRUE(ReadVia(*fh, big.size() + 1) == big) << "content after the append";
  EXPECT_EQ(ReadVia(*fh, 10, static_cast<off_t>(big.size()) - 3), big.substr(big.size() - 3));
  EXPECT_EQ(ReadVia(*before, 10, static_cast<off_t>(big.size()) - 3), big.substr(big.size() - 3))
      << "a handle opened before the append reads past the object's end too";
  Mount(layers_);
  ASSERT_EQ(fs_->Open(Walk("data/big"), O_RDONLY, &fh), 0);
  EXPECT_TRUE(ReadVia(*fh, big.size() + 1) == big) << "after a remount";
  // A write below the object's end copies in the rest of its block only, keeping what was
  // appended (the block the object ends in, which the append wrote zeros into below the end,
  // gets the object's bytes there).
  ASSERT_EQ(fs_->Open(Walk("data/big"), O_RDONLY, &before), 0);  // (the old one's mount is gone)
  ASSERT_EQ(ReadVia(*before, 3, 4), big.substr(4, 3));
  Write("data/big", "X", 5);
  big[5] = 'X';
  EXPECT_GE(::getxattr(Upper("data/big").c_str(), "trusted.overlay.metacopy", nullptr, 0), 0);
  EXPECT_TRUE(ObjectXattr("data/big").ends_with(";overrides"));
  ASSERT_EQ(::stat(Upper("data/big").c_str(), &st), 0);
  EXPECT_LT(st.st_blocks * 512, 1 << 20) << "a write inside copies a block, not the file";
  EXPECT_TRUE(ReadVia(*fh, big.size() + 1) == big);
  EXPECT_TRUE(ReadVia(*before, big.size() + 1) == big) << "a handle opened before the write";
  // Writes across block boundaries, at a block's start, into the block the object ends in,
  // and one covering whole blocks.
  const std::vector<std::pair<off_t, std::string>> writes = {
      {4090, "across-a-block-boundary"},
      {8192, "at-a-block"},
      {static_cast<off_t>(big.size()) - 20, "into-the-last-block"},
      {3 << 20, std::string(3 * 4096 + 5, 'W')}, {(5 << 20) + 17, std::string(2 << 20, 'V')}};
  for (const auto& [off, data] : writes) {
    Write("data/big", data, off);
    big.replace(static_cast<size_t>(off), data.size(), data);
  }
  EXPECT_TRUE(ReadVia(*fh, big.size() + 1) == big) << "after writes of every shape";
  EXPECT_EQ(ReadVia(*fh, 30, 4085), big.substr(4085, 30)) << "a read across an override's edge";
  Mount(layers_);
  ASSERT_EQ(fs_->Open(Walk("data/big"), O_RDONLY, &fh), 0);
  EXPECT_TRUE(fh->spans_object_end());
  EXPECT_TRUE(ReadVia(*fh, big.size() + 1) == big) << "after a remount";
  // lseek sees data all through (object and upper file alike hold data everywhere here).
  EXPECT_EQ(SeekVia(*fh, 0, SEEK_HOLE), static_cast<off_t>(big.size()));
  EXPECT_EQ(SeekVia(*fh, 4096 * 100, SEEK_DATA), 4096 * 100);
  // Filling the copy in (a truncation below the object's end, here by one byte) keeps every
  // override.
  struct stat in {};
  in.st_size = static_cast<off_t>(big.size()) - 2;
  struct stat out;
  ASSERT_EQ(fs_->SetAttr(Walk("data/big"), in, FUSE_SET_ATTR_SIZE, &out), 0);
  big.resize(big.size() - 2);
  EXPECT_LT(::getxattr(Upper("data/big").c_str(), "trusted.overlay.metacopy", nullptr, 0), 0);
  EXPECT_TRUE(upper_file() == big) << "the upper file holds the whole content";
  EXPECT_TRUE(ReadVia(*fh, big.size() + 1) == big);
}

TEST_F(UnionFsTest, TruncatingPastTheObjectsEndCopiesNothing) {
  struct stat in {};
  in.st_size = 1 << 20;
  struct stat out;
  ASSERT_EQ(fs_->SetAttr(Walk("etc/other"), in, FUSE_SET_ATTR_SIZE, &out), 0);
  EXPECT_EQ(out.st_size, 1 << 20);
  EXPECT_GE(::getxattr(Upper("etc/other").c_str(), "trusted.overlay.metacopy", nullptr, 0), 0);
  std::string want = "other\n";
  want.resize(1 << 20);
  EXPECT_TRUE(ReadAll("etc/other").substr(0, 16) == want.substr(0, 16));
  std::unique_ptr<UnionFs::FileHandle> fh;
  ASSERT_EQ(fs_->Open(Walk("etc/other"), O_RDONLY, &fh), 0);
  EXPECT_TRUE(ReadVia(*fh, 2 << 20) == want);
  EXPECT_EQ(SeekVia(*fh, 0, SEEK_DATA), 0);
  EXPECT_EQ(SeekVia(*fh, 0, SEEK_HOLE), 6) << "the extension is a hole";
  EXPECT_EQ(SeekVia(*fh, 6, SEEK_DATA), -ENXIO);
}

TEST_F(UnionFsTest, ChangesBelowAnAppendedObjectsEndFillTheCopyInFirst) {
  // Each case appends "++" to etc/other ("other\n"), then changes it in another way.
  auto appended = [&] {
    Mount(layers_);
    Write("etc/other", "++", 6);
    EXPECT_GE(::getxattr(Upper("etc/other").c_str(), "trusted.overlay.metacopy", nullptr, 0), 0);
  };
  appended();
  std::unique_ptr<UnionFs::FileHandle> fh;
  ASSERT_EQ(fs_->Open(Walk("etc/other"), O_RDWR, &fh), 0);
  auto punch = [](int fd) { return ::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1, 2) == 0 ? 0 : errno; };
  ASSERT_EQ(fs_->AllocateAt(*fh, 1, punch), 0);
  EXPECT_EQ(ReadAll("etc/other"), std::string("o\0\0er\n++", 8)) << "a hole punched in the object's bytes";

  fs::remove_all(Upper("etc"));
  appended();
  struct stat in {};
  in.st_size = 3;
  struct stat out;
  ASSERT_EQ(fs_->SetAttr(Walk("etc/other"), in, FUSE_SET_ATTR_SIZE, &out), 0);
  EXPECT_EQ(ReadAll("etc/other"), "oth") << "truncated into the object's bytes";
  in.st_size = 10;
  ASSERT_EQ(fs_->SetAttr(Walk("etc/other"), in, FUSE_SET_ATTR_SIZE, &out), 0);
  EXPECT_EQ(ReadAll("etc/other"), std::string("oth\0\0\0\0\0\0\0", 10)) << "and extended again: zeros";

  fs::remove_all(Upper("etc"));
  appended();
  ASSERT_EQ(fs_->Open(Walk("etc/other"), O_RDONLY, &fh), 0);
  EXPECT_EQ(SeekVia(*fh, 0, SEEK_HOLE), 8) << "data and holes of the whole content";
  EXPECT_EQ(SeekVia(*fh, 3, SEEK_DATA), 3);
  EXPECT_EQ(SeekVia(*fh, 8, SEEK_DATA), -ENXIO);
  EXPECT_GE(::getxattr(Upper("etc/other").c_str(), "trusted.overlay.metacopy", nullptr, 0), 0)
      << "answered without filling the copy in";
  EXPECT_EQ(ReadAll("etc/other"), "other\n++");
}

TEST_F(UnionFsTest, HardlinkedNamesStayOneFileAcrossCopyUp) {
  EXPECT_EQ(Walk("etc/config"), Walk("etc/config-alias"));
  Write("etc/config", "X", 0);
  EXPECT_EQ(ReadAll("etc/config-alias"), "Xower config\n");
  struct stat a, b;
  ASSERT_EQ(::lstat(Upper("etc/config").c_str(), &a), 0);
  ASSERT_EQ(::lstat(Upper("etc/config-alias").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_nlink, 2u);
  // Deleting one name drops the count of the other.
  ASSERT_EQ(fs_->Unlink(Walk("etc"), "config-alias"), 0);
  struct stat st;
  ASSERT_EQ(fs_->GetAttr(Walk("etc/config"), &st), 0);
  EXPECT_EQ(st.st_nlink, 1u);
}

TEST_F(UnionFsTest, HardlinkedNamesStayOneFileWhenTheirDirectoryWasRenamed) {
  // The other name is linked where its renamed directory now is, not skipped: else it would show
  // the lower content again after a remount. Once renamed in this daemon's life, once in an
  // earlier one's (the directory then found by a walk of the upper tree).
  for (bool remount_between : {false, true}) {
    SCOPED_TRACE(remount_between ? "renamed by an earlier daemon" : "renamed by this daemon");
    TearDown();
    SetUp();
    EntryOut out;
    ASSERT_EQ(fs_->MkDir(1, "moved", 0755, Caller{}, &out), 0);
    ASSERT_EQ(fs_->Rename(1, "etc", Walk("moved"), "etc2", 0), 0);
    if (remount_between) Mount(layers_);
    Write("moved/etc2/config", "NEW", 0);
    EXPECT_EQ(ReadAll("moved/etc2/config-alias"), "NEWer config\n");
    Mount(layers_);
    EXPECT_EQ(ReadAll("moved/etc2/config-alias"), "NEWer config\n") << "after a remount";
    EXPECT_EQ(ReadAll("moved/etc2/config"), "NEWer config\n") << "after a remount";
    struct stat a{}, b{};
    ASSERT_EQ(::stat(Upper("moved/etc2/config").c_str(), &a), 0);
    ASSERT_EQ(::stat(Upper("moved/etc2/config-alias").c_str(), &b), 0);
    EXPECT_EQ(a.st_ino, b.st_ino) << "one upper file under both names";
  }
}

TEST_F(UnionFsTest, ChmodCopiesMetadataOnly) {
  struct stat in {};
  in.st_mode = 0600;
  struct stat out;
  ASSERT_EQ(fs_->SetAttr(Walk("etc/other"), in, FUSE_SET_ATTR_MODE, &out), 0);
  EXPECT_EQ(out.st_mode & 07777, 0600u);
  EXPECT_GE(::getxattr(Upper("etc/other").c_str(), "trusted.overlay.metacopy", nullptr, 0), 0);
  struct stat upper;
  ASSERT_EQ(::stat(Upper("etc/other").c_str(), &upper), 0);
  EXPECT_EQ(upper.st_size, 6);
  EXPECT_EQ(ReadAll("etc/other"), "other\n");
  // The first data write puts the block it lands in into the upper file, which then overrides
  // the object there; the object is still named.
  Write("etc/other", "O", 0);
  EXPECT_EQ(ReadAll("etc/other"), "Other\n");
  EXPECT_GE(::getxattr(Upper("etc/other").c_str(), "trusted.overlay.metacopy", nullptr, 0), 0);
  EXPECT_TRUE(ObjectXattr("etc/other").ends_with(";overrides")) << ObjectXattr("etc/other");
  Mount(layers_);
  EXPECT_EQ(ReadAll("etc/other"), "Other\n") << "after a remount";
}

bool SameTime(const timespec& a, const timespec& b) { return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec; }

TEST_F(UnionFsTest, CopyingUpAnEntryKeepsItsDirectoriesTimes) {
  struct stat data_before, sub_before;
  ASSERT_NE(Walk("data", &data_before), 0u);
  ASSERT_NE(Walk("data/sub", &sub_before), 0u);
  Write("data/sub/file", "D", 0);  // copies up data, then data/sub into it, then the file
  struct stat data_after, sub_after;
  ASSERT_EQ(fs_->GetAttr(Walk("data"), &data_after), 0);
  ASSERT_EQ(fs_->GetAttr(Walk("data/sub"), &sub_after), 0);
  EXPECT_TRUE(SameTime(data_after.st_mtim, data_before.st_mtim));
  EXPECT_TRUE(SameTime(sub_after.st_mtim, sub_before.st_mtim));
  // Into a directory already in the upper layer, with times of its own.
  struct stat in {};
  in.st_mtim = {1000000000, 123456789};
  in.st_atim = in.st_mtim;
  struct stat out;
  ASSERT_EQ(fs_->SetAttr(Walk("data"), in, FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME, &out), 0);
  Write("data/top", "T", 0);
  ASSERT_EQ(fs_->GetAttr(Walk("data"), &data_after), 0);
  EXPECT_TRUE(SameTime(data_after.st_mtim, in.st_mtim)) << data_after.st_mtim.tv_sec;
  // A change of the directory itself still shows.
  std::unique_ptr<UnionFs::FileHandle> fh;
  EntryOut created;
  ASSERT_EQ(fs_->Create(Walk("data"), "new", 0644, O_WRONLY, Caller{}, &created, &fh), 0);
  ASSERT_EQ(fs_->GetAttr(Walk("data"), &data_after), 0);
  EXPECT_FALSE(SameTime(data_after.st_mtim, in.st_mtim));
}

TEST_F(UnionFsTest, FillingInAMetadataOnlyCopyKeepsItsTimes) {
  struct stat in {};
  in.st_mode = 0600;
  struct stat out;
  ASSERT_EQ(fs_->SetAttr(Walk("etc/other"), in, FUSE_SET_ATTR_MODE, &out), 0);
  ASSERT_GE(::getxattr(Upper("etc/other").c_str(), "trusted.overlay.metacopy", nullptr, 0), 0);
  // An open for writing copies no data; an allocation below the object's end fills it in (here
  // one that allocates nothing: the file has not changed).
  std::unique_ptr<UnionFs::FileHandle> fh;
  ASSERT_EQ(fs_->Open(Walk("etc/other"), O_WRONLY, &fh), 0);
  ASSERT_GE(::getxattr(Upper("etc/other").c_str(), "trusted.overlay.metacopy", nullptr, 0), 0);
  ASSERT_EQ(fs_->AllocateAt(*fh, 0, [](int) { return 0; }), 0);
  ASSERT_LT(::getxattr(Upper("etc/other").c_str(), "trusted.overlay.metacopy", nullptr, 0), 0);
  struct stat after;
  ASSERT_EQ(fs_->GetAttr(Walk("etc/other"), &after), 0);
  EXPECT_TRUE(SameTime(after.st_mtim, out.st_mtim)) << after.st_mtim.tv_sec << " " << out.st_mtim.tv_sec;
  EXPECT_EQ(ReadAll("etc/other"), "other\n");
}

TEST_F(UnionFsTest, ASmallFileOpenedForWritingIsCopiedUpAtOnce) {
  Mount(layers_, UnionFs::Options{}.copy_at_open_below);
  std::unique_ptr<UnionFs::FileHandle> fh;
  ASSERT_EQ(fs_->Open(Walk("etc/other"), O_WRONLY | O_APPEND, &fh), 0);
  EXPECT_FALSE(fh->spans_object_end()) << "its writes can go straight to the upper file";
  EXPECT_LT(::getxattr(Upper("etc/other").c_str(), "trusted.overlay.metacopy", nullptr, 0), 0);
  std::ifstream upper(Upper("etc/other"), std::ios::binary);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(upper)), std::istreambuf_iterator<char>()), "other\n");
}

TEST_F(UnionFsTest, AHandleOpenedBeforeCopyUpReadsTheNewContent) {
  std::unique_ptr<UnionFs::FileHandle> reader;
  ASSERT_EQ(fs_->Open(Walk("etc/other"), O_RDONLY, &reader), 0);
  EXPECT_EQ(ReadVia(*reader, 100), "other\n");
  Write("etc/other", "OTHER", 0);
  EXPECT_EQ(ReadVia(*reader, 100), "OTHER\n");
}

TEST_F(UnionFsTest, AHandleOpenedBeforeAMetadataCopyReadsWhatAnEmptyingOpenWrote) {
  std::unique_ptr<UnionFs::FileHandle> reader;
  ASSERT_EQ(fs_->Open(Walk("etc/other"), O_RDONLY, &reader), 0);
  EXPECT_EQ(ReadVia(*reader, 100), "other\n");
  struct stat in {};
  in.st_uid = 1000;
  struct stat out;
  ASSERT_EQ(fs_->SetAttr(Walk("etc/other"), in, FUSE_SET_ATTR_UID, &out), 0);  // a metadata-only copy
  {
    std::unique_ptr<UnionFs::FileHandle> another;
    ASSERT_EQ(fs_->Open(Walk("etc/other"), O_RDONLY, &another), 0);
    EXPECT_EQ(ReadVia(*another, 100), "other\n");
  }
  std::unique_ptr<UnionFs::FileHandle> writer;
  ASSERT_EQ(fs_->Open(Walk("etc/other"), O_WRONLY | O_TRUNC, &writer), 0);
  ASSERT_EQ(WriteVia(*writer, "new", 0), 3);
  EXPECT_EQ(ReadVia(*reader, 100), "new");
}

TEST_F(UnionFsTest, DeletionsAreWhiteoutsAndOpaqueDirectories) {
  ASSERT_EQ(fs_->Unlink(Walk("etc"), "other"), 0);
  struct stat st;
  ASSERT_EQ(::lstat(Upper("etc/other").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
  EXPECT_EQ(Walk("etc/other"), 0u);
  EXPECT_EQ(fs_->RmDir(1, "data"), ENOTEMPTY);
  ASSERT_EQ(fs_->Unlink(Walk("data/sub"), "file"), 0);
  ASSERT_EQ(fs_->RmDir(Walk("data"), "sub"), 0);
  ASSERT_EQ(fs_->Unlink(Walk("data"), "top"), 0);
  ASSERT_EQ(fs_->RmDir(1, "data"), 0);
  EXPECT_EQ(List(""), (std::vector<std::string>{"empty", "etc", "link"}));
  EntryOut out;
  ASSERT_EQ(fs_->MkDir(1, "data", 0755, Caller{}, &out), 0);
  EXPECT_TRUE(List("data").empty()) << "a directory made over a deleted one shows nothing below";
  char value[4] = {};
  EXPECT_EQ(::getxattr(Upper("data").c_str(), "trusted.overlay.opaque", value, sizeof value), 1);
  EXPECT_EQ(std::string(value), "y");
}

TEST_F(UnionFsTest, RenamingALowerDirectoryMovesItsContentByReference) {
  uint64_t sub = Walk("data/sub");
  ASSERT_EQ(fs_->Rename(1, "data", 1, "moved", 0), 0);
  EXPECT_EQ(Walk("data"), 0u);
  EXPECT_EQ(Walk("moved/sub"), sub);
  EXPECT_EQ(ReadAll("moved/sub/file"), "deep\n");
  EXPECT_FALSE(fs::exists(Upper("moved/sub"))) << "nothing below a renamed directory is copied";
  char value[64] = {};
  ASSERT_GT(::getxattr(Upper("moved").c_str(), "trusted.overlay.redirect", value, sizeof value), 0);
  EXPECT_EQ(std::string(value), "/data");
  Mount(layers_);
  EXPECT_EQ(ReadAll("moved/sub/file"), "deep\n") << "after a remount";
  EXPECT_EQ(Walk("data"), 0u);
}

TEST_F(UnionFsTest, ADirectoryRenamedAwayAndBack) {
  ASSERT_EQ(fs_->Rename(1, "data", 1, "moved", 0), 0);
  ASSERT_EQ(fs_->Rename(1, "moved", 1, "data", 0), 0) << "onto its own whiteout";
  EXPECT_EQ(ReadAll("data/sub/file"), "deep\n");
  EXPECT_EQ(Walk("moved"), 0u);
  ASSERT_EQ(fs_->Rename(Walk("etc"), "other", 1, "other-moved", 0), 0);
  ASSERT_EQ(fs_->Rename(1, "other-moved", Walk("etc"), "other", 0), 0) << "a file onto its own whiteout";
  EXPECT_EQ(ReadAll("etc/other"), "other\n");
  EXPECT_EQ(List(""), (std::vector<std::string>{"data", "empty", "etc", "link"}));
  Mount(layers_);
  EXPECT_EQ(ReadAll("data/sub/file"), "deep\n") << "after a remount";
  EXPECT_EQ(List(""), (std::vector<std::string>{"data", "empty", "etc", "link"}));
}

TEST_F(UnionFsTest, RenamingOverAnEmptyLowerDirectoryReplacesIt) {
  ASSERT_EQ(fs_->Rename(1, "data", 1, "empty", 0), 0);
  EXPECT_EQ(ReadAll("empty/sub/file"), "deep\n");
  EXPECT_EQ(List("empty"), (std::vector<std::string>{"sub", "top"}));
  Mount(layers_);
  EXPECT_EQ(ReadAll("empty/sub/file"), "deep\n") << "after a remount";
  EXPECT_EQ(Walk("data"), 0u);
}

TEST_F(UnionFsTest, ANewDirectoryRenamedOverALowerOneHidesIt) {
  EntryOut out;
  ASSERT_EQ(fs_->MkDir(1, "fresh", 0755, Caller{}, &out), 0);
  ASSERT_EQ(fs_->Rename(1, "fresh", 1, "empty", 0), 0) << "an empty new directory over the merged one";
  EXPECT_TRUE(List("empty").empty());
  Mount(layers_);
  EXPECT_TRUE(List("empty").empty()) << "after a remount";
  EXPECT_EQ(Walk("fresh"), 0u);
}

TEST_F(UnionFsTest, ExchangingANewDirectoryWithALowerOneKeepsEachItsOwnEntries) {
  // RENAME_EXCHANGE: the new directory takes the lower one's place and must hide what the lower
  // view has there (it is made opaque); the lower one moves by reference (a redirect).
  EntryOut out;
  Caller caller{::geteuid(), ::getegid()};
  ASSERT_EQ(fs_->MkDir(1, "fresh", 0755, caller, &out), 0);
  std::unique_ptr<UnionFs::FileHandle> fh;
  ASSERT_EQ(fs_->Create(out.nodeid, "mine", 0644, O_WRONLY, caller, &out, &fh), 0);
  fh.reset();
  ASSERT_EQ(fs_->Rename(1, "fresh", Walk("data"), "sub", RENAME_EXCHANGE), 0);
  EXPECT_EQ(List("data/sub"), std::vector<std::string>{"mine"});
  EXPECT_EQ(List("fresh"), std::vector<std::string>{"file"});
  Mount(layers_);
  EXPECT_EQ(List("data/sub"), std::vector<std::string>{"mine"}) << "after a remount";
  EXPECT_EQ(List("fresh"), std::vector<std::string>{"file"}) << "after a remount";
  EXPECT_EQ(ReadAll("fresh/file"), "deep\n");
}

TEST_F(UnionFsTest, ErrorsAsTheKernelGivesThem) {
  EntryOut out;
  EXPECT_EQ(fs_->MkNod(1, "wh", S_IFCHR | 0644, makedev(0, 0), Caller{}, &out), EPERM);
  EXPECT_EQ(fs_->MkDir(1, std::string(256, 'x').c_str(), 0755, Caller{}, &out), ENAMETOOLONG);
  EXPECT_EQ(fs_->MkDir(1, "etc", 0755, Caller{}, &out), EEXIST);
  EXPECT_EQ(fs_->Rename(1, "etc", 1, "data", 0), ENOTEMPTY);
  EXPECT_EQ(fs_->Rename(1, "link", 1, "etc", RENAME_NOREPLACE), EEXIST);
  EXPECT_EQ(fs_->SetXattr(Walk("etc/config"), "trusted.strata.object", "x", 0), EPERM);
  EXPECT_EQ(fs_->Unlink(1, "etc"), EISDIR);
  EXPECT_EQ(fs_->RmDir(Walk("etc"), "config"), ENOTDIR);
  // A change through a handle still open on a removed lower entry would copy it up over its
  // whiteout; it fails instead, as in overlayfs (EEXIST for a file, ENOTDIR for a directory).
  struct stat in {};
  in.st_mode = 0700;
  struct stat changed;
  const uint64_t removed_dir = Walk("empty"), removed_file = Walk("etc/other");
  ASSERT_EQ(fs_->RmDir(1, "empty"), 0);
  ASSERT_EQ(fs_->Unlink(Walk("etc"), "other"), 0);
  EXPECT_EQ(fs_->SetAttr(removed_dir, in, FUSE_SET_ATTR_MODE, &changed), ENOTDIR);
  EXPECT_EQ(fs_->SetAttr(removed_file, in, FUSE_SET_ATTR_MODE, &changed), EEXIST);
  EXPECT_EQ(List(""), (std::vector<std::string>{"data", "etc", "link"}));
}

TEST_F(UnionFsTest, XattrsOfAnySizeReadBackWhole) {
  const uint64_t config = Walk("etc/config");
  std::string value;
  EXPECT_EQ(fs_->GetXattr(config, "security.capability", &value), ENODATA);
  // Past the first read's buffers (values of 256 bytes, lists of 1 KiB), within what ext4 keeps
  // without its ea_inode feature (one block for all of a file's xattrs).
  const std::string big(1000, 'v');
  ASSERT_EQ(fs_->SetXattr(config, "user.big", big, 0), 0);
  for (int i = 0; i < 30; ++i) {
    const std::string name = "user.a-rather-long-attribute-name-" + std::to_string(i);
    ASSERT_EQ(fs_->SetXattr(config, name.c_str(), std::to_string(i), 0), 0) << name;
  }
  ASSERT_EQ(fs_->GetXattr(config, "user.big", &value), 0);
  EXPECT_EQ(value, big);
  ASSERT_EQ(fs_->GetXattr(config, "user.a-rather-long-attribute-name-29", &value), 0);
  EXPECT_EQ(value, "29");
  std::string names;
  ASSERT_EQ(fs_->ListXattr(config, &names), 0);
  EXPECT_GT(names.size(), 1024u);
  EXPECT_NE(names.find(std::string("user.a-rather-long-attribute-name-0") + '\0'), std::string::npos);
  EXPECT_NE(names.find(std::string("user.a-rather-long-attribute-name-29") + '\0'), std::string::npos);
  EXPECT_NE(names.find(std::string("user.big") + '\0'), std::string::npos);
}

// The kernel asks for security.capability before every write(2); a file the daemon made has none
// until it is set through the union, and the answer changes with it.
TEST_F(UnionFsTest, CapabilityOfANewFileFollowsItsXattrChanges) {
  EntryOut out;
  std::unique_ptr<UnionFs::FileHandle> fh;
  ASSERT_EQ(fs_->Create(Walk("etc"), "tool", 0755, O_RDWR, Caller{}, &out, &fh), 0);
  std::string value;
  EXPECT_EQ(fs_->GetXattr(out.nodeid, "security.capability", &value), ENODATA);
  // struct vfs_cap_data, revision 2: CAP_NET_BIND_SERVICE permitted and effective.
  const unsigned char caps[20] = {0x01, 0x00, 0x00, 0x02, 0x00, 0x04};
  const std::string blob(reinterpret_cast<const char*>(caps), sizeof caps);
  ASSERT_EQ(fs_->SetXattr(out.nodeid, "security.capability", blob, 0), 0);
  ASSERT_EQ(fs_->GetXattr(out.nodeid, "security.capability", &value), 0);
  EXPECT_EQ(value, blob);
  ASSERT_EQ(fs_->RemoveXattr(out.nodeid, "security.capability"), 0);
  EXPECT_EQ(fs_->GetXattr(out.nodeid, "security.capability", &value), ENODATA);
  // A file from the lower layer that carries one shows it once copied up, too.
  ASSERT_EQ(fs_->SetXattr(Walk("etc/config"), "security.capability", blob, 0), 0);
  ASSERT_EQ(fs_->GetXattr(Walk("etc/config"), "security.capability", &value), 0);
  EXPECT_EQ(value, blob);
}

TEST_F(UnionFsTest, ANewFileIsFoundAgainForLaterOperations) {
  // A CREATE leaves the inode without an O_PATH fd: each later operation reaches it by parent and
  // name, also after a rename, and an unlink while it is open keeps it reachable.
  EntryOut out;
  std::unique_ptr<UnionFs::FileHandle> fh;
  ASSERT_EQ(fs_->Create(Walk("etc"), "fresh", 0644, O_RDWR, Caller{::geteuid(), ::getegid()}, &out, &fh), 0);
  ASSERT_EQ(WriteVia(*fh, "new\n", 0), 4);
  struct stat in{}, st{};
  in.st_mode = 0600;
  ASSERT_EQ(fs_->SetAttr(out.nodeid, in, FUSE_SET_ATTR_MODE, &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(fs_->SetXattr(out.nodeid, "user.tag", "x", 0), 0);
  ASSERT_EQ(fs_->Rename(Walk("etc"), "fresh", Walk("data"), "moved", 0), 0);
  ASSERT_EQ(fs_->GetAttr(out.nodeid, &st), 0);
  EXPECT_EQ(st.st_size, 4);
  std::string value;
  ASSERT_EQ(fs_->GetXattr(out.nodeid, "user.tag", &value), 0);
  EXPECT_EQ(value, "x");
  ASSERT_EQ(fs_->Unlink(Walk("data"), "moved"), 0);
  ASSERT_EQ(fs_->GetAttr(out.nodeid, &st), 0) << "open and unlinked: still there";
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(Walk("data/moved"), 0u);
  EXPECT_FALSE(fs::exists(Upper("data/moved")));
}

TEST_F(UnionFsTest, AHardlinkedSymlinkKeepsItsXattrsAndTimesWhenItsOtherNameIsRenamedOver) {
  // Xattr calls and utimes on a symlink used to go by the parent and the name the inode was found
  // by; once another file was renamed over that name they read and changed that file instead.
  uint64_t symlink = Walk("link");
  ASSERT_NE(symlink, 0u);
  EntryOut out;
  ASSERT_EQ(fs_->Link(symlink, 1, "link2", &out), 0);
  ASSERT_EQ(out.nodeid, symlink);
  uint64_t file = Walk("etc/other");
  ASSERT_EQ(fs_->SetXattr(file, "user.file", "mine", 0), 0);
  ASSERT_EQ(fs_->Rename(Walk("etc"), "other", 1, "link", 0), 0);  // over the symlink's first name

  std::string names;
  ASSERT_EQ(fs_->ListXattr(symlink, &names), 0);
  EXPECT_EQ(names, "") << "the symlink shows the xattrs of the file renamed over its other name";
  ASSERT_EQ(fs_->SetXattr(symlink, "trusted.tag", "on-link", 0), 0);
  std::string value;
  ASSERT_EQ(fs_->GetXattr(symlink, "trusted.tag", &value), 0);
  EXPECT_EQ(value, "on-link");
  char buf[64];
  ssize_t n = ::lgetxattr(Upper("link2").c_str(), "trusted.tag", buf, sizeof buf);
  ASSERT_EQ(n, 7) << "not set on the symlink's upper entry";
  EXPECT_EQ(std::string(buf, 7), "on-link");
  EXPECT_LT(::lgetxattr(Upper("link").c_str(), "trusted.tag", buf, sizeof buf), 0) << "set on the renamed file";

  struct stat in{}, st{};
  in.st_mtim = {1234567890, 5};
  ASSERT_EQ(fs_->SetAttr(symlink, in, FUSE_SET_ATTR_MTIME, &st), 0);
  struct stat link_st, file_st;
  ASSERT_EQ(::lstat(Upper("link2").c_str(), &link_st), 0);
  ASSERT_EQ(::lstat(Upper("link").c_str(), &file_st), 0);
  EXPECT_EQ(link_st.st_mtim.tv_sec, 1234567890);
  EXPECT_NE(file_st.st_mtim.tv_sec, 1234567890) << "the renamed file got the symlink's times";
}

TEST_F(UnionFsTest, RemovingAnAbsentXattrCopiesNothingUp) {
  // As kernel overlayfs: the removal fails with ENODATA and the lower file stays as it is, still
  // one inode with its hardlinked name.
  uint64_t config = Walk("etc/config");
  EXPECT_EQ(fs_->RemoveXattr(config, "user.absent"), ENODATA);
  EXPECT_FALSE(fs::exists(Upper("etc/config")));
  EXPECT_FALSE(fs::exists(Upper("etc")));
  struct stat st;
  ASSERT_EQ(fs_->GetAttr(config, &st), 0);
  EXPECT_EQ(st.st_nlink, 2u);
  // One it has is removed, through a copy-up.
  ASSERT_EQ(fs_->SetXattr(config, "user.present", "v", 0), 0);
  ASSERT_EQ(fs_->RemoveXattr(config, "user.present"), 0);
  std::string value;
  EXPECT_EQ(fs_->GetXattr(config, "user.present", &value), ENODATA);
}

TEST_F(UnionFsTest, NewFilesBelongToTheCaller) {
  EntryOut out;
  std::unique_ptr<UnionFs::FileHandle> fh;
  ASSERT_EQ(fs_->Create(Walk("etc"), "mine", 0640, O_RDWR, Caller{1000, 1000}, &out, &fh), 0);
  EXPECT_EQ(out.attr.st_uid, 1000u);
  EXPECT_EQ(out.attr.st_gid, 1000u);
  EXPECT_EQ(out.attr.st_mode & 07777, 0640u);
  EXPECT_GE(out.nodeid, UnionFs::kUpperBase);
  ASSERT_EQ(WriteVia(*fh, "hi", 0), 2);
  fh.reset();
  Mount(layers_);
  EXPECT_EQ(Walk("etc/mine"), out.nodeid) << "an upper-only node id survives a remount";
  EXPECT_EQ(ReadAll("etc/mine"), "hi");
}

TEST_F(UnionFsTest, NewFilesAreMadeInPlaceOrOverTheirWhiteout) {
  EntryOut out;
  std::unique_ptr<UnionFs::FileHandle> fh;
  ASSERT_EQ(fs_->Unlink(Walk("etc"), "other"), 0);
  ASSERT_EQ(fs_->Create(Walk("etc"), "other", 0640, O_RDWR, Caller{}, &out, &fh), 0) << "over its whiteout";
  EXPECT_GE(out.nodeid, UnionFs::kUpperBase);
  ASSERT_EQ(WriteVia(*fh, "new", 0), 3);
  EXPECT_EQ(ReadAll("etc/other"), "new");
  EXPECT_EQ(fs_->Create(Walk("etc"), "other", 0640, O_RDWR, Caller{}, &out, &fh), EEXIST);
  EXPECT_EQ(fs_->Create(Walk("etc"), "config", 0640, O_RDWR, Caller{}, &out, &fh), EEXIST) << "a lower file";
  // Bits this process' umask would take away stay.
  ASSERT_EQ(fs_->Create(1, "open", 0777, O_RDWR, Caller{}, &out, &fh), 0);
  EXPECT_EQ(out.attr.st_mode & 07777, 0777u);
  struct stat st;
  ASSERT_EQ(::lstat(Upper("open").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0777u);
  EXPECT_TRUE(fs::is_empty(tmp_ / "work"));
}

// The kernel may know far more files than the daemon may open: a mount used to hold an fd per
// upper inode the kernel knew, and creating files failed with EMFILE at the fd limit.
TEST_F(UnionFsTest, KnownFilesOutnumberTheFdLimit) {
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  struct Restore {
    rlimit lim;
    ~Restore() { ::setrlimit(RLIMIT_NOFILE, &lim); }
  } restore{saved};
  rlimit low = saved;
  low.rlim_cur = 128;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  Mount(layers_);  // sizes its fd cache for the lower limit
  ASSERT_NE(fs_, nullptr);

  constexpr int kFiles = 1000;
  EntryOut dir;
  ASSERT_EQ(fs_->MkDir(1, "many", 0755, Caller{}, &dir), 0);
  std::vector<uint64_t> ids;
  for (int i = 0; i < kFiles; ++i) {
    // Half under a copied-up lower directory, so lower-derived parents are found again too.
    const uint64_t parent = i % 2 ? dir.nodeid : Walk("data/sub");
    const std::string name = "f" + std::to_string(i);
    EntryOut out;
    std::unique_ptr<UnionFs::FileHandle> fh;
    ASSERT_EQ(fs_->Create(parent, name.c_str(), 0644, O_WRONLY, Caller{}, &out, &fh), 0) << name;
    ASSERT_EQ(WriteVia(*fh, name, 0), static_cast<ssize_t>(name.size()));
    ids.push_back(out.nodeid);  // never forgotten: the kernel still knows every one
  }
  Write("etc/config", "changed", 0);
  for (int i = 0; i < kFiles; ++i) {
    const std::string name = "f" + std::to_string(i);
    struct stat st;
    ASSERT_EQ(fs_->GetAttr(ids[i], &st), 0) << name;
    EXPECT_EQ(st.st_ino, ids[i]);
    EXPECT_EQ(st.st_size, static_cast<off_t>(name.size()));
    std::unique_ptr<UnionFs::FileHandle> fh;
    ASSERT_EQ(fs_->Open(ids[i], O_RDONLY, &fh), 0) << name;
    EXPECT_EQ(ReadVia(*fh, 100), name);
    ASSERT_EQ(fs_->SetXattr(ids[i], "user.n", name, 0), 0) << name;
  }
  // Removed names while the kernel still knows the files: they stay reachable, and their inode
  // numbers (their node ids) are not given to new files meanwhile.
  struct stat st;
  ASSERT_EQ(fs_->Unlink(dir.nodeid, "f1"), 0);
  ASSERT_EQ(fs_->Rename(dir.nodeid, "f3", dir.nodeid, "f5", 0), 0);
  ASSERT_EQ(fs_->GetAttr(ids[1], &st), 0);
  EXPECT_EQ(st.st_nlink, 0u);
  ASSERT_EQ(fs_->GetAttr(ids[5], &st), 0) << "replaced by a rename";
  EXPECT_EQ(st.st_nlink, 0u);
  for (int i = 0; i < 50; ++i) {
    EntryOut out;
    std::unique_ptr<UnionFs::FileHandle> fh;
    ASSERT_EQ(fs_->Create(dir.nodeid, ("g" + std::to_string(i)).c_str(), 0644, O_WRONLY, Caller{}, &out, &fh), 0);
    EXPECT_NE(out.nodeid, ids[1]);
    EXPECT_NE(out.nodeid, ids[5]);
  }
  fs_->Forget(ids[1], 1);
  fs_->Forget(ids[5], 1);

  Mount(layers_);
  EXPECT_EQ(ReadAll("etc/config"), "changedonfig\n");
  for (int i = 0; i < kFiles; ++i) {
    if (i == 1 || i == 5) continue;
    const std::string name = "f" + std::to_string(i);
    const uint64_t node = Walk((i % 2 ? "many/" : "data/sub/") + (i == 3 ? std::string("f5") : name));
    EXPECT_EQ(node, ids[i]) << name << ": node ids survive a remount";
  }
}

}  // namespace
}  // namespace layerfs
