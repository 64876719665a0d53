// CompressingSink's gzip, read back by zlib (an independent inflate).
#include "registry/compress.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <random>
#include <string>

namespace registry {
namespace {

std::string Compress(const std::string& data, size_t write_size) {
  std::string out;
  auto sink = CompressingSink::Create(Compression::kGzip, [&](const char* p, size_t n) {
    out.append(p, n);
    return layerstore::Status();
  });
  EXPECT_TRUE(sink.ok());
  for (size_t pos = 0; pos < data.size(); pos += write_size) {
    EXPECT_TRUE((*sink)->Write(data.data() + pos, std::min(write_size, data.size() - pos)).ok());
  }
  EXPECT_TRUE((*sink)->Finish().ok());
  return out;
}

std::string Gunzip(const std::string& gz) {
  z_stream zs{};
  EXPECT_EQ(inflateInit2(&zs, 15 + 16), Z_OK);
  std::string out;
  char buf[65536];
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  zs.avail_in = static_cast<uInt>(gz.size());
  int rc;
  do {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof buf - zs.avail_out);
  } while (rc == Z_OK);
  EXPECT_EQ(rc, Z_STREAM_END) << "zlib: " << (zs.msg ? zs.msg : "");
  EXPECT_EQ(zs.avail_in, 0u) << "bytes after the gzip trailer";
  inflateEnd(&zs);
  return out;
}

// Repetitive text, then incompressible bytes (stored blocks), across several 1 MiB blocks.
std::string Sample() {
  std::mt19937 rng(42);
  std::string s;
  while (s.size() < (5 << 20) / 2) s += "etc/alternatives/" + std::to_string(rng() % 1000) + " -> /usr/bin/x\n";
  while (s.size() < (5 << 20)) s.push_back(static_cast<char>(rng()));
  return s;
}

TEST(CompressTest, GzipIsReadableByZlibAndDeterministic) {
  for (const std::string& data : {std::string(), std::string("x"), Sample()}) {
    std::string gz = Compress(data, 100000);
    EXPECT_EQ(Gunzip(gz), data) << data.size() << " bytes";
    // Other write sizes, same bytes: the blocks depend on the input only.
    EXPECT_EQ(Compress(data, 1 << 20), gz) << data.size() << " bytes";
    EXPECT_EQ(Compress(data, 4097), gz) << data.size() << " bytes";
  }
}

TEST(CompressTest, GzipShrinksRepetitiveInput) {
  std::string text;
  while (text.size() < (3 << 20)) text += "usr/share/zoneinfo/Europe/Berlin\n";
  EXPECT_LT(Compress(text, 1 << 16).size(), text.size() / 20);
}

}  // namespace
}  // namespace registry
