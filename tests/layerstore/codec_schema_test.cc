// Unit tests of the record codec (codec.h), the LMDB record encodings (schema.h), Digest and Sha256.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "codec.h"
#include "layerstore/digest.h"
#include "layerstore/layer.h"
#include "layerstore/sha256.h"
#include "layerstore/store.h"
#include "schema.h"

namespace layerstore {
namespace {

constexpr std::string_view kEmptySha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr std::string_view kAbcSha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

Digest D(std::string_view text) {
  auto d = Sha256::Of(text);
  return d;
}

// ---------------------------------------------------------------------------------------------
// Encoder / Decoder

struct Sample {
  uint8_t u8;
  uint64_t varint;
  int64_t svarint;
  std::string bytes;
  std::string raw;  // fixed width 5
};

std::string EncodeSample(const Sample& s) {
  Encoder e;
  e.U8(s.u8);
  e.Varint(s.varint);
  e.Svarint(s.svarint);
  e.Bytes(s.bytes);
  e.Raw(s.raw);
  return e.Take();
}

TEST(CodecTest, VarintRoundTripsBoundaryValues) {
  const std::vector<uint64_t> values = {0,           1,          127,        128,        255,
                                        256,         16383,      16384,      (1ull << 32) - 1,
                                        1ull << 32,  (1ull << 56) + 3,       std::numeric_limits<uint64_t>::max()};
  Encoder e;
  for (uint64_t v : values) e.Varint(v);
  std::string out = e.Take();
  Decoder d(out);
  for (uint64_t v : values) EXPECT_EQ(d.Varint(), v);
  EXPECT_FALSE(d.failed());
  EXPECT_TRUE(d.done());
}

TEST(CodecTest, VarintEncodingIsMinimalLittleEndianBase128) {
  auto enc = [](uint64_t v) {
    Encoder e;
    e.Varint(v);
    return e.Take();
  };
  EXPECT_EQ(enc(0), std::string(1, '\0'));
  EXPECT_EQ(enc(127), "\x7f");
  EXPECT_EQ(enc(128), std::string("\x80\x01", 2));
  EXPECT_EQ(enc(300), std::string("\xac\x02", 2));
  EXPECT_EQ(enc(std::numeric_limits<uint64_t>::max()).size(), 10u);
}

TEST(CodecTest, SvarintRoundTripsSignedValues) {
  const std::vector<int64_t> values = {0,  1,  -1, 63, -64, 64, -65, 1700000000, -1700000000,
                                       std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min()};
  Encoder e;
  for (int64_t v : values) e.Svarint(v);
  std::string out = e.Take();
  Decoder d(out);
  for (int64_t v : values) EXPECT_EQ(d.Svarint(), v);
  EXPECT_FALSE(d.failed());
  EXPECT_TRUE(d.done());
  // Zig-zag: small magnitudes of either sign stay one byte.
  Encoder small;
  small.Svarint(-64);
  EXPECT_EQ(small.str().size(), 1u);
}

TEST(CodecTest, MixedFieldsRoundTrip) {
  Sample s{0xfe, 987654321ull, -42, std::string("bin\0ary\xff", 8), "RAW!!"};
  std::string out = EncodeSample(s);
  Decoder d(out);
  EXPECT_EQ(d.U8(), 0xfe);
  EXPECT_EQ(d.Varint(), s.varint);
  EXPECT_EQ(d.Svarint(), s.svarint);
  EXPECT_EQ(d.Bytes(), s.bytes);
  EXPECT_EQ(d.Raw(5), s.raw);
  EXPECT_FALSE(d.failed());
  EXPECT_TRUE(d.done());
}

TEST(CodecTest, EmptyBytesRoundTrip) {
  Encoder e;
  e.Bytes("");
  e.Bytes("x");
  std::string out = e.Take();
  Decoder d(out);
  EXPECT_EQ(d.Bytes(), "");
  EXPECT_EQ(d.Bytes(), "x");
  EXPECT_FALSE(d.failed());
  EXPECT_TRUE(d.done());
}

TEST(CodecTest, EveryTruncationFails) {
  Sample s{7, 1ull << 40, -123456789, std::string(300, 'q'), "abcde"};
  std::string out = EncodeSample(s);
  for (size_t len = 0; len < out.size(); ++len) {
    SCOPED_TRACE(len);
    Decoder d(std::string_view(out).substr(0, len));
    d.U8();
    d.Varint();
    d.Svarint();
    d.Bytes();
    d.Raw(5);
    EXPECT_TRUE(d.failed());
  }
}

TEST(CodecTest, FailureYieldsZerosAndSticks) {
  Decoder d(std::string_view("\x05" "ab", 3));  // Bytes() claims 5 bytes, only 2 follow
  EXPECT_EQ(d.Bytes(), "");
  EXPECT_TRUE(d.failed());
  EXPECT_EQ(d.U8(), 0);
  EXPECT_EQ(d.Varint(), 0u);
  EXPECT_TRUE(d.failed());
}

TEST(CodecTest, OverlongVarintFails) {
  std::string eleven(11, '\x80');
  Decoder d(eleven);
  EXPECT_EQ(d.Varint(), 0u);
  EXPECT_TRUE(d.failed());
}

TEST(CodecTest, ReadingPastEndFails) {
  Decoder d("");
  EXPECT_TRUE(d.done());
  EXPECT_EQ(d.U8(), 0);
  EXPECT_TRUE(d.failed());
  Decoder r("abc");
  EXPECT_EQ(r.Raw(4), "");
  EXPECT_TRUE(r.failed());
}

TEST(CodecTest, BigEndian32SortsLikeIntegers) {
  EXPECT_EQ(BigEndian32(0x01020304), std::string("\x01\x02\x03\x04", 4));
  EXPECT_LT(BigEndian32(255), BigEndian32(256));
  EXPECT_LT(BigEndian32(65535), BigEndian32(65536));
  EXPECT_LT(BigEndian32(0), BigEndian32(0xffffffff));
}

// ---------------------------------------------------------------------------------------------
// Entries

Entry MakeEntry(EntryType type) {
  Entry e;
  e.type = type;
  e.path = std::string("dir/") + EntryTypeName(type) + "-\xc3\xbc";
  e.mode = 04755;
  e.uid = 1000;
  e.gid = 4294967295u;
  e.mtime_sec = -1234567890123;
  e.mtime_nsec = 999999999;
  e.size = (type == EntryType::kRegular || type == EntryType::kHardlink) ? (5ull << 33) : 0;
  e.dev_major = 259;
  e.dev_minor = 1u << 20;
  e.link_target = type == EntryType::kSymlink ? "../target" : (type == EntryType::kHardlink ? "dir/file" : "");
  e.object = D(std::string("content of ") + EntryTypeName(type));
  e.sparse = type == EntryType::kRegular;
  e.xattrs = {{"security.capability", std::string("\x01\x00\x00\x02\x00\x20\x00\x00", 8)},
              {"user.binary", std::string("\x00\x01\xff\xfe\n=", 6)},
              {"user.empty", ""}};
  return e;
}

void ExpectSameEntry(const Entry& want, const Entry& got) {
  EXPECT_EQ(got.path, want.path);
  EXPECT_EQ(got.type, want.type);
  EXPECT_EQ(got.mode, want.mode);
  EXPECT_EQ(got.uid, want.uid);
  EXPECT_EQ(got.gid, want.gid);
  EXPECT_EQ(got.mtime_sec, want.mtime_sec);
  EXPECT_EQ(got.mtime_nsec, want.mtime_nsec);
  EXPECT_EQ(got.size, want.size);
  EXPECT_EQ(got.dev_major, want.dev_major);
  EXPECT_EQ(got.dev_minor, want.dev_minor);
  EXPECT_EQ(got.link_target, want.link_target);
  EXPECT_EQ(got.sparse, want.sparse);
  if (want.HasObject()) {
    EXPECT_EQ(got.object, want.object);
  } else {
    EXPECT_TRUE(got.object.empty()) << "objects are recorded only for files and hardlinks";
  }
  EXPECT_EQ(got.xattrs, want.xattrs);
}

const std::vector<EntryType> kAllTypes = {EntryType::kRegular,    EntryType::kDirectory,   EntryType::kSymlink,
                                          EntryType::kHardlink,   EntryType::kCharDevice,  EntryType::kBlockDevice,
                                          EntryType::kFifo,       EntryType::kWhiteout,    EntryType::kOpaque};

TEST(SchemaTest, EntryRoundTripsForEveryType) {
  for (EntryType type : kAllTypes) {
    SCOPED_TRACE(EntryTypeName(type));
    Entry e = MakeEntry(type);
    std::string encoded = EncodeEntry(e);
    auto decoded = DecodeEntry(encoded);
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    ExpectSameEntry(e, *decoded);
  }
}

TEST(SchemaTest, EntryWithoutXattrsAndDefaults) {
  Entry e;
  e.path = ".";
  e.type = EntryType::kDirectory;
  auto decoded = DecodeEntry(EncodeEntry(e));
  ASSERT_TRUE(decoded.ok());
  ExpectSameEntry(e, *decoded);
  EXPECT_TRUE(decoded->xattrs.empty());
}

TEST(SchemaTest, ManyXattrsKeepOrder) {
  Entry e = MakeEntry(EntryType::kRegular);
  e.xattrs.clear();
  for (int i = 0; i < 200; ++i) {
    e.xattrs.emplace_back("user.k" + std::to_string(i), std::string(static_cast<size_t>(i), static_cast<char>(i)));
  }
  auto decoded = DecodeEntry(EncodeEntry(e));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->xattrs, e.xattrs);
}

TEST(SchemaTest, TruncatedEntryIsCorruption) {
  for (EntryType type : {EntryType::kRegular, EntryType::kSymlink, EntryType::kCharDevice}) {
    std::string encoded = EncodeEntry(MakeEntry(type));
    for (size_t len = 0; len < encoded.size(); ++len) {
      SCOPED_TRACE(std::string(EntryTypeName(type)) + " cut at " + std::to_string(len));
      auto decoded = DecodeEntry(std::string_view(encoded).substr(0, len));
      ASSERT_FALSE(decoded.ok());
      EXPECT_EQ(decoded.status().code(), Code::kCorruption);
    }
  }
}

TEST(SchemaTest, EntryWithBadVersionOrTypeIsCorruption) {
  std::string encoded = EncodeEntry(MakeEntry(EntryType::kFifo));
  std::string bad_version = encoded;
  bad_version[0] = 2;
  EXPECT_EQ(DecodeEntry(bad_version).status().code(), Code::kCorruption);
  for (char t : {'\0', '\x0a', '\xff'}) {
    std::string bad_type = encoded;
    bad_type[1] = t;
    auto r = DecodeEntry(bad_type);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kCorruption);
    EXPECT_NE(r.status().message().find("entry"), std::string::npos) << r.status().message();
  }
}

TEST(SchemaTest, EntryKeyIsDiffIdThenBigEndianSeq) {
  Digest diff = D("layer");
  std::string k = EntryKey(diff, 0x0a0b0c0d);
  ASSERT_EQ(k.size(), Digest::kSize + 4);
  EXPECT_EQ(k.substr(0, Digest::kSize), diff.raw());
  EXPECT_EQ(k.substr(Digest::kSize), std::string("\x0a\x0b\x0c\x0d", 4));
  // LMDB's bytewise order must be tar order.
  EXPECT_LT(EntryKey(diff, 255), EntryKey(diff, 256));
  EXPECT_LT(EntryKey(diff, 1), EntryKey(diff, 1u << 24));
}

TEST(SchemaTest, EntryTypeNames) {
  EXPECT_STREQ(EntryTypeName(EntryType::kRegular), "file");
  EXPECT_STREQ(EntryTypeName(EntryType::kWhiteout), "whiteout");
  EXPECT_STREQ(EntryTypeName(EntryType::kOpaque), "opaque marker");
  EXPECT_STREQ(EntryTypeName(static_cast<EntryType>(42)), "unknown");
}

// ---------------------------------------------------------------------------------------------
// Images

ImageRecord MakeImage(bool with_manifest) {
  ImageRecord r;
  r.id = D("config");
  r.layers = {D("l1"), D("l2"), D("l3")};
  r.repo_digests = {"docker.io/library/busybox@sha256:" + std::string(kAbcSha), "quay.io/x/y@sha256:" + std::string(kEmptySha)};
  if (with_manifest) r.manifest = D("manifest");
  r.manifest_media_type = with_manifest ? "application/vnd.oci.image.manifest.v1+json" : "";
  r.added_at = 1700000000;
  r.tagged_at = -5;
  r.size = 123456789012ull;
  return r;
}

void ExpectSameImage(const ImageRecord& want, const ImageRecord& got) {
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.layers, want.layers);
  EXPECT_EQ(got.repo_digests, want.repo_digests);
  EXPECT_EQ(got.manifest, want.manifest);
  EXPECT_EQ(got.manifest_media_type, want.manifest_media_type);
  EXPECT_EQ(got.added_at, want.added_at);
  EXPECT_EQ(got.tagged_at, want.tagged_at);
  EXPECT_EQ(got.size, want.size);
}

TEST(SchemaTest, ImageRoundTrips) {
  for (bool with_manifest : {true, false}) {
    SCOPED_TRACE(with_manifest);
    ImageRecord r = MakeImage(with_manifest);
    auto decoded = DecodeImage(r.id.raw(), EncodeImage(r));
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    ExpectSameImage(r, *decoded);
  }
  ImageRecord empty;
  empty.id = D("empty image");
  auto decoded = DecodeImage(empty.id.raw(), EncodeImage(empty));
  ASSERT_TRUE(decoded.ok());
  ExpectSameImage(empty, *decoded);
}

TEST(SchemaTest, ImageIdComesFromTheKey) {
  ImageRecord r = MakeImage(true);
  Digest other = D("another id");
  auto decoded = DecodeImage(other.raw(), EncodeImage(r));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->id, other);
}

TEST(SchemaTest, ImageBadKeyOrTruncationIsCorruption) {
  ImageRecord r = MakeImage(true);
  std::string encoded = EncodeImage(r);
  EXPECT_EQ(DecodeImage("short", encoded).status().code(), Code::kCorruption);
  for (size_t len = 0; len < encoded.size(); ++len) {
    SCOPED_TRACE(len);
    auto decoded = DecodeImage(r.id.raw(), std::string_view(encoded).substr(0, len));
    ASSERT_FALSE(decoded.ok());
    EXPECT_EQ(decoded.status().code(), Code::kCorruption);
  }
}

TEST(SchemaTest, ImageWithHugeLayerCountIsCorruptionNotACrash) {
  Encoder e;
  e.U8(1);
  e.Varint(std::numeric_limits<uint64_t>::max());  // claims 2^64-1 layers, none follow
  auto decoded = DecodeImage(D("x").raw(), e.Take());
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), Code::kCorruption);
}

// ---------------------------------------------------------------------------------------------
// Layer, object and blob records

TEST(SchemaTest, LayerRecordRoundTrips) {
  LayerRecord r;
  r.refcount = 3;
  r.tar_size = 1ull << 40;
  r.content_size = 12345;
  r.entry_count = 2000000;
  r.blob_digest = D("blob");
  r.blob_size = 77;
  r.compression = "zstd";
  std::string encoded = EncodeLayer(r);
  auto decoded = DecodeLayer(encoded);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->refcount, r.refcount);
  EXPECT_EQ(decoded->tar_size, r.tar_size);
  EXPECT_EQ(decoded->content_size, r.content_size);
  EXPECT_EQ(decoded->entry_count, r.entry_count);
  EXPECT_EQ(decoded->blob_digest, r.blob_digest);
  EXPECT_EQ(decoded->blob_size, r.blob_size);
  EXPECT_EQ(decoded->compression, r.compression);
  for (size_t len = 0; len < encoded.size(); ++len) {
    EXPECT_EQ(DecodeLayer(std::string_view(encoded).substr(0, len)).status().code(), Code::kCorruption) << len;
  }
  std::string bad = encoded;
  bad[0] = 9;
  EXPECT_EQ(DecodeLayer(bad).status().code(), Code::kCorruption);
}

TEST(SchemaTest, ObjectRecordRoundTrips) {
  ObjectRecord r{std::numeric_limits<uint64_t>::max(), 4096};
  std::string encoded = EncodeObject(r);
  auto decoded = DecodeObject(encoded);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->refcount, r.refcount);
  EXPECT_EQ(decoded->size, r.size);
  for (size_t len = 0; len < encoded.size(); ++len) {
    EXPECT_EQ(DecodeObject(std::string_view(encoded).substr(0, len)).status().code(), Code::kCorruption) << len;
  }
  std::string bad = encoded;
  bad[0] = 0;
  EXPECT_EQ(DecodeObject(bad).status().code(), Code::kCorruption);
}

TEST(SchemaTest, BlobRecordRoundTrips) {
  BlobRecord r{2, 999, "application/vnd.oci.image.config.v1+json"};
  std::string encoded = EncodeBlob(r);
  auto decoded = DecodeBlob(encoded);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->refcount, r.refcount);
  EXPECT_EQ(decoded->size, r.size);
  EXPECT_EQ(decoded->media_type, r.media_type);
  for (size_t len = 0; len < encoded.size(); ++len) {
    EXPECT_EQ(DecodeBlob(std::string_view(encoded).substr(0, len)).status().code(), Code::kCorruption) << len;
  }
  BlobRecord empty_type{1, 0, ""};
  auto decoded_empty = DecodeBlob(EncodeBlob(empty_type));
  ASSERT_TRUE(decoded_empty.ok());
  EXPECT_EQ(decoded_empty->media_type, "");
}

// ---------------------------------------------------------------------------------------------
// Digest

TEST(DigestTest, ParseAndPrintRoundTrip) {
  std::string text = "sha256:" + std::string(kAbcSha);
  auto d = Digest::Parse(text);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->hex(), kAbcSha);
  EXPECT_EQ(d->str(), text);
  EXPECT_FALSE(d->empty());
  EXPECT_EQ(d->raw().size(), Digest::kSize);
  EXPECT_EQ(static_cast<uint8_t>(d->raw()[0]), 0xba);
  EXPECT_EQ(Digest::FromRaw(d->raw()), *d);
  auto h = Digest::FromHex(kAbcSha);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, *d);
}

TEST(DigestTest, DefaultIsEmptyAndOrdered) {
  Digest zero;
  EXPECT_TRUE(zero.empty());
  EXPECT_EQ(zero.hex(), std::string(64, '0'));
  Digest a = *Digest::FromHex(std::string(63, '0') + "1");
  Digest b = *Digest::FromHex("1" + std::string(63, '0'));
  EXPECT_LT(zero, a);
  EXPECT_LT(a, b);
  EXPECT_NE(a, b);
  EXPECT_NE(std::hash<Digest>()(a), std::hash<Digest>()(b));
}

TEST(DigestTest, ParseErrors) {
  struct Case {
    std::string text;
    Code code;
  };
  const std::vector<Case> cases = {
      {std::string(kAbcSha), Code::kInvalidArgument},                      // no algorithm
      {"sha512:" + std::string(kAbcSha), Code::kUnsupported},              // other algorithm
      {"md5:abc", Code::kUnsupported},
      {"sha256:" + std::string(kAbcSha).substr(1), Code::kInvalidArgument},  // 63 hex
      {"sha256:" + std::string(kAbcSha) + "0", Code::kInvalidArgument},      // 65 hex
      {"sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", Code::kInvalidArgument},
      {"sha256:" + std::string(63, 'a') + "g", Code::kInvalidArgument},
      {"sha256:", Code::kInvalidArgument},
      {"", Code::kInvalidArgument},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    auto d = Digest::Parse(c.text);
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.status().code(), c.code);
    if (!c.text.empty()) {
      EXPECT_NE(d.status().message().find(c.text), std::string::npos) << d.status().message();
    }
  }
  auto other = Digest::Parse("sha512:" + std::string(kAbcSha));
  EXPECT_NE(other.status().message().find("sha512"), std::string::npos);
}

TEST(DigestTest, FromHexErrors) {
  for (std::string bad : {std::string(), std::string(kAbcSha).substr(2), std::string(kAbcSha) + "00",
                          std::string(64, 'G'), std::string(64, 'A'), std::string(63, '0') + " ",
                          "sha256:" + std::string(kAbcSha).substr(7)}) {
    SCOPED_TRACE(bad);
    auto d = Digest::FromHex(bad);
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.status().code(), Code::kInvalidArgument);
    EXPECT_NE(d.status().message().find("64 lowercase hex"), std::string::npos) << d.status().message();
  }
}

TEST(DigestTest, IsHexString) {
  EXPECT_TRUE(IsHexString("0123456789abcdef"));
  EXPECT_TRUE(IsHexString("a"));
  EXPECT_FALSE(IsHexString(""));
  EXPECT_FALSE(IsHexString("ABC"));
  EXPECT_FALSE(IsHexString("sha256:ab"));
  EXPECT_FALSE(IsHexString("xyz"));
}

// ---------------------------------------------------------------------------------------------
// Sha256

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256::Of("").hex(), kEmptySha);
  EXPECT_EQ(Sha256::Of("abc").hex(), kAbcSha);
  EXPECT_EQ(Sha256::Of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq").hex(),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256Test, StreamingMatchesOneShotAndFinishResets) {
  Sha256 h;
  h.Update("a");
  h.Update(std::string_view("bc"));
  EXPECT_EQ(h.Finish().hex(), kAbcSha);
  // Finish reset the state: the next stream starts empty.
  EXPECT_EQ(h.Finish().hex(), kEmptySha);
  h.Update(nullptr, 0);
  h.Update("abc");
  EXPECT_EQ(h.Finish().hex(), kAbcSha);

  std::string million(1000000, 'a');
  Sha256 pieces;
  for (size_t i = 0; i < million.size(); i += 4093) {
    pieces.Update(std::string_view(million).substr(i, 4093));
  }
  Digest streamed = pieces.Finish();
  EXPECT_EQ(streamed, Sha256::Of(million));
  EXPECT_EQ(streamed.hex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, MoveKeepsState) {
  Sha256 a;
  a.Update("ab");
  Sha256 b(std::move(a));
  b.Update("c");
  EXPECT_EQ(b.Finish().hex(), kAbcSha);
  Sha256 c;
  c = std::move(b);
  c.Update("abc");
  EXPECT_EQ(c.Finish().hex(), kAbcSha);
}

}  // namespace
}  // namespace layerstore
