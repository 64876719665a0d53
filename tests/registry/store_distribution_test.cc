// The store features the registry client relies on (layerstore/src/distribution.cc and the
// keep_blob path of ImportLayer): remote_blobs records, kept compressed blobs (atomic, read-only,
// removed with their layer, accepted by fsck), a failed import that keeps nothing, and parallel
// ImportLayer calls from several threads under one WriteLease (what pull does).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <thread>

#include "layerstore/io.h"
#include "layerstore/sha256.h"
#include "layerstore/store.h"
#include "registry/compress.h"

namespace registry {
namespace {

namespace fs = std::filesystem;
using layerstore::Digest;
using layerstore::Sha256;
using layerstore::Status;

// A POSIX ustar archive with one regular file per (name, content), padded and terminated.
std::string Tar(const std::vector<std::pair<std::string, std::string>>& files) {
  std::string out;
  for (const auto& [name, content] : files) {
    char h[512] = {};
    std::snprintf(h, 100, "%s", name.c_str());
    std::snprintf(h + 100, 8, "%07o", 0644);
    std::snprintf(h + 108, 8, "%07o", 0);
    std::snprintf(h + 116, 8, "%07o", 0);
    std::snprintf(h + 124, 12, "%011llo", static_cast<unsigned long long>(content.size()));
    std::snprintf(h + 136, 12, "%011o", 1700000000);
    h[156] = '0';
    std::memcpy(h + 257, "ustar", 6);
    std::memcpy(h + 263, "00", 2);
    std::memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (unsigned char c : h) sum += c;
    std::snprintf(h + 148, 8, "%06o", sum);
    out.append(h, 512);
    out += content;
    out.append((512 - content.size() % 512) % 512, '\0');
  }
  out.append(1024, '\0');
  return out;
}

std::string Gzip(const std::string& data) {
  std::string out;
  auto sink = CompressingSink::Create(Compression::kGzip, [&](const char* p, size_t n) {
    out.append(p, n);
    return Status();
  });
  EXPECT_TRUE(sink.ok());
  EXPECT_TRUE((*sink)->Write(data.data(), data.size()).ok());
  EXPECT_TRUE((*sink)->Finish().ok());
  return out;
}

class StringSource final : public layerstore::ByteSource {
 public:
  explicit StringSource(std::string data, size_t fail_at = SIZE_MAX) : data_(std::move(data)), fail_at_(fail_at) {}
  layerstore::Result<size_t> Read(void* buf, size_t size) override {
    if (pos_ >= fail_at_) return Status::Unavailable("connection reset (test)");
    size_t n = std::min({size, data_.size() - pos_, fail_at_ - pos_, size_t{4096}});
    std::memcpy(buf, data_.data() + pos_, n);
    pos_ += n;
    return n;
  }
  std::string Name() const override { return "test layer"; }

 private:
  std::string data_;
  size_t pos_ = 0;
  size_t fail_at_;
};

class StoreDistribution : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("strata-dist-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    auto store = layerstore::Store::Open({.root = root_.string()});
    ASSERT_TRUE(store.ok()) << store.status().message();
    store_ = std::move(*store);
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::permissions(root_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(root_, ec);
  }
  size_t Files(const std::string& dir) {
    size_t n = 0;
    for (const auto& e : fs::recursive_directory_iterator(root_ / dir)) n += e.is_regular_file();
    return n;
  }
  // Imports a gzip layer; returns (blob, diff_id).
  std::pair<Digest, Digest> Import(const std::string& tar, bool keep) {
    std::string blob = Gzip(tar);
    layerstore::LayerExpectation e;
    e.blob_digest = Sha256::Of(blob);
    e.blob_size = blob.size();
    e.diff_id = Sha256::Of(tar);
    e.keep_blob = keep;
    e.blob_media_type = "application/vnd.oci.image.layer.v1.tar+gzip";
    StringSource src(blob);
    auto info = store_->ImportLayer(src, e, nullptr);
    EXPECT_TRUE(info.ok()) << info.status().message();
    return {*e.blob_digest, *e.diff_id};
  }
  std::string ImageConfig(const std::vector<Digest>& diff_ids) {
    std::string ids;
    for (const Digest& d : diff_ids) ids += (ids.empty() ? "\"" : ",\"") + d.str() + "\"";
    return R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[)" + ids + "]}}";
  }

  fs::path root_;
  std::unique_ptr<layerstore::Store> store_;
};

TEST_F(StoreDistribution, RemoteBlobRecords) {
  Digest diff = Sha256::Of("layer");
  layerstore::RemoteBlob a{"localhost:5000/app", Sha256::Of("blob-a"), "application/vnd.oci.image.layer.v1.tar+gzip", 10};
  layerstore::RemoteBlob b{"docker.io/library/busybox", Sha256::Of("blob-b"), "application/vnd.docker.image.rootfs.diff.tar.gzip", 20};
  ASSERT_TRUE(store_->RecordRemoteBlob(diff, a).ok());
  ASSERT_TRUE(store_->RecordRemoteBlob(diff, b).ok());
  ASSERT_TRUE(store_->RecordRemoteBlob(Sha256::Of("other layer"), a).ok());
  auto found = store_->FindRemoteBlobs(diff);
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->size(), 2u);
  EXPECT_EQ((*found)[0].location, "docker.io/library/busybox");  // ordered by location
  EXPECT_EQ((*found)[0].digest, b.digest);
  EXPECT_EQ((*found)[0].media_type, b.media_type);
  EXPECT_EQ((*found)[0].size, 20u);
  EXPECT_EQ((*found)[1].location, "localhost:5000/app");
  // A new record for a location replaces the old one.
  a.digest = Sha256::Of("blob-a2");
  ASSERT_TRUE(store_->RecordRemoteBlob(diff, a).ok());
  found = store_->FindRemoteBlobs(diff);
  ASSERT_EQ(found->size(), 2u);
  EXPECT_EQ((*found)[1].digest, a.digest);
  ASSERT_TRUE(store_->ForgetRemoteBlob(diff, "docker.io/library/busybox").ok());
  ASSERT_TRUE(store_->ForgetRemoteBlob(diff, "never/recorded").ok());
  found = store_->FindRemoteBlobs(diff);
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].location, "localhost:5000/app");
  EXPECT_TRUE(store_->FindRemoteBlobs(Sha256::Of("unknown"))->empty());
  EXPECT_FALSE(store_->RecordRemoteBlob(diff, {"", a.digest, "", 0}).ok());
}

TEST_F(StoreDistribution, KeptBlobIsExactReadOnlyAndGoesWithItsLayer) {
  auto lease = store_->AcquireWriteLease();
  ASSERT_TRUE(lease.ok());
  std::string tar = Tar({{"etc/motd", "hello\n"}, {"bin/tool", std::string(100000, 'x')}});
  auto [blob, diff] = Import(tar, /*keep=*/true);
  auto fd = store_->OpenLayerBlob(diff);
  ASSERT_TRUE(fd.ok()) << fd.status().message();
  std::string kept;
  char buf[8192];
  ssize_t n;
  while ((n = ::read(fd->get(), buf, sizeof buf)) > 0) kept.append(buf, static_cast<size_t>(n));
  EXPECT_EQ(Sha256::Of(kept), blob);
  struct stat st;
  ASSERT_EQ(::stat((root_ / "blobs/sha256" / blob.hex()).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  EXPECT_EQ(Files("tmp"), 0u);

  auto image = store_->CreateImage({ImageConfig({diff}), {*layerstore::ParseReference("kept:v1")}, {}, {}, ""});
  ASSERT_TRUE(image.ok()) << image.status().message();
  lease->reset();
  auto report = store_->Fsck({});
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->consistent());
  EXPECT_TRUE(report->repaired.empty()) << report->repaired[0];
  EXPECT_EQ(report->blobs, 2u);  // the config and the kept layer blob

  ASSERT_TRUE(store_->RemoveImage("kept:v1", false).ok());
  EXPECT_EQ(Files("blobs"), 0u);
  EXPECT_TRUE(store_->OpenLayerBlob(diff).status().IsNotFound());
}

TEST_F(StoreDistribution, LayerWithoutKeptBlob) {
  auto lease = store_->AcquireWriteLease();
  std::string tar = Tar({{"a", "a"}});
  auto [blob, diff] = Import(tar, /*keep=*/false);
  (void)blob;
  EXPECT_TRUE(store_->OpenLayerBlob(diff).status().IsNotFound());
  EXPECT_TRUE(store_->OpenLayerBlob(Sha256::Of("nope")).status().IsNotFound());
  EXPECT_EQ(Files("blobs"), 0u);
}

TEST_F(StoreDistribution, FailedKeepImportLeavesNothing) {
  auto lease = store_->AcquireWriteLease();
  std::string tar = Tar({{"big", std::string(300000, 'q')}, {"small", "s"}});
  std::string blob = Gzip(tar);
  layerstore::LayerExpectation e;
  e.blob_digest = Sha256::Of(blob);
  e.diff_id = Sha256::Of(tar);
  e.keep_blob = true;
  StringSource cut(blob, blob.size() / 2);
  auto info = store_->ImportLayer(cut, e, nullptr);
  ASSERT_FALSE(info.ok());
  EXPECT_NE(info.status().message().find("connection reset"), std::string::npos);
  // A wrong digest: everything read and decompressed fine, but it is not what was expected.
  e.blob_digest = Sha256::Of("something else");
  StringSource whole(blob);
  info = store_->ImportLayer(whole, e, nullptr);
  ASSERT_FALSE(info.ok());
  EXPECT_NE(info.status().message().find("digest mismatch"), std::string::npos);
  lease->reset();
  EXPECT_EQ(Files("blobs"), 0u);
  EXPECT_EQ(Files("tmp"), 0u);
  EXPECT_EQ(Files("layers"), 0u);
  EXPECT_EQ(Files("objects"), 0u);
  EXPECT_FALSE(store_->FindLayer(*e.diff_id)->has_value());
}

TEST_F(StoreDistribution, ParallelImportsUnderOneLease) {
  auto lease = store_->AcquireWriteLease();
  ASSERT_TRUE(lease.ok());
  constexpr int kLayers = 6;
  std::vector<std::string> tars;
  for (int i = 0; i < kLayers; ++i) {
    // Each layer has a file of its own and one shared by all (dedup under concurrency).
    tars.push_back(Tar({{"own" + std::to_string(i), std::string(200000 + i, static_cast<char>('a' + i))},
                        {"shared", std::string(150000, 'z')}}));
  }
  std::vector<Status> results(kLayers);
  {
    std::vector<std::jthread> threads;
    for (int i = 0; i < kLayers; ++i) {
      threads.emplace_back([&, i] {
        std::string blob = Gzip(tars[i]);
        layerstore::LayerExpectation e;
        e.blob_digest = Sha256::Of(blob);
        e.diff_id = Sha256::Of(tars[i]);
        e.keep_blob = i % 2 == 0;
        StringSource src(blob);
        auto info = store_->ImportLayer(src, e, nullptr);
        results[i] = info.status();
        if (info.ok()) {
          results[i] = store_->RecordRemoteBlob(*e.diff_id, {"r/x", *e.blob_digest, "t", blob.size()});
        }
      });
    }
  }
  std::vector<Digest> diff_ids;
  for (int i = 0; i < kLayers; ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i].message();
    diff_ids.push_back(Sha256::Of(tars[i]));
    EXPECT_EQ(store_->FindRemoteBlobs(diff_ids.back())->size(), 1u);
  }
  ASSERT_TRUE(store_->CreateImage({ImageConfig(diff_ids), {}, {}, {}, ""}).ok());
  lease->reset();
  auto report = store_->Fsck({true, true});
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->consistent()) << report->problems[0];
  EXPECT_TRUE(report->repaired.empty()) << report->repaired[0];
  EXPECT_EQ(report->layers, static_cast<uint64_t>(kLayers));
  EXPECT_EQ(report->objects, static_cast<uint64_t>(kLayers + 1));
}

}  // namespace
}  // namespace registry
