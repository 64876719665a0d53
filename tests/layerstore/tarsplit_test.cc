// TarSplitWriter -> TarSplitReader::Replay round trips, and damaged tar-splits.
#include "tarsplit.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "codec.h"
#include "layerstore/sha256.h"
#include "layerstore/unique_fd.h"

namespace layerstore {
namespace {

constexpr std::string_view kMagic("STRATA-TARSPLIT\x01", 16);

// One replayed event; consecutive raw pieces are merged, since Replay may split a raw record.
struct Event {
  char kind;  // 'R' or 'P'
  std::string raw;
  Digest object;
  uint64_t size = 0;
  bool operator==(const Event&) const = default;
};

void AppendRaw(std::vector<Event>* events, std::string_view bytes) {
  if (bytes.empty()) return;
  if (!events->empty() && events->back().kind == 'R') {
    events->back().raw.append(bytes);
  } else {
    events->push_back({'R', std::string(bytes), {}, 0});
  }
}

std::string Describe(const std::vector<Event>& events) {
  std::string out;
  for (const Event& e : events) {
    if (e.kind == 'R') {
      out += "R(" + std::to_string(e.raw.size()) + ") ";
    } else {
      out += "P(" + e.object.hex().substr(0, 8) + "," + std::to_string(e.size) + ") ";
    }
  }
  return out;
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    for (size_t j = 0; j < 8 && i + j < n; ++j) s[i + j] = static_cast<char>(v >> (8 * j));
  }
  return s;
}

class TarSplitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tarsplit_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    for (const std::string& f : files_) ::unlink(f.c_str());
    ::rmdir(dir_.c_str());
  }

  // A new empty file opened read-write.
  UniqueFd NewFile(std::string* path_out = nullptr) {
    std::string path = dir_ + "/f" + std::to_string(files_.size());
    files_.push_back(path);
    if (path_out) *path_out = path;
    return UniqueFd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  }

  UniqueFd WriteFileWith(std::string_view bytes) {
    UniqueFd fd = NewFile();
    EXPECT_TRUE(fd);
    EXPECT_EQ(::write(fd.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    EXPECT_EQ(::lseek(fd.get(), 0, SEEK_SET), 0);
    return fd;
  }

  std::string ReadAll(int fd) {
    std::string out;
    EXPECT_EQ(::lseek(fd, 0, SEEK_SET), 0);
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      EXPECT_GE(n, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

  // Replays `fd` from its start into events.
  Status Replay(int fd, std::vector<Event>* events, Digest* diff_id, uint64_t* tar_size) {
    EXPECT_EQ(::lseek(fd, 0, SEEK_SET), 0);
    return TarSplitReader::Replay(
        fd,
        [&](std::string_view bytes) {
          AppendRaw(events, bytes);
          return Status();
        },
        [&](const Digest& d, uint64_t size) {
          events->push_back({'P', {}, d, size});
          return Status();
        },
        diff_id, tar_size);
  }

  std::string dir_;
  std::vector<std::string> files_;
};

// Writes `plan` through a TarSplitWriter (in the given call granularity) into a new file.
struct Plan {
  std::vector<Event> calls;  // unmerged, as written
  Digest diff_id;
  uint64_t tar_size = 0;
};

Status WritePlan(int fd, const Plan& plan) {
  TarSplitWriter w(fd);
  for (const Event& e : plan.calls) {
    if (e.kind == 'R') {
      LS_RETURN_IF_ERROR(w.Raw(e.raw));
    } else {
      LS_RETURN_IF_ERROR(w.Payload(e.object, e.size));
    }
  }
  return w.Finish(plan.diff_id, plan.tar_size);
}

std::vector<Event> Merged(const std::vector<Event>& calls) {
  std::vector<Event> out;
  for (const Event& e : calls) {
    if (e.kind == 'R') {
      AppendRaw(&out, e.raw);
    } else {
      out.push_back(e);
    }
  }
  return out;
}

Plan ManyRecordsPlan() {
  Plan plan;
  std::mt19937 rng(1234);
  uint64_t total = 0;
  for (int i = 0; i < 2000; ++i) {
    // Tar-like: a 512-byte header, then either a payload reference or some inline data, then padding.
    std::string header = RandomBytes(64, static_cast<uint32_t>(i)) + std::string(448, '\0');
    plan.calls.push_back({'R', header, {}, 0});
    total += header.size();
    if (i % 3 == 0) {
      uint64_t size = rng() % 100000;
      plan.calls.push_back({'P', {}, Sha256::Of("object " + std::to_string(i)), size});
      total += size;
    } else {
      std::string data(rng() % 3000, static_cast<char>('a' + i % 26));
      plan.calls.push_back({'R', data, {}, 0});
      total += data.size();
    }
    if (i % 7 == 0) plan.calls.push_back({'R', "", {}, 0});  // empty raw: writes nothing
    if (i % 11 == 0) {
      // Two payloads back to back (a hardlinked pair, or a file whose data ends on a block boundary).
      plan.calls.push_back({'P', {}, Sha256::Of("pair"), 0});
      plan.calls.push_back({'P', {}, Sha256::Of("pair2"), 1ull << 40});
      total += 1ull << 40;
    }
  }
  // A > 1 MiB raw record of incompressible bytes (a sparse file's data kept in the tar-split), so the
  // compressed output overflows zstd's output buffer many times over.
  std::string big = RandomBytes((3 << 20) + 17, 99);
  plan.calls.push_back({'R', big, {}, 0});
  total += big.size();
  // And a highly compressible one: decompressing it yields far more output than input.
  std::string zeros(5 << 20, '\0');
  plan.calls.push_back({'R', zeros, {}, 0});
  total += zeros.size();
  plan.calls.push_back({'P', {}, Sha256::Of("last"), 512});
  plan.calls.push_back({'R', std::string(1024, '\0'), {}, 0});  // end-of-archive blocks
  total += 512 + 1024;
  plan.diff_id = Sha256::Of("the whole tar");
  plan.tar_size = total;
  return plan;
}

TEST_F(TarSplitTest, RoundTripManyRecordsIncludingHugeRaw) {
  Plan plan = ManyRecordsPlan();
  UniqueFd fd = NewFile();
  ASSERT_TRUE(fd);
  ASSERT_TRUE(WritePlan(fd.get(), plan).ok());
  struct stat st;
  ASSERT_EQ(::fstat(fd.get(), &st), 0);
  // Compressed: smaller than the raw bytes it holds (the 5 MiB of zeros alone shrink to almost nothing).
  EXPECT_LT(static_cast<uint64_t>(st.st_size), 4u << 20);

  std::vector<Event> events;
  Digest diff_id;
  uint64_t tar_size = 0;
  Status s = Replay(fd.get(), &events, &diff_id, &tar_size);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::vector<Event> want = Merged(plan.calls);
  ASSERT_EQ(events.size(), want.size()) << "got " << Describe(events).substr(0, 400);
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(events[i].kind, want[i].kind) << i;
    if (want[i].kind == 'R') {
      ASSERT_EQ(events[i].raw.size(), want[i].raw.size()) << i;
      ASSERT_TRUE(events[i].raw == want[i].raw) << "raw record " << i << " differs";
    } else {
      ASSERT_EQ(events[i].object, want[i].object) << i;
      ASSERT_EQ(events[i].size, want[i].size) << i;
    }
  }
  EXPECT_EQ(diff_id, plan.diff_id);
  EXPECT_EQ(tar_size, plan.tar_size);
}

TEST_F(TarSplitTest, RawBytesAreDeliveredInOrderEvenWhenSplit) {
  // One raw record of 2 MiB + 1 must be delivered whole (possibly in pieces) before the payload.
  std::string big = RandomBytes((2 << 20) + 1, 7);
  Plan plan;
  plan.calls = {{'R', big, {}, 0}, {'P', {}, Sha256::Of("x"), 3}, {'R', "tail", {}, 0}};
  plan.diff_id = Sha256::Of("tar");
  plan.tar_size = big.size() + 3 + 4;
  UniqueFd fd = NewFile();
  ASSERT_TRUE(WritePlan(fd.get(), plan).ok());
  std::vector<std::string> pieces;
  std::vector<std::string> order;
  Digest diff_id;
  uint64_t tar_size = 0;
  ASSERT_EQ(::lseek(fd.get(), 0, SEEK_SET), 0);
  Status s = TarSplitReader::Replay(
      fd.get(),
      [&](std::string_view bytes) {
        pieces.emplace_back(bytes);
        order.push_back("R");
        return Status();
      },
      [&](const Digest&, uint64_t) {
        order.push_back("P");
        return Status();
      },
      &diff_id, &tar_size);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::string joined;
  size_t before_payload = 0;
  for (size_t i = 0; i < order.size() && order[i] == "R"; ++i) before_payload += pieces[i].size();
  for (const std::string& p : pieces) joined += p;
  EXPECT_EQ(before_payload, big.size());
  EXPECT_TRUE(joined == big + "tail");
  EXPECT_EQ(order.back(), "R");
  EXPECT_EQ(tar_size, plan.tar_size);
}

TEST_F(TarSplitTest, EmptyTarSplitRoundTrips) {
  UniqueFd fd = NewFile();
  {
    TarSplitWriter w(fd.get());
    ASSERT_TRUE(w.Finish(Sha256::Of(""), 0).ok());
  }
  std::vector<Event> events;
  Digest diff_id;
  uint64_t tar_size = 99;
  Status s = Replay(fd.get(), &events, &diff_id, &tar_size);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(diff_id, Sha256::Of(""));
  EXPECT_EQ(tar_size, 0u);
}

TEST_F(TarSplitTest, CallbackErrorsStopTheReplay) {
  Plan plan;
  plan.calls = {{'R', "header", {}, 0}, {'P', {}, Sha256::Of("a"), 1}, {'R', "more", {}, 0}};
  plan.diff_id = Sha256::Of("t");
  plan.tar_size = 11;
  UniqueFd fd = NewFile();
  ASSERT_TRUE(WritePlan(fd.get(), plan).ok());
  Digest diff_id;
  uint64_t tar_size = 0;
  int raws_after_payload = 0;
  bool payload_seen = false;
  ASSERT_EQ(::lseek(fd.get(), 0, SEEK_SET), 0);
  Status s = TarSplitReader::Replay(
      fd.get(),
      [&](std::string_view) {
        if (payload_seen) ++raws_after_payload;
        return Status();
      },
      [&](const Digest&, uint64_t) {
        payload_seen = true;
        return Status::NotFound("object missing");
      },
      &diff_id, &tar_size);
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(s.message(), "object missing");
  EXPECT_EQ(raws_after_payload, 0);
}

TEST_F(TarSplitTest, TruncatedFileIsCorruption) {
  Plan plan = ManyRecordsPlan();
  UniqueFd fd = NewFile();
  ASSERT_TRUE(WritePlan(fd.get(), plan).ok());
  std::string whole = ReadAll(fd.get());
  ASSERT_GT(whole.size(), 1000u);
  for (size_t cut : {size_t{0}, size_t{1}, size_t{10}, size_t{100}, whole.size() / 3, whole.size() / 2,
                     whole.size() - 100, whole.size() - 1}) {
    SCOPED_TRACE("cut at " + std::to_string(cut) + " of " + std::to_string(whole.size()));
    UniqueFd cut_fd = WriteFileWith(std::string_view(whole).substr(0, cut));
    std::vector<Event> events;
    Digest diff_id;
    uint64_t tar_size = 0;
    Status s = Replay(cut_fd.get(), &events, &diff_id, &tar_size);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  }
}

TEST_F(TarSplitTest, GarbageIsCorruption) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    UniqueFd fd = WriteFileWith(RandomBytes(10000, seed));
    std::vector<Event> events;
    Digest diff_id;
    uint64_t tar_size = 0;
    Status s = Replay(fd.get(), &events, &diff_id, &tar_size);
    EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
    EXPECT_TRUE(events.empty());
  }
  // A plain (uncompressed) tar-split stream is not accepted either.
  std::string plain = std::string(kMagic) + "E" + std::string(32, 'x') + "\x01";
  UniqueFd fd = WriteFileWith(plain);
  std::vector<Event> events;
  Digest diff_id;
  uint64_t tar_size = 0;
  EXPECT_EQ(Replay(fd.get(), &events, &diff_id, &tar_size).code(), Code::kCorruption);
}

TEST_F(TarSplitTest, FlippedByteInTheMiddleIsNotSilentlyAccepted) {
  Plan plan = ManyRecordsPlan();
  UniqueFd fd = NewFile();
  ASSERT_TRUE(WritePlan(fd.get(), plan).ok());
  std::string whole = ReadAll(fd.get());
  // zstd frames carry no checksum by default, so damage may decode to different bytes: the replay
  // must then either fail with Corruption or produce events that differ from the original.
  std::string damaged = whole;
  damaged[damaged.size() / 2] ^= 0x5a;
  UniqueFd dfd = WriteFileWith(damaged);
  std::vector<Event> events;
  Digest diff_id;
  uint64_t tar_size = 0;
  Status s = Replay(dfd.get(), &events, &diff_id, &tar_size);
  if (s.ok()) {
    EXPECT_NE(events, Merged(plan.calls));
  } else {
    EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  }
}

// Compresses a hand-built record stream, to reach the parser's own checks.
std::string Zstd(std::string_view plain) {
  std::string out(ZSTD_compressBound(plain.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), plain.data(), plain.size(), 3);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

std::string EndRecord() {
  Encoder e;
  e.U8('E');
  e.Raw(Sha256::Of("t").raw());
  e.Varint(5);
  return e.Take();
}

TEST_F(TarSplitTest, HandBuiltStreamsWithDefectsAreCorruption) {
  struct Case {
    const char* name;
    std::string plain;
    const char* message;
  };
  Encoder raw_header;
  raw_header.U8('R');
  raw_header.Varint(100);
  std::vector<Case> cases = {
      {"bad magic", "STRATA-TARSPLIT\x02" + EndRecord(), "magic"},
      {"unknown record", std::string(kMagic) + "Z" + EndRecord(), "unknown kind"},
      {"data after end", std::string(kMagic) + EndRecord() + "R\x01x", "after its end"},
      {"no end record", std::string(kMagic) + "R\x03" "abc", "truncated"},
      {"raw shorter than declared", std::string(kMagic) + raw_header.str() + "only a few bytes", "truncated"},
      {"half a payload record", std::string(kMagic) + "P" + std::string(10, 'd'), "truncated"},
      {"magic only", std::string(kMagic), "truncated"},
      {"short magic", std::string(kMagic.substr(0, 8)), "truncated"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    UniqueFd fd = WriteFileWith(Zstd(c.plain));
    std::vector<Event> events;
    Digest diff_id;
    uint64_t tar_size = 0;
    Status s = Replay(fd.get(), &events, &diff_id, &tar_size);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), Code::kCorruption);
    EXPECT_NE(s.message().find(c.message), std::string::npos) << s.message();
  }
  // The same hand-built stream without a defect replays fine (the cases above fail for their defect).
  UniqueFd fd = WriteFileWith(Zstd(std::string(kMagic) + "R\x03" "abc" + EndRecord()));
  std::vector<Event> events;
  Digest diff_id;
  uint64_t tar_size = 0;
  Status s = Replay(fd.get(), &events, &diff_id, &tar_size);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].raw, "abc");
  EXPECT_EQ(tar_size, 5u);
  EXPECT_EQ(diff_id, Sha256::Of("t"));
}

TEST_F(TarSplitTest, WriteErrorIsReported) {
  // A read-only descriptor: the writer must report the failed write, not drop data.
  std::string path;
  { UniqueFd fd = NewFile(&path); }
  UniqueFd ro(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(ro);
  TarSplitWriter w(ro.get());
  Status s = w.Raw(RandomBytes(1 << 20, 5));
  if (s.ok()) s = w.Finish(Sha256::Of("x"), 1);
  EXPECT_FALSE(s.ok());
}

}  // namespace
}  // namespace layerstore
