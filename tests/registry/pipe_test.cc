// The bounded pipe between a transfer and an import, and the upload compressors
// (registry/pipe.h, registry/compress.h).
#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <random>
#include <thread>

#include "layerstore/sha256.h"
#include "registry/compress.h"
#include "registry/pipe.h"

namespace registry {
namespace {

using layerstore::Status;

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() % 7);  // compressible but not trivially
  return s;
}

TEST(BlobPipe, DeliversEverythingInOrderThroughASmallRing) {
  std::string data = RandomBytes(1 << 20, 1);
  BlobPipe pipe("test", 1000);  // far smaller than the data: the writer must block and wrap
  std::jthread writer([&] {
    size_t pos = 0;
    std::mt19937 rng(2);
    while (pos < data.size()) {
      size_t n = std::min<size_t>(data.size() - pos, 1 + rng() % 3000);
      ASSERT_TRUE(pipe.Write(data.data() + pos, n));
      pos += n;
    }
    pipe.Close(Status());
  });
  std::string got;
  char buf[777];
  for (;;) {
    auto n = pipe.Read(buf, sizeof buf);
    ASSERT_TRUE(n.ok());
    if (*n == 0) break;
    got.append(buf, *n);
  }
  EXPECT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
}

TEST(BlobPipe, WriterFailureFailsTheReaderAtOnce) {
  BlobPipe pipe("layer x");
  ASSERT_TRUE(pipe.Write("abc", 3));
  pipe.Close(Status::Unavailable("connection reset"));
  char buf[8];
  auto n = pipe.Read(buf, sizeof buf);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().message(), "connection reset");
  EXPECT_EQ(pipe.Name(), "layer x");
}

TEST(BlobPipe, CancelReleasesABlockedWriter) {
  BlobPipe pipe("test", 16);
  std::atomic<bool> result{true};
  std::jthread writer([&] {
    std::string big(1 << 16, 'x');
    result = pipe.Write(big.data(), big.size());  // blocks once 16 bytes are buffered
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  pipe.Cancel();
  writer.join();
  EXPECT_FALSE(result.load());
  EXPECT_FALSE(pipe.Write("y", 1));
}

std::string Compress(Compression kind, const std::string& data) {
  std::string out;
  auto sink = CompressingSink::Create(kind, [&](const char* p, size_t n) {
    out.append(p, n);
    return Status();
  });
  EXPECT_TRUE(sink.ok());
  // Odd-sized writes, as ExportLayer produces them.
  for (size_t pos = 0; pos < data.size();) {
    size_t n = std::min<size_t>(data.size() - pos, 12345);
    EXPECT_TRUE((*sink)->Write(data.data() + pos, n).ok());
    pos += n;
  }
  EXPECT_TRUE((*sink)->Finish().ok());
  return out;
}

TEST(CompressingSink, GzipRoundTripsAndIsDeterministic) {
  std::string data = RandomBytes(3 << 20, 3);
  std::string a = Compress(Compression::kGzip, data);
  EXPECT_EQ(a, Compress(Compression::kGzip, data));
  ASSERT_GE(a.size(), 10u);
  EXPECT_EQ(static_cast<unsigned char>(a[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(a[1]), 0x8b);
  EXPECT_EQ(a[4] | a[5] | a[6] | a[7], 0);  // mtime 0
  z_stream zs{};
  ASSERT_EQ(inflateInit2(&zs, 15 + 16), Z_OK);
  std::string out(data.size() + 16, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(a.data());
  zs.avail_in = static_cast<uInt>(a.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  inflateEnd(&zs);
  EXPECT_TRUE(out == data);
}

TEST(CompressingSink, ZstdRoundTripsAndIsDeterministic) {
  std::string data = RandomBytes(3 << 20, 4);
  std::string a = Compress(Compression::kZstd, data);
  EXPECT_EQ(layerstore::Sha256::Of(a), layerstore::Sha256::Of(Compress(Compression::kZstd, data)));
  std::string out(data.size(), '\0');
  ZSTD_DCtx* d = ZSTD_createDCtx();
  ZSTD_inBuffer in{a.data(), a.size(), 0};
  ZSTD_outBuffer ob{out.data(), out.size(), 0};
  size_t rc = ZSTD_decompressStream(d, &ob, &in);
  ZSTD_freeDCtx(d);
  EXPECT_EQ(rc, 0u);
  EXPECT_EQ(ob.pos, data.size());
  EXPECT_TRUE(out == data);
}

TEST(CompressingSink, EmptyInputAndOutputErrors) {
  EXPECT_FALSE(Compress(Compression::kGzip, "").empty());  // a valid empty gzip member
  auto sink = CompressingSink::Create(Compression::kGzip, [](const char*, size_t) { return Status::IOError("full"); });
  ASSERT_TRUE(sink.ok());
  std::string data = RandomBytes(1 << 20, 5);
  Status s = (*sink)->Write(data.data(), data.size());
  if (s.ok()) s = (*sink)->Finish();
  EXPECT_EQ(s.message(), "full");
  EXPECT_EQ(ParseCompression("gzip").value(), Compression::kGzip);
  EXPECT_FALSE(ParseCompression("lz4").ok());
}

}  // namespace
}  // namespace registry
