// ObjectWriter units: contents hashed on the caller's thread and written on the writer thread;
// what Finish and Cancel leave on disk (objects, no temp files), errors of background writes,
// the queue bound (backpressure) and the background flusher. Also run under TSan (see
// docs/benchmarks.md, "Load speed").
#include "object_writer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstring>
#include <functional>
#include <thread>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "layerstore/sha256.h"
#include "paths.h"
#include "testutil/temp_base.h"

namespace layerstore {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Deterministic bytes: content `seed`, `size` bytes long.
std::string Content(uint64_t seed, size_t size) {
  std::string s(size, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s[i] = static_cast<char>(x);
  }
  return s;
}

// From now on, in this process and the threads it starts, system call `nr` fails with `err`
// whenever its argument `arg` has any bit of `bits` set: a kernel or file system without a feature.
bool FailSyscallWhenFlagged(int nr, int arg, uint32_t bits, int err) {
  const uint32_t low_word = offsetof(seccomp_data, args) + 8 * arg + (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__ ? 4 : 0);
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, low_word),
      BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, bits, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | static_cast<uint32_t>(err)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
}

// Runs `fn` in a child process; returns its exit status (-1 when it did not exit).
int InChild(const std::function<int()>& fn) {
  pid_t child = ::fork();
  if (child == 0) ::_exit(fn());
  int status = 0;
  if (child < 0 || ::waitpid(child, &status, 0) != child || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

class ObjectWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = TempBase() + "/strata-objw.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    fs::create_directories(root_ / paths::kTmpDir);
    for (unsigned shard = 0; shard < 256; ++shard) fs::create_directories(root_ / paths::ObjectShard(shard));
    fd_ = UniqueFd(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(fd_);
  }
  void TearDown() override {
    fd_.Reset();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  // Writes one content in pieces of `piece` bytes; returns its digest.
  static Digest Put(ObjectWriter& w, const std::string& content, size_t piece = 64 << 10) {
    EXPECT_TRUE(w.Begin(content.size(), "f").ok());
    for (size_t off = 0; off < content.size(); off += piece) {
      size_t n = std::min(piece, content.size() - off);
      Status s = w.Write(off, content.data() + off, n);
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
    auto d = w.Commit();
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return d.ok() ? *d : Digest();
  }

  size_t TempFiles() const {
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(root_ / paths::kTmpDir)) n += e.is_regular_file() ? 1 : 0;
    return n;
  }

  std::string Object(const Digest& d) const { return ReadFile(root_ / paths::Object(d)); }
  bool HasObject(const Digest& d) const { return fs::exists(root_ / paths::Object(d)); }

  fs::path root_;
  UniqueFd fd_;
};

TEST_F(ObjectWriterTest, SmallAndLargeContentsArePublishedOnceEach) {
  ObjectWriter w(fd_.get(), [](const Digest&) { return false; });
  std::map<Digest, std::string> want;
  uint64_t distinct_bytes = 0;
  for (int i = 0; i < 3000; ++i) {
    // Every third content repeats an earlier one: written once only.
    std::string c = Content(i % 3 == 2 ? static_cast<uint64_t>(i - 1) : static_cast<uint64_t>(i), 100 + i);
    Digest d = Put(w, c, 777);
    EXPECT_EQ(d, Sha256::Of(c));
    if (want.emplace(d, c).second) distinct_bytes += c.size();
  }
  std::string big = Content(99999, (3 << 20) + 5);  // a large content: through a temp file
  Digest big_d = Put(w, big);
  want.emplace(big_d, big);
  distinct_bytes += big.size();
  Put(w, big);  // again: known by now, its second temp file goes

  ASSERT_TRUE(w.Finish().ok());
  EXPECT_EQ(w.created().size(), want.size());
  EXPECT_EQ(std::set<Digest>(w.created().begin(), w.created().end()).size(), want.size());
  EXPECT_EQ(w.new_bytes(), distinct_bytes);
  for (const auto& [d, c] : want) {
    ASSERT_EQ(Object(d), c) << d.str();
    struct stat st;
    ASSERT_EQ(::stat((root_ / paths::Object(d)).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0444u);
  }
  EXPECT_EQ(TempFiles(), 0u);
}

TEST_F(ObjectWriterTest, KnownContentsAreNotWritten) {
  std::string a = Content(1, 5000), b = Content(2, 5000), big = Content(3, 2 << 20);
  std::set<Digest> known = {Sha256::Of(a), Sha256::Of(big)};
  ObjectWriter w(fd_.get(), [&](const Digest& d) { return known.count(d) > 0; });
  Put(w, a);
  Put(w, b);
  Put(w, big);
  ASSERT_TRUE(w.Finish().ok());
  EXPECT_FALSE(HasObject(Sha256::Of(a)));
  EXPECT_TRUE(HasObject(Sha256::Of(b)));
  EXPECT_FALSE(HasObject(Sha256::Of(big)));
  EXPECT_EQ(w.created(), std::vector<Digest>{Sha256::Of(b)});
  EXPECT_EQ(w.new_bytes(), b.size());
  EXPECT_EQ(TempFiles(), 0u);
}

TEST_F(ObjectWriterTest, SmallContentWithHolesIsWhole) {
  ObjectWriter w(fd_.get(), [](const Digest&) { return false; });
  const uint64_t size = 10000;
  std::string want(size, '\0');
  std::string piece = Content(6, 1000);
  want.replace(4000, piece.size(), piece);
  ASSERT_TRUE(w.Begin(size, "sparse").ok());
  ASSERT_TRUE(w.Write(4000, piece.data(), piece.size()).ok());  // holes before and after
  auto d = w.Commit();
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, Sha256::Of(want));
  ASSERT_TRUE(w.Finish().ok());
  EXPECT_EQ(Object(*d), want);
}

TEST_F(ObjectWriterTest, LargeContentWithHolesIsWhole) {
  ObjectWriter w(fd_.get(), [](const Digest&) { return false; });
  const uint64_t size = (3 << 20) + 17;
  std::string want(size, '\0');
  std::string piece = Content(7, 100000);
  want.replace(size / 2, piece.size(), piece);
  ASSERT_TRUE(w.Begin(size, "sparse").ok());
  ASSERT_TRUE(w.Write(size / 2, piece.data(), piece.size()).ok());  // holes before and after
  auto d = w.Commit();
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, Sha256::Of(want));
  ASSERT_TRUE(w.Finish().ok());
  EXPECT_EQ(Object(*d), want);
  EXPECT_EQ(TempFiles(), 0u);
}

TEST_F(ObjectWriterTest, WritesOutsideTheDeclaredSizeAreRefused) {
  ObjectWriter w(fd_.get(), [](const Digest&) { return false; });
  std::string c = Content(1, 100);
  ASSERT_TRUE(w.Begin(50, "short").ok());
  EXPECT_FALSE(w.Write(0, c.data(), c.size()).ok());
  ASSERT_TRUE(w.Begin(200, "backwards").ok());
  ASSERT_TRUE(w.Write(100, c.data(), 10).ok());
  EXPECT_FALSE(w.Write(50, c.data(), 10).ok());
  w.Cancel();
  EXPECT_TRUE(w.created().empty());
}

TEST_F(ObjectWriterTest, AbortAndCancelLeaveNoTempFiles) {
  std::string big = Content(5, 4 << 20);
  {
    ObjectWriter w(fd_.get(), [](const Digest&) { return false; });
    ASSERT_TRUE(w.Begin(big.size(), "aborted").ok());
    ASSERT_TRUE(w.Write(0, big.data(), 2 << 20).ok());
    w.Abort();
    Put(w, Content(6, 100));
    ASSERT_TRUE(w.Begin(big.size(), "in progress at cancel").ok());
    ASSERT_TRUE(w.Write(0, big.data(), 1 << 20).ok());
    w.Cancel();
    EXPECT_EQ(TempFiles(), 0u);
    // Whatever it created is listed, so the caller can remove it.
    for (const Digest& d : w.created()) EXPECT_TRUE(HasObject(d));
  }
  {
    // Cancel right after many commits: writes not yet started are dropped, none is half-done.
    ObjectWriter w(fd_.get(), [](const Digest&) { return false; }, ObjectWriter::Tuning{1 << 16, 1 << 30});
    std::vector<Digest> all;
    for (int i = 0; i < 500; ++i) all.push_back(Put(w, Content(1000 + i, 3000)));
    all.push_back(Put(w, big));
    w.Cancel();
    EXPECT_EQ(TempFiles(), 0u);
    std::set<Digest> created(w.created().begin(), w.created().end());
    for (const Digest& d : all) EXPECT_EQ(HasObject(d), created.count(d) > 0) << d.str();
  }
  {
    // Destruction without Finish cancels too.
    ObjectWriter w(fd_.get(), [](const Digest&) { return false; });
    ASSERT_TRUE(w.Begin(big.size(), "dropped").ok());
    ASSERT_TRUE(w.Write(0, big.data(), big.size()).ok());
  }
  EXPECT_EQ(TempFiles(), 0u);
}

TEST_F(ObjectWriterTest, BackgroundErrorsReachTheCaller) {
  std::string victim = Content(42, 2000);
  Digest vd = Sha256::Of(victim);
  fs::remove_all(root_ / paths::ObjectShard(static_cast<unsigned char>(vd.raw()[0])));
  ObjectWriter w(fd_.get(), [](const Digest&) { return false; });
  Put(w, Content(41, 2000));
  ASSERT_TRUE(w.Begin(victim.size(), "victim").ok());
  ASSERT_TRUE(w.Write(0, victim.data(), victim.size()).ok());
  ASSERT_TRUE(w.Commit().ok());  // queued: the failure comes later
  Status s = w.Finish();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(paths::Object(vd)), std::string::npos) << s.ToString();
  EXPECT_FALSE(w.Begin(1, "after finish").ok());
}

TEST_F(ObjectWriterTest, CommitFailsEarlyOnceAWriteFailed) {
  std::string victim = Content(43, 2000);
  Digest vd = Sha256::Of(victim);
  fs::remove_all(root_ / paths::ObjectShard(static_cast<unsigned char>(vd.raw()[0])));
  ObjectWriter w(fd_.get(), [](const Digest&) { return false; }, ObjectWriter::Tuning{1, 1 << 30});
  ASSERT_TRUE(w.Begin(victim.size(), "victim").ok());
  ASSERT_TRUE(w.Write(0, victim.data(), victim.size()).ok());
  ASSERT_TRUE(w.Commit().ok());
  // With a queue of one op, the importer waits for the writer: the failure shows within a few
  // more contents instead of at Finish.
  bool failed = false;
  for (int i = 0; i < 1000 && !failed; ++i) {
    std::string c = Content(5000 + i, 100);
    failed = !w.Begin(c.size(), "next").ok() || !w.Write(0, c.data(), c.size()).ok() || !w.Commit().ok();
  }
  EXPECT_TRUE(failed);
  EXPECT_FALSE(w.Finish().ok());
}

TEST_F(ObjectWriterTest, TinyQueueAndFrequentFlushesStillWriteEverything) {
  // Queue of one op (the importer waits on every content) and a syncfs after every write.
  ObjectWriter w(fd_.get(), [](const Digest&) { return false; }, ObjectWriter::Tuning{1, 1});
  std::map<Digest, std::string> want;
  for (int i = 0; i < 300; ++i) {
    std::string c = Content(7000 + i, i % 50 == 0 ? (1 << 20) + 3 * i : 10 + i);
    want.emplace(Put(w, c, 4096), c);
  }
  ASSERT_TRUE(w.Finish().ok());
  EXPECT_EQ(w.created().size(), want.size());
  for (const auto& [d, c] : want) ASSERT_EQ(Object(d), c);
  EXPECT_EQ(TempFiles(), 0u);
}

TEST_F(ObjectWriterTest, DamagedFileInTheWayIsReplacedAGoodOneKept) {
  std::string good = Content(8, 3000), damaged = Content(9, 3000), big = Content(10, 2 << 20);
  Digest gd = Sha256::Of(good), dd = Sha256::Of(damaged), bd = Sha256::Of(big);
  auto plant = [&](const Digest& d, std::string_view bytes) {
    std::ofstream out(root_ / paths::Object(d), std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  };
  plant(gd, good);                         // whole: kept, not counted as created
  plant(dd, damaged.substr(0, 100));       // short, as a crash could leave it: replaced
  plant(bd, big.substr(0, 1 << 20));       // same for a large content
  ObjectWriter w(fd_.get(), [](const Digest&) { return false; });
  Put(w, good);
  Put(w, damaged);
  Put(w, big);
  ASSERT_TRUE(w.Finish().ok());
  EXPECT_EQ(Object(gd), good);
  EXPECT_EQ(Object(dd), damaged);
  EXPECT_EQ(Object(bd), big);
  std::set<Digest> created(w.created().begin(), w.created().end());
  EXPECT_EQ(created, (std::set<Digest>{dd, bd}));
  EXPECT_EQ(TempFiles(), 0u);
}

// A write that fails (a full disk, here every write refused) leaves no short file under the name.
TEST_F(ObjectWriterTest, FailedSmallWriteLeavesNoFileUnderItsName) {
  const std::string content = Content(960, 5000);
  const Digest d = Sha256::Of(content);
  int status = InChild([&] {
    if (!FailSyscallWhenFlagged(SYS_write, 0, ~0u, ENOSPC)) return 20;
    ObjectWriter w(fd_.get(), [](const Digest&) { return false; });
    Put(w, content);
    Status s = w.Finish();
    if (s.ok()) return 21;
    return s.message().find(paths::Object(d)) != std::string::npos ? 0 : 22;
  });
  ASSERT_EQ(status, 0);
  EXPECT_FALSE(HasObject(d));
  EXPECT_EQ(TempFiles(), 0u);
}

// Two imports of the same new contents at once (two processes in the store, or two layers of one
// pull): one may find the other's file while it is still being written. Whatever each finds, every
// name ends up holding the content it is named after.
TEST_F(ObjectWriterTest, ConcurrentWritersOfTheSameContentsLeaveThemWhole) {
  std::vector<std::string> contents;
  for (int i = 0; i < 400; ++i) contents.push_back(Content(3000 + i, 512 + 2311 * (i % 40)));
  contents.push_back(Content(3500, (2 << 20) + 5));
  auto run = [&](bool reverse) {
    ObjectWriter w(fd_.get(), [](const Digest&) { return false; });
    for (size_t k = 0; k < contents.size(); ++k) Put(w, contents[reverse ? contents.size() - 1 - k : k], 4096);
    Status s = w.Finish();
    EXPECT_TRUE(s.ok()) << s.ToString();
  };
  std::thread a(run, false), b(run, true);
  a.join();
  b.join();
  for (const std::string& c : contents) ASSERT_EQ(Object(Sha256::Of(c)), c);
  EXPECT_EQ(TempFiles(), 0u);
}

// A writer killed mid-stream can leave a short file under a good name (a small content is written
// in place); no row names it yet. The next writer of that content must find it damaged and replace
// it. A child process writes 1 MiB contents (the largest written in place) and is killed at
// varying moments until a short file has been seen (about one trial in four leaves one).
TEST_F(ObjectWriterTest, KilledWritersShortFileIsReplacedByTheNextWriter) {
  size_t short_files = 0;
  for (int trial = 0; trial < 100 && short_files == 0; ++trial) {
    int progress[2];
    ASSERT_EQ(::pipe(progress), 0);
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    auto content = [&](uint64_t i) {
      std::string c = Content(trial, ObjectWriter::kInMemoryMax);
      std::memcpy(c.data(), &i, sizeof i);  // a new content, cheaply
      return c;
    };
    if (child == 0) {
      ::close(progress[0]);
      ObjectWriter w(fd_.get(), [](const Digest&) { return false; });
      for (uint64_t i = 0;; ++i) {
        Put(w, content(i), ObjectWriter::kInMemoryMax);
        if (::write(progress[1], "x", 1) != 1) ::_exit(1);
      }
    }
    ::close(progress[1]);
    // Once a few contents are committed, kill it wherever it is.
    char buf[64];
    size_t got = 0;
    while (got < 3) {
      ssize_t n = ::read(progress[0], buf, sizeof buf);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(97 * (trial % 30)));
    ::kill(child, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    for (ssize_t n; (n = ::read(progress[0], buf, sizeof buf)) > 0;) got += static_cast<size_t>(n);
    ::close(progress[0]);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the child ended by itself";
    ASSERT_GE(got, 3u) << "the child stopped early";

    // Its contents, one past the last committed (the op it queued before being killed).
    std::map<Digest, std::string> written;
    for (uint64_t i = 0; i <= got; ++i) {
      std::string c = content(i);
      written.emplace(Sha256::Of(c), std::move(c));
    }
    std::set<Digest> damaged;
    for (const auto& [d, c] : written) {
      if (HasObject(d) && Object(d) != c) damaged.insert(d);
    }
    short_files += damaged.size();
    ObjectWriter again(fd_.get(), [](const Digest&) { return false; });
    for (const auto& [d, c] : written) Put(again, c, c.size());
    ASSERT_TRUE(again.Finish().ok());
    std::set<Digest> created(again.created().begin(), again.created().end());
    for (const auto& [d, c] : written) {
      ASSERT_EQ(Object(d), c) << "trial " << trial;
      if (damaged.count(d)) {
        EXPECT_TRUE(created.count(d)) << "a replaced file counts as created";
      }
    }
    EXPECT_EQ(TempFiles(), 0u);
    for (const auto& [d, c] : written) fs::remove(root_ / paths::Object(d));  // 1 MiB each, on tmpfs
  }
  EXPECT_GT(short_files, 0u) << "no trial left a short file: the replacement was not exercised";
}

}  // namespace
}  // namespace layerstore
