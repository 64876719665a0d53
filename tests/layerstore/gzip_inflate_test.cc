// GzipInflater against streams made by zlib, an independent implementation.
#include "gzip_inflate.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <random>
#include <string>

namespace layerstore {
namespace {

std::string Gzip(const std::string& data, int level = 6) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, data.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// Text-like and random bytes, so that both matches and literals are exercised.
std::string Sample(size_t size, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s;
  while (s.size() < size) {
    if (rng() % 2) {
      s += "usr/share/doc/package-" + std::to_string(rng() % 100) + "/changelog.Debian.gz\n";
    } else {
      for (int i = 0; i < 64; ++i) s.push_back(static_cast<char>(rng()));
    }
  }
  s.resize(size);
  return s;
}

// Decompresses `compressed`, handing the inflater at most `in_chunk` bytes per input call and
// asking for at most `out_chunk` bytes per Read.
Result<std::string> Inflate(const std::string& compressed, size_t in_chunk, size_t out_chunk) {
  size_t pos = 0;
  GzipInflater inflater([&](char* buf, size_t cap) -> Result<size_t> {
    size_t n = std::min({cap, in_chunk, compressed.size() - pos});
    compressed.copy(buf, n, pos);
    pos += n;
    return n;
  });
  std::string out;
  std::string buf(out_chunk, '\0');
  for (;;) {
    LS_ASSIGN_OR_RETURN(size_t n, inflater.Read(buf.data(), buf.size()));
    if (n == 0) break;
    out.append(buf.data(), n);
  }
  return out;
}

TEST(GzipInflateTest, DecompressesWhatZlibWrote) {
  const std::string big = Sample(3 << 20, 1), small = Sample(100000, 2);
  const std::string big_gz = Gzip(big), small_gz = Gzip(small);
  struct Case {
    size_t in_chunk, out_chunk;
    bool big;
  };
  // Tiny input or output steps over the small stream only: byte by byte, 3 MiB takes seconds.
  for (Case c : {Case{1 << 20, 1 << 20, true}, Case{4096, 333, true}, Case{1, 65536, false}, Case{7, 1, false}}) {
    auto got = Inflate(c.big ? big_gz : small_gz, c.in_chunk, c.out_chunk);
    ASSERT_TRUE(got.ok()) << c.in_chunk << "/" << c.out_chunk << ": " << got.status().message();
    EXPECT_EQ(*got, c.big ? big : small) << c.in_chunk << "/" << c.out_chunk;
  }
}

TEST(GzipInflateTest, EmptyMemberGivesNothing) {
  auto got = Inflate(Gzip(""), 1 << 20, 1 << 20);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(*got, "");
}

TEST(GzipInflateTest, ConcatenatedMembersAreOneStream) {
  const std::string a = Sample(200000, 3), b = Sample(5000, 4), c = Sample(70000, 5);
  const std::string gz = Gzip(a, 1) + Gzip(b, 9) + Gzip("") + Gzip(c);
  for (size_t in_chunk : {size_t{1} << 20, size_t{1}, size_t{3}}) {
    auto got = Inflate(gz, in_chunk, 65536);
    ASSERT_TRUE(got.ok()) << got.status().message();
    EXPECT_EQ(*got, a + b + c) << in_chunk;
  }
}

TEST(GzipInflateTest, BytesAfterTheLastMemberAreLeftUnread) {
  const std::string data = Sample(100000, 6);
  const std::string gz = Gzip(data);
  for (const std::string& tail : {std::string(1024, '\0'), std::string("\x1f"), std::string("garbage")}) {
    auto got = Inflate(gz + tail, 1 << 20, 65536);
    ASSERT_TRUE(got.ok()) << got.status().message();
    EXPECT_EQ(*got, data);
  }
}

TEST(GzipInflateTest, DamageIsAnError) {
  const std::string data = Sample(100000, 7);
  const std::string gz = Gzip(data);

  std::string bad_crc = gz;
  bad_crc[gz.size() - 6] ^= 0x01;  // the trailer: CRC-32 (4 bytes), then ISIZE (4)
  auto crc = Inflate(bad_crc, 1 << 20, 65536);
  ASSERT_FALSE(crc.ok());
  EXPECT_NE(crc.status().message().find("CRC-32"), std::string::npos) << crc.status().message();

  std::string bad_size = gz;
  bad_size[gz.size() - 2] ^= 0x01;
  EXPECT_FALSE(Inflate(bad_size, 1 << 20, 65536).ok());

  std::string bad_method = gz;
  bad_method[2] = 7;  // CM: only 8 (deflate) exists
  auto method = Inflate(bad_method, 1 << 20, 65536);
  ASSERT_FALSE(method.ok());
  EXPECT_NE(method.status().message().find("not deflate"), std::string::npos) << method.status().message();

  for (size_t cut : {gz.size() / 2, gz.size() - 4, size_t{5}}) {
    auto truncated = Inflate(gz.substr(0, cut), 1 << 20, 65536);
    ASSERT_FALSE(truncated.ok()) << "cut at " << cut;
    EXPECT_NE(truncated.status().message().find("truncated"), std::string::npos) << truncated.status().message();
  }
}

TEST(GzipInflateTest, InputErrorsPassThrough) {
  const std::string gz = Gzip(Sample(300000, 8));
  size_t calls = 0;
  GzipInflater inflater([&](char* buf, size_t cap) -> Result<size_t> {
    if (++calls > 1) return Status::Unavailable("connection reset");
    size_t n = std::min(cap, gz.size() / 2);
    gz.copy(buf, n);
    return n;
  });
  std::string buf(1 << 20, '\0');
  Result<size_t> r = size_t{1};
  while (r.ok() && *r > 0) r = inflater.Read(buf.data(), buf.size());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "connection reset");
}

}  // namespace
}  // namespace layerstore
