// Store tests: layer import/export against the tar corpus (tests/testutil/mktarcorpus.py), dedup,
// limits, expectations, image archives (tests/testutil/mkimage.py), removal and prune, save/load,
// fsck and the format file. Every test gets a fresh store root under a temp dir.
#include "layerstore/store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "layerstore/archive.h"
#include "layerstore/io.h"
#include "layerstore/reference.h"
#include "layerstore/sha256.h"
#include "lmdb_env.h"
#include "schema.h"
#include "testutil/tar_builder.h"
#include "testutil/temp_base.h"

namespace layerstore {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Helpers


// mkdtemp under TempBase(); empty on failure.
std::string MakeTempDir(const std::string& prefix) {
  std::string tmpl = TempBase() + "/" + prefix + ".XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) return "";
  return tmpl;
}

fs::path RepoRoot() {
  fs::path file(__FILE__);  // <repo>/tests/layerstore/store_test.cc
  if (file.is_relative()) file = fs::absolute(file);
  return file.parent_path().parent_path().parent_path();
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const fs::path& path, std::string_view data) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  ASSERT_TRUE(out.good()) << path;
}

// Regular files below `dir`, recursively.
std::vector<fs::path> FilesUnder(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(dir, ec); it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file()) out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

size_t CountEntries(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return 0;
  return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

// Runs a shell command; returns its exit status and stdout.
std::pair<int, std::string> RunCommand(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return {-1, "popen failed"};
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = ::pclose(p);
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
}

Digest MustDigest(std::string_view text) {
  auto d = Digest::Parse(text);
  EXPECT_TRUE(d.ok()) << text;
  return d.ok() ? *d : Digest();
}

Reference MustRef(std::string_view text) {
  auto r = ParseReference(text);
  EXPECT_TRUE(r.ok()) << text;
  return r.ok() ? *r : Reference();
}

class StringSink final : public ByteSink {
 public:
  Status Write(const void* data, size_t size) override {
    out.append(static_cast<const char*>(data), size);
    return {};
  }
  std::string out;
};

// Deterministic content of `size` bytes.
std::string Content(const std::string& seed, size_t size) {
  std::string out;
  Digest d = Sha256::Of(seed);
  while (out.size() < size) {
    out.append(d.raw());
    d = Sha256::Of(d.raw());
  }
  out.resize(size);
  return out;
}

std::vector<Entry> EntriesOf(Store& store, const Digest& diff_id) {
  std::vector<Entry> out;
  Status s = store.ForEachEntry(diff_id, [&](const Entry& e) {
    out.push_back(e);
    return true;
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

const Entry* FindEntry(const std::vector<Entry>& entries, const std::string& path) {
  for (const Entry& e : entries) {
    if (e.path == path) return &e;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Fixture

class StoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string dir = MakeTempDir("store_test_corpus");
    ASSERT_FALSE(dir.empty());
    corpus_dir_ = new fs::path(dir);
    fs::path script = RepoRoot() / "tests/testutil/mktarcorpus.py";
    auto [rc, out] = RunCommand("python3 " + script.string() + " " + corpus_dir_->string());
    ASSERT_EQ(rc, 0) << out;
    expect_ = new json(json::parse(ReadFile(*corpus_dir_ / "expect.json")));
  }
  static void TearDownTestSuite() {
    if (corpus_dir_) fs::remove_all(*corpus_dir_);
    delete corpus_dir_;
    delete expect_;
    corpus_dir_ = nullptr;
    expect_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(expect_, nullptr) << "the corpus could not be generated";
    std::string dir = MakeTempDir("store_test");
    ASSERT_FALSE(dir.empty());
    tmp_ = dir;
    root_ = tmp_ / "store";
    store_ = OpenStore(root_);
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }

  static std::unique_ptr<Store> OpenStore(const fs::path& root, ImportLimits limits = {}) {
    StoreOptions options;
    options.root = root.string();
    options.limits = limits;
    auto store = Store::Open(options);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(*store) : nullptr;
  }

  static fs::path Corpus(const std::string& name) { return *corpus_dir_ / name; }

  static Result<LayerInfo> ImportFile(Store& store, const fs::path& path, const LayerExpectation& expect = {}) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::FromErrno("open " + path.string(), errno);
    FdSource source(fd, path.filename().string());
    Result<LayerInfo> info = Status::Unavailable("no lease");
    {
      auto lease = store.AcquireWriteLease();
      if (!lease.ok()) {
        ::close(fd);
        return lease.status();
      }
      info = store.ImportLayer(source, expect, nullptr);
    }  // the lease is released here; abandoned objects of a failed import go with it
    ::close(fd);
    return info;
  }

  static Result<LayerInfo> ImportBytes(Store& store, std::string tar, const LayerExpectation& expect = {}) {
    StringSource source(std::move(tar));
    auto lease = store.AcquireWriteLease();
    if (!lease.ok()) return lease.status();
    return store.ImportLayer(source, expect, nullptr);
  }

  static std::string Export(Store& store, const Digest& diff_id) {
    StringSink sink;
    Status s = store.ExportLayer(diff_id, sink, nullptr);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return sink.out;
  }

  // A config naming `diff_ids`; `salt` makes distinct images of the same layers.
  static std::string Config(const std::vector<Digest>& diff_ids, const std::string& salt = "") {
    json ids = json::array();
    for (const Digest& d : diff_ids) ids.push_back(d.str());
    json config = {{"architecture", "amd64"},
                   {"os", "linux"},
                   {"config", {{"Labels", {{"salt", salt}}}}},
                   {"rootfs", {{"type", "layers"}, {"diff_ids", ids}}}};
    return config.dump();
  }

  static fs::path ObjectFileIn(const fs::path& root, const Digest& d) {
    std::string hex = d.hex();
    return root / "objects" / hex.substr(0, 2) / hex.substr(2);
  }
  fs::path ObjectFile(const Digest& d) const { return ObjectFileIn(root_, d); }
  size_t ObjectFileCount() const { return FilesUnder(root_ / "objects").size(); }

  // Asserts that nothing of failed imports remains in the store.
  void ExpectNothingStored(const std::string& context) {
    SCOPED_TRACE(context);
    EXPECT_EQ(ObjectFileCount(), 0u) << "object files left under objects/";
    EXPECT_EQ(CountEntries(root_ / "tmp"), 0u) << "files left in tmp/";
    EXPECT_EQ(CountEntries(root_ / "layers"), 0u) << "layer directories left";
    auto du = store_->GetDiskUsage();
    ASSERT_TRUE(du.ok());
    EXPECT_EQ(du->layers, 0u);
    EXPECT_EQ(du->objects, 0u);
    auto report = store_->Fsck({.repair = false, .verify_content = false});
    ASSERT_TRUE(report.ok());
    EXPECT_TRUE(report->consistent());
    EXPECT_TRUE(report->repaired.empty()) << report->repaired.front();
  }

  // Builds an image archive with mkimage.py; returns the image ID it prints and fills *summary.
  Digest MkImage(const std::string& args, json* summary = nullptr) {
    fs::path summary_path = tmp_ / ("summary-" + std::to_string(mkimage_runs_++) + ".json");
    fs::path script = RepoRoot() / "tests/testutil/mkimage.py";
    auto [rc, out] = RunCommand("python3 " + script.string() + " " + args + " --summary " + summary_path.string());
    EXPECT_EQ(rc, 0) << args << "\n" << out;
    json s = json::parse(ReadFile(summary_path), nullptr, false);
    EXPECT_FALSE(s.is_discarded()) << out;
    if (summary) *summary = s;
    EXPECT_NE(out.find(s.value("image_id", "?")), std::string::npos) << out;
    return MustDigest(s.value("image_id", ""));
  }

  static std::vector<Digest> DiffIds(const json& summary) {
    std::vector<Digest> out;
    for (const auto& d : summary["diff_ids"]) out.push_back(MustDigest(d.get<std::string>()));
    return out;
  }

  static inline fs::path* corpus_dir_ = nullptr;
  static inline json* expect_ = nullptr;

  fs::path tmp_;
  fs::path root_;
  std::unique_ptr<Store> store_;
  int mkimage_runs_ = 0;
};

// ---------------------------------------------------------------------------------------------
// The corpus: good layers

EntryType ExpectedType(const json& member) {
  std::string type = member["type"];
  std::string name = member["name"];
  std::string base = name.substr(name.rfind('/') == std::string::npos ? 0 : name.rfind('/') + 1);
  if (type == "file" && base == ".wh..wh..opq") return EntryType::kOpaque;
  if (type == "file" && base.rfind(".wh.", 0) == 0) return EntryType::kWhiteout;
  if (type == "file") return EntryType::kRegular;
  if (type == "dir") return EntryType::kDirectory;
  if (type == "symlink") return EntryType::kSymlink;
  if (type == "hardlink") return EntryType::kHardlink;
  if (type == "char") return EntryType::kCharDevice;
  if (type == "block") return EntryType::kBlockDevice;
  if (type == "fifo") return EntryType::kFifo;
  ADD_FAILURE() << "unknown member type " << type;
  return EntryType::kRegular;
}

std::string ExpectedPath(const json& member) {
  std::string name = member["name"];
  while (name.size() > 1 && name.back() == '/') name.pop_back();
  size_t slash = name.rfind('/');
  std::string parent = slash == std::string::npos ? "." : name.substr(0, slash);
  std::string base = slash == std::string::npos ? name : name.substr(slash + 1);
  if (base == ".wh..wh..opq") return parent;
  if (base.rfind(".wh.", 0) == 0) {
    std::string hidden = base.substr(4);
    return parent == "." ? hidden : parent + "/" + hidden;
  }
  return name;
}

std::string Hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

TEST_F(StoreTest, CorpusGoodLayersImportAndExportByteIdentical) {
  int checked = 0;
  for (const auto& [name, want] : expect_->items()) {
    if (want["expect"] != "ok") continue;
    SCOPED_TRACE(name);
    ++checked;
    // A store per file: several corpus files share a diff_id (the same tar, compressed differently).
    const fs::path root = tmp_ / ("store-" + name);
    std::unique_ptr<Store> store = OpenStore(root);
    ASSERT_NE(store, nullptr);
    std::string stored = ReadFile(Corpus(name));
    auto info = ImportFile(*store, Corpus(name));
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    Digest diff_id = MustDigest(want["diff_id"].get<std::string>());
    EXPECT_EQ(info->diff_id, diff_id);
    EXPECT_EQ(info->entry_count, want["entries"].get<uint64_t>());
    EXPECT_EQ(info->compression, want["compression"].get<std::string>());
    EXPECT_EQ(info->blob_digest, MustDigest(want["sha256"].get<std::string>()));
    EXPECT_EQ(info->blob_size, stored.size());
    EXPECT_EQ(info->refcount, 0u);

    auto found = store->FindLayer(diff_id);
    ASSERT_TRUE(found.ok());
    ASSERT_TRUE(found->has_value());
    EXPECT_EQ((*found)->entry_count, info->entry_count);
    EXPECT_EQ((*found)->tar_size, info->tar_size);

    std::string exported = Export(*store, diff_id);
    EXPECT_EQ(exported.size(), info->tar_size);
    EXPECT_EQ(Sha256::Of(exported), diff_id);
    if (want["compression"] == "none") {
      EXPECT_TRUE(exported == stored) << "exported tar differs from the input";
    }

    // Entries as Python's tarfile describes the members, in tar order.
    std::vector<Entry> entries = EntriesOf(*store, diff_id);
    const json& members = want["members"];
    ASSERT_EQ(entries.size(), members.size());
    uint64_t content_size = 0;
    std::map<std::string, const Entry*> by_path;
    for (size_t i = 0; i < entries.size(); ++i) {
      const Entry& e = entries[i];
      const json& m = members[i];
      SCOPED_TRACE(m["name"].get<std::string>());
      EXPECT_EQ(e.type, ExpectedType(m));
      EXPECT_EQ(e.path, ExpectedPath(m));
      EXPECT_EQ(e.mode, m["mode"].get<uint32_t>());
      EXPECT_EQ(e.uid, m["uid"].get<uint32_t>());
      EXPECT_EQ(e.gid, m["gid"].get<uint32_t>());
      if (m["mtime"].is_number_integer()) {
        EXPECT_EQ(e.mtime_sec, m["mtime"].get<int64_t>());
        EXPECT_EQ(e.mtime_nsec, 0u);
      }
      if (m.contains("mtime_pax")) {
        // "1700000000.123456789": seconds and nanoseconds; "-1.25" is -2 s + 0.75e9 ns (which
        // libarchive alone reads as -1 s + 0.25e9 ns).
        std::string pax = m["mtime_pax"];
        const bool negative = pax[0] == '-';
        size_t dot = pax.find('.');
        int64_t whole = std::stoll(pax.substr(negative ? 1 : 0, dot == std::string::npos ? dot : dot - (negative ? 1 : 0)));
        std::string frac = dot == std::string::npos ? "" : pax.substr(dot + 1);
        frac.resize(9, '0');
        const int64_t total_ns = (negative ? -1 : 1) * (whole * 1000000000 + static_cast<int64_t>(std::stoul(frac)));
        const int64_t sec = total_ns >= 0 ? total_ns / 1000000000 : -((-total_ns + 999999999) / 1000000000);
        EXPECT_EQ(e.mtime_sec, sec);
        EXPECT_EQ(e.mtime_nsec, static_cast<uint32_t>(total_ns - sec * 1000000000));
      }
      if (e.type == EntryType::kRegular) {
        EXPECT_EQ(e.size, m["size"].get<uint64_t>());
        EXPECT_EQ(e.object.hex(), m["sha256"].get<std::string>());
        EXPECT_EQ(e.sparse, m.value("sparse", false));
        content_size += e.size;
        struct stat st;
        ASSERT_EQ(::stat(ObjectFileIn(root, e.object).c_str(), &st), 0) << "object file missing";
        EXPECT_EQ(static_cast<uint64_t>(st.st_size), e.size);
      }
      if (e.type == EntryType::kSymlink || e.type == EntryType::kHardlink) {
        std::string link = m["linkname"];
        EXPECT_EQ(e.link_target, link);
      }
      if (e.type == EntryType::kSymlink) content_size += e.link_target.size();
      if (e.type == EntryType::kHardlink) {
        auto target = by_path.find(e.link_target);
        ASSERT_NE(target, by_path.end());
        EXPECT_EQ(e.object, target->second->object);
        EXPECT_EQ(e.size, target->second->size);
        content_size += e.size;
      }
      if (e.type == EntryType::kCharDevice || e.type == EntryType::kBlockDevice) {
        EXPECT_EQ(e.dev_major, m["devmajor"].get<uint32_t>());
        EXPECT_EQ(e.dev_minor, m["devminor"].get<uint32_t>());
      }
      std::map<std::string, std::string> xattrs;
      for (const auto& [k, v] : e.xattrs) xattrs[k] = Hex(v);
      std::map<std::string, std::string> want_xattrs;
      if (m.contains("xattrs_hex")) {
        for (const auto& [k, v] : m["xattrs_hex"].items()) want_xattrs[k] = v.get<std::string>();
      }
      EXPECT_EQ(xattrs, want_xattrs);
      if (e.type != EntryType::kWhiteout && e.type != EntryType::kOpaque) by_path[e.path] = &e;
    }
    EXPECT_EQ(info->content_size, content_size);
    // Nothing left behind in tmp/.
    EXPECT_EQ(FilesUnder(root / "tmp").size(), 0u);

    // The records are consistent: with an image naming the layer, fsck finds nothing to say.
    auto image = store->CreateImage({Config({diff_id}), {}, {}});
    ASSERT_TRUE(image.ok()) << image.status().ToString();
    auto report = store->Fsck({.repair = false, .verify_content = true});
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_TRUE(report->problems.empty()) << report->problems.front();
    EXPECT_TRUE(report->repaired.empty()) << report->repaired.front();
  }
  EXPECT_GE(checked, 14);
}

TEST_F(StoreTest, CorpusBadLayersAreRejectedAndLeaveNothing) {
  int checked = 0;
  for (const auto& [name, want] : expect_->items()) {
    if (want["expect"] != "reject") continue;
    SCOPED_TRACE(name);
    ++checked;
    auto info = ImportFile(*store_, Corpus(name));
    ASSERT_FALSE(info.ok()) << "imported as " << info->diff_id.str();
    EXPECT_NE(info.status().code(), Code::kOk);
    if (want["error_contains"].is_string()) {
      std::string needle = want["error_contains"];
      EXPECT_NE(info.status().message().find(needle), std::string::npos)
          << "message: " << info.status().message() << "\nwanted: " << needle;
    }
    // The message names the stream.
    EXPECT_NE(info.status().message().find(name), std::string::npos) << info.status().message();
    ExpectNothingStored(name);
  }
  EXPECT_GE(checked, 13);
}

// ---------------------------------------------------------------------------------------------
// Entry kinds

TEST_F(StoreTest, WhiteoutsAndOpaqueMarkersAreRecorded) {
  auto info = ImportFile(*store_, Corpus("ok-whiteout.tar"));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  std::vector<Entry> entries = EntriesOf(*store_, info->diff_id);
  std::vector<std::pair<EntryType, std::string>> got;
  for (const Entry& e : entries) got.emplace_back(e.type, e.path);
  std::vector<std::pair<EntryType, std::string>> want = {
      {EntryType::kWhiteout, "foo"},          {EntryType::kDirectory, "dir"},
      {EntryType::kOpaque, "dir"},            {EntryType::kRegular, "dir/new-file"},
      {EntryType::kDirectory, "other"},       {EntryType::kWhiteout, "other/gone-dir"},
  };
  EXPECT_EQ(got, want);
  for (const Entry& e : entries) {
    if (e.type == EntryType::kWhiteout || e.type == EntryType::kOpaque) {
      EXPECT_EQ(e.size, 0u);
      EXPECT_TRUE(e.object.empty());
    }
  }
  // Only dir/new-file has content: one object.
  EXPECT_EQ(ObjectFileCount(), 1u);
}

TEST_F(StoreTest, HardlinksShareTheTargetsObject) {
  auto info = ImportFile(*store_, Corpus("ok-basic.tar"));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  std::vector<Entry> entries = EntriesOf(*store_, info->diff_id);
  const Entry* tool = FindEntry(entries, "bin/tool");
  const Entry* hard = FindEntry(entries, "bin/tool-hard");
  const Entry* sym = FindEntry(entries, "bin/tool-link");
  ASSERT_TRUE(tool && hard && sym);
  EXPECT_EQ(tool->type, EntryType::kRegular);
  EXPECT_EQ(hard->type, EntryType::kHardlink);
  EXPECT_EQ(hard->link_target, "bin/tool");
  EXPECT_EQ(hard->object, tool->object);
  EXPECT_FALSE(hard->object.empty());
  EXPECT_EQ(hard->size, tool->size);
  EXPECT_EQ(tool->object, Sha256::Of("#!/bin/sh\necho tool\n"));
  EXPECT_EQ(sym->type, EntryType::kSymlink);
  EXPECT_EQ(sym->link_target, "tool");
  EXPECT_EQ(tool->uid, 1000u);
  EXPECT_EQ(tool->mode, 0755u);
  // Three distinct contents (hostname, passwd, tool): the hardlink adds no object file.
  EXPECT_EQ(ObjectFileCount(), 3u);
  struct stat st;
  ASSERT_EQ(::stat(ObjectFile(tool->object).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0444u) << "objects are read-only";
  EXPECT_EQ(ReadFile(ObjectFile(tool->object)), "#!/bin/sh\necho tool\n");

  // The hardlink counts as a reference of the object: the record says 2.
  store_.reset();
  auto env = lmdb::Env::Open((root_ / "meta").string(), size_t{1} << 30);
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  auto txn = lmdb::Txn::Begin(**env, false);
  ASSERT_TRUE(txn.ok());
  auto tables = Tables::Open(*txn);
  ASSERT_TRUE(tables.ok());
  auto row = txn->Get(tables->objects, tool->object.raw());
  ASSERT_TRUE(row.ok() && row->has_value());
  auto rec = DecodeObject(**row);
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->refcount, 2u);
  EXPECT_EQ(rec->size, tool->size);
}

TEST_F(StoreTest, XattrsAreRecordedWithBinaryValues) {
  auto info = ImportFile(*store_, Corpus("ok-xattrs.tar"));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  std::vector<Entry> entries = EntriesOf(*store_, info->diff_id);
  auto xattrs_of = [&](const std::string& path) {
    std::map<std::string, std::string> out;
    const Entry* e = FindEntry(entries, path);
    EXPECT_NE(e, nullptr) << path;
    if (e) out.insert(e->xattrs.begin(), e->xattrs.end());
    return out;
  };
  std::map<std::string, std::string> ping = xattrs_of("bin/ping");
  EXPECT_EQ(ping["security.capability"],
            std::string("\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20));
  EXPECT_EQ(ping["user.foo"], "bar");
  EXPECT_EQ(ping.size(), 2u);
  std::map<std::string, std::string> data = xattrs_of("data");
  EXPECT_EQ(data["user.binary"], std::string("\x00\x01\xff\xfe\n=", 6));
  std::map<std::string, std::string> dirx = xattrs_of("dirx");
  EXPECT_EQ(dirx["user.dir"], "on a dir");
  EXPECT_TRUE(xattrs_of("bin").empty());
}

TEST_F(StoreTest, AnXattrRecordedTwiceIsOneXattr) {
  // As bsdtar writes them: SCHILY.xattr.NAME with the raw value, LIBARCHIVE.xattr.NAME base64.
  std::string tar = TarBuilder()
                        .Pax({{"SCHILY.xattr.user.twice", "one"},
                              {"LIBARCHIVE.xattr.user.twice", "b25l"},
                              {"SCHILY.xattr.user.once", "1"}})
                        .File("f", "data")
                        .Finish();
  auto info = ImportBytes(*store_, tar);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  std::vector<Entry> entries = EntriesOf(*store_, info->diff_id);
  const Entry* f = FindEntry(entries, "f");
  ASSERT_NE(f, nullptr);
  std::vector<std::pair<std::string, std::string>> want = {{"user.twice", "one"}, {"user.once", "1"}};
  std::vector<std::pair<std::string, std::string>> got(f->xattrs.begin(), f->xattrs.end());
  std::sort(want.begin(), want.end());
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, want);
  EXPECT_EQ(Export(*store_, info->diff_id), tar);  // the tar itself is kept as it was
}

TEST_F(StoreTest, DevicesAndFifosAreRecorded) {
  auto info = ImportFile(*store_, Corpus("ok-devices.tar"));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  std::vector<Entry> entries = EntriesOf(*store_, info->diff_id);
  const Entry* null_dev = FindEntry(entries, "dev/null");
  const Entry* loop = FindEntry(entries, "dev/loop0");
  const Entry* fifo = FindEntry(entries, "dev/fifo");
  ASSERT_TRUE(null_dev && loop && fifo);
  EXPECT_EQ(null_dev->type, EntryType::kCharDevice);
  EXPECT_EQ(null_dev->dev_major, 1u);
  EXPECT_EQ(null_dev->dev_minor, 3u);
  EXPECT_EQ(null_dev->mode, 0666u);
  EXPECT_EQ(loop->type, EntryType::kBlockDevice);
  EXPECT_EQ(loop->dev_major, 7u);
  EXPECT_EQ(loop->dev_minor, 0u);
  EXPECT_EQ(loop->gid, 6u);
  EXPECT_EQ(fifo->type, EntryType::kFifo);
  EXPECT_EQ(fifo->mode, 0600u);
  EXPECT_EQ(ObjectFileCount(), 0u);
}

TEST_F(StoreTest, SparseFilesAreRecordedWithTheirFullContent) {
  int checked = 0;
  for (const char* name : {"ok-sparse.tar", "ok-sparse-pax.tar"}) {
    if (!expect_->contains(name)) continue;  // GNU tar could not make it here
    SCOPED_TRACE(name);
    ++checked;
    std::unique_ptr<Store> store = OpenStore(tmp_ / name);
    fs::path root = tmp_ / name;
    auto info = ImportFile(*store, Corpus(name));
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    std::vector<Entry> entries = EntriesOf(*store, info->diff_id);
    ASSERT_EQ(entries.size(), 1u);
    const Entry& e = entries[0];
    EXPECT_EQ(e.path, "sparse.bin");
    EXPECT_EQ(e.type, EntryType::kRegular);
    EXPECT_TRUE(e.sparse);
    EXPECT_EQ(e.size, 1u << 20);
    EXPECT_EQ(e.object.hex(), (*expect_)[name]["sparse_file_sha256"].get<std::string>());
    std::string content = ReadFile(ObjectFileIn(root, e.object));
    ASSERT_EQ(content.size(), 1u << 20);
    std::string want(1 << 20, '\0');
    std::fill_n(want.begin(), 4096, 'A');
    std::fill_n(want.begin() + (512 << 10), 8192, 'B');
    std::fill_n(want.begin() + (1 << 20) - 4096, 4096, 'C');
    EXPECT_TRUE(content == want) << "object content differs from the logical file (holes must read as zeros)";
    EXPECT_EQ(Sha256::Of(Export(*store, info->diff_id)), info->diff_id);
  }
  if (checked == 0) GTEST_SKIP() << "the corpus has no sparse tars (GNU tar missing?)";
}

// ---------------------------------------------------------------------------------------------
// Dedup

TEST_F(StoreTest, SharedContentsAreStoredOnce) {
  std::string shared1 = Content("shared-1", 100000);
  std::string shared2 = Content("shared-2", 3000);
  std::string big_shared = Content("big", (2 << 20) + 5);  // through the temp-file path
  std::string only1 = Content("only-1", 5000);
  std::string only2 = Content("only-2", 7000);
  std::string tar1 = TarBuilder()
                         .Dir("a")
                         .File("a/s1", shared1)
                         .File("a/s2", shared2)
                         .File("a/big", big_shared)
                         .File("a/only", only1)
                         .File("a/s1-again", shared1)  // duplicate within one layer
                         .Finish();
  std::string tar2 = TarBuilder()
                         .Dir("b")
                         .File("b/copy-of-s1", shared1)
                         .File("b/copy-of-s2", shared2)
                         .File("b/big", big_shared)
                         .File("b/only", only2)
                         .Finish();
  auto l1 = ImportBytes(*store_, tar1);
  ASSERT_TRUE(l1.ok()) << l1.status().ToString();
  EXPECT_EQ(l1->new_bytes, shared1.size() + shared2.size() + big_shared.size() + only1.size());
  EXPECT_EQ(ObjectFileCount(), 4u);
  auto l2 = ImportBytes(*store_, tar2);
  ASSERT_TRUE(l2.ok()) << l2.status().ToString();
  EXPECT_NE(l1->diff_id, l2->diff_id);
  EXPECT_EQ(l2->new_bytes, only2.size()) << "only the second layer's own content is new";
  EXPECT_EQ(ObjectFileCount(), 5u) << "each distinct content once";
  for (const std::string* c : {&shared1, &shared2, &big_shared, &only1, &only2}) {
    EXPECT_TRUE(ReadFile(ObjectFile(Sha256::Of(*c))) == *c);
  }

  auto du = store_->GetDiskUsage();
  ASSERT_TRUE(du.ok());
  EXPECT_EQ(du->layers, 2u);
  EXPECT_EQ(du->objects, 5u);
  uint64_t distinct = shared1.size() + shared2.size() + big_shared.size() + only1.size() + only2.size();
  EXPECT_EQ(du->object_bytes, distinct);
  EXPECT_EQ(du->layer_bytes, l1->content_size + l2->content_size);
  EXPECT_LT(du->object_bytes, du->layer_bytes);
  EXPECT_GT(du->disk_bytes, 0u);

  // Both layers still regenerate byte for byte.
  EXPECT_TRUE(Export(*store_, l1->diff_id) == tar1);
  EXPECT_TRUE(Export(*store_, l2->diff_id) == tar2);
  // Re-importing a layer adds nothing.
  auto again = ImportBytes(*store_, tar2);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->diff_id, l2->diff_id);
  EXPECT_EQ(ObjectFileCount(), 5u);
  EXPECT_EQ(CountEntries(root_ / "tmp"), 0u);
}

// ---------------------------------------------------------------------------------------------
// Limits and expectations

TEST_F(StoreTest, MaxEntriesLimit) {
  ImportLimits limits;
  limits.max_entries = 3;
  store_.reset();  // one LMDB environment per file per process: close before reopening
  store_ = OpenStore(root_, limits);
  auto info = ImportFile(*store_, Corpus("ok-basic.tar"));
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), Code::kResourceExhausted);
  EXPECT_NE(info.status().message().find("--max-entries"), std::string::npos) << info.status().message();
  EXPECT_NE(info.status().message().find("3"), std::string::npos) << info.status().message();
  ExpectNothingStored("max_entries");
  limits.max_entries = 8;  // exactly the layer's entries: fine
  store_.reset();  // one LMDB environment per file per process: close before reopening
  store_ = OpenStore(root_, limits);
  EXPECT_TRUE(ImportFile(*store_, Corpus("ok-basic.tar")).ok());
}

TEST_F(StoreTest, MaxFileBytesLimit) {
  ImportLimits limits;
  limits.max_file_bytes = 1000;
  store_.reset();  // one LMDB environment per file per process: close before reopening
  store_ = OpenStore(root_, limits);
  std::string tar = TarBuilder().File("small", "tiny").File("large", Content("x", 1001)).Finish();
  auto info = ImportBytes(*store_, tar);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), Code::kResourceExhausted);
  EXPECT_NE(info.status().message().find("--max-file-size"), std::string::npos) << info.status().message();
  EXPECT_NE(info.status().message().find("large"), std::string::npos) << info.status().message();
  ExpectNothingStored("max_file_bytes");
  std::string ok_tar = TarBuilder().File("small", "tiny").File("large", Content("x", 1000)).Finish();
  EXPECT_TRUE(ImportBytes(*store_, ok_tar).ok());
}

TEST_F(StoreTest, MaxLayerBytesLimit) {
  ImportLimits limits;
  limits.max_layer_bytes = 4096;
  store_.reset();  // one LMDB environment per file per process: close before reopening
  store_ = OpenStore(root_, limits);
  auto info = ImportFile(*store_, Corpus("ok-basic.tar"));  // 6656 bytes uncompressed
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), Code::kResourceExhausted);
  EXPECT_NE(info.status().message().find("--max-layer-size"), std::string::npos) << info.status().message();
  ExpectNothingStored("max_layer_bytes uncompressed");
  // The limit is on uncompressed bytes: the 318-byte gzip of the same tar is refused too.
  auto gz = ImportFile(*store_, Corpus("ok-gzip.tar.gz"));
  ASSERT_FALSE(gz.ok());
  EXPECT_EQ(gz.status().code(), Code::kResourceExhausted);
  EXPECT_NE(gz.status().message().find("--max-layer-size"), std::string::npos) << gz.status().message();
  ExpectNothingStored("max_layer_bytes gzip");
}

TEST_F(StoreTest, ExpectationMismatchesStoreNothing) {
  const json& basic = (*expect_)["ok-gzip.tar.gz"];
  Digest diff_id = MustDigest(basic["diff_id"].get<std::string>());
  Digest blob = MustDigest(basic["sha256"].get<std::string>());
  uint64_t size = fs::file_size(Corpus("ok-gzip.tar.gz"));
  Digest wrong = Sha256::Of("wrong");

  LayerExpectation bad_diff;
  bad_diff.diff_id = wrong;
  auto r1 = ImportFile(*store_, Corpus("ok-gzip.tar.gz"), bad_diff);
  ASSERT_FALSE(r1.ok());
  EXPECT_EQ(r1.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r1.status().message().find("diff_id mismatch"), std::string::npos) << r1.status().message();
  EXPECT_NE(r1.status().message().find(diff_id.str()), std::string::npos) << r1.status().message();
  ExpectNothingStored("wrong diff_id");

  LayerExpectation bad_blob;
  bad_blob.blob_digest = wrong;
  auto r2 = ImportFile(*store_, Corpus("ok-gzip.tar.gz"), bad_blob);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r2.status().message().find("digest mismatch"), std::string::npos) << r2.status().message();
  EXPECT_NE(r2.status().message().find(blob.str()), std::string::npos) << r2.status().message();
  ExpectNothingStored("wrong blob digest");

  LayerExpectation bad_size;
  bad_size.blob_size = size + 1;
  auto r3 = ImportFile(*store_, Corpus("ok-gzip.tar.gz"), bad_size);
  ASSERT_FALSE(r3.ok());
  EXPECT_EQ(r3.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r3.status().message().find("size mismatch"), std::string::npos) << r3.status().message();
  ExpectNothingStored("wrong size");

  // All three right: imported.
  LayerExpectation right;
  right.diff_id = diff_id;
  right.blob_digest = blob;
  right.blob_size = size;
  auto ok = ImportFile(*store_, Corpus("ok-gzip.tar.gz"), right);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->diff_id, diff_id);
  EXPECT_EQ(ok->blob_digest, blob);
}

TEST_F(StoreTest, FailureInsideALargeFileLeavesNothing) {
  // The first file is published as an object before the failure; the second (> 1 MiB) streams
  // through a temp file. The tar ends in the middle of the second file's data.
  std::string big = Content("big-truncated", 3 << 20);
  std::string tar = TarBuilder().File("first", Content("first", 10000)).File("big", big).Finish();
  tar.resize(tar.size() - 1024 - (1 << 20));
  auto info = ImportBytes(*store_, tar);
  ASSERT_FALSE(info.ok());
  EXPECT_NE(info.status().message().find("big"), std::string::npos) << info.status().message();
  ExpectNothingStored("truncated inside a large file");
}

TEST_F(StoreTest, ExportOfManyObjectsIsExactAndNamesAMissingOne) {
  // Enough objects for the export's prefetch threads, and a large one among them.
  TarBuilder builder;
  for (int i = 0; i < 300; ++i) {
    builder.File("d" + std::to_string(i % 7) + "/f" + std::to_string(i), Content("many-" + std::to_string(i), 100 + i * 37));
    if (i == 150) builder.File("big", Content("many-big", 3 << 20));
  }
  std::string tar = builder.Finish();
  auto info = ImportBytes(*store_, tar);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(Export(*store_, info->diff_id), tar);

  const Digest gone = Sha256::Of(Content("many-200", 100 + 200 * 37));
  ASSERT_EQ(::unlink(ObjectFile(gone).c_str()), 0);
  StringSink sink;
  Status s = store_->ExportLayer(info->diff_id, sink, nullptr);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(gone.str()), std::string::npos) << s.ToString();
}

TEST_F(StoreTest, AbandonedObjectsGoWhenTheLastLeaseIsReleased) {
  std::string tar = TarBuilder().File("kept-until-release", Content("abandoned", 777)).Finish();
  tar.resize(tar.size() - 1024 + 100);  // a broken header after the file
  tar.replace(tar.size() - 100, 100, std::string(100, 'x'));
  const Digest d = Sha256::Of(Content("abandoned", 777));
  {
    auto outer = store_->AcquireWriteLease();
    ASSERT_TRUE(outer.ok());
    auto info = ImportBytes(*store_, tar);  // takes and releases its own, inner lease
    ASSERT_FALSE(info.ok());
    // Another lease is still held: another import might be about to record the file.
    EXPECT_TRUE(fs::exists(ObjectFile(d)));
  }
  EXPECT_FALSE(fs::exists(ObjectFile(d)));
  ExpectNothingStored("after the outer lease");
}

TEST_F(StoreTest, ImportWithoutLeaseIsRefused) {
  StringSource source(ReadFile(Corpus("ok-basic.tar")));
  auto info = store_->ImportLayer(source, {}, nullptr);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), Code::kFailedPrecondition);
}

// ---------------------------------------------------------------------------------------------
// Format file

TEST_F(StoreTest, NewerFormatIsRefused) {
  fs::path root = tmp_ / "newer";
  WriteFile(root / "strata-store.json", R"({"format":"strata-store","version":99})");
  StoreOptions options;
  options.root = root.string();
  auto store = Store::Open(options);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("newer"), std::string::npos) << store.status().message();
  EXPECT_FALSE(fs::exists(root / "meta")) << "nothing may be written to a newer store";
}

TEST_F(StoreTest, ForeignFormatIsRefused) {
  for (std::string_view text : {R"({"format":"containers-storage","version":1})", "not json at all", "[1,2]"}) {
    SCOPED_TRACE(std::string(text));
    fs::path root = tmp_ / "foreign";
    fs::remove_all(root);
    WriteFile(root / "strata-store.json", text);
    StoreOptions options;
    options.root = root.string();
    auto store = Store::Open(options);
    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.status().code(), Code::kFailedPrecondition);
    EXPECT_NE(store.status().message().find("not a strata store"), std::string::npos) << store.status().message();
    EXPECT_FALSE(fs::exists(root / "meta"));
  }
}

TEST_F(StoreTest, ReopenKeepsData) {
  auto info = ImportFile(*store_, Corpus("ok-basic.tar"));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(json::parse(ReadFile(root_ / "strata-store.json")),
            json::parse(R"({"format":"strata-store","version":1})"));
  store_.reset();
  store_ = OpenStore(root_);
  ASSERT_NE(store_, nullptr);
  auto found = store_->FindLayer(info->diff_id);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ(Sha256::Of(Export(*store_, info->diff_id)), info->diff_id);
}

// A crash during the first open can leave the layout partly made: objects/ff, made last, is what
// tells a later open that the shards are complete, so without it they are all made again, and the
// directories a newer strata added are made in any store that lacks them.
TEST_F(StoreTest, ReopenCompletesAnUnfinishedLayout) {
  store_.reset();
  fs::remove(root_ / "objects/7a");
  fs::remove(root_ / "objects/ff");
  fs::remove(root_ / "containers");
  store_ = OpenStore(root_);
  ASSERT_NE(store_, nullptr);
  EXPECT_TRUE(fs::is_directory(root_ / "objects/7a"));
  EXPECT_TRUE(fs::is_directory(root_ / "objects/ff"));
  EXPECT_TRUE(fs::is_directory(root_ / "containers"));
  auto info = ImportFile(*store_, Corpus("ok-basic.tar"));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
}

// ---------------------------------------------------------------------------------------------
// Images

class ImageTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    if (HasFatalFailure()) return;
    // Three small layer directories: base is shared by every image; app1 and app2 are different
    // layers that hold one identical file (shared/data.bin vs shared/copy.bin) and one own file each.
    base_ = tmp_ / "layers/base";
    app1_ = tmp_ / "layers/app1";
    app2_ = tmp_ / "layers/app2";
    WriteFile(base_ / "etc/os-release", "NAME=strata-test\n");
    WriteFile(base_ / "lib/libc.so", Content("libc", 20000));
    WriteFile(app1_ / "app/one.txt", Content("one", 5000));
    WriteFile(app1_ / "shared/data.bin", Content("shared", 9000));
    WriteFile(app2_ / "app/two.txt", Content("two", 6000));
    WriteFile(app2_ / "shared/copy.bin", Content("shared", 9000));
  }

  std::string Layers(std::initializer_list<const fs::path*> layers) {
    std::string out;
    for (const fs::path* l : layers) out += " --layer " + l->string();
    return out + " --root-owned";
  }

  Result<std::vector<LoadedImage>> Load(Store& store, const fs::path& archive) {
    return LoadImageArchive(store, archive.string(), nullptr);
  }

  Digest MustLoad(Store& store, const fs::path& archive) {
    auto loaded = Load(store, archive);
    EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
    if (!loaded.ok() || loaded->size() != 1) {
      ADD_FAILURE() << archive << ": expected one image";
      return Digest();
    }
    return (*loaded)[0].id;
  }

  ImageView MustResolve(std::string_view name) {
    auto view = store_->ResolveImage(name);
    EXPECT_TRUE(view.ok()) << name << ": " << view.status().ToString();
    return view.ok() ? *view : ImageView{};
  }

  std::vector<std::string> TagStrings(const std::vector<Reference>& tags) {
    std::vector<std::string> out;
    for (const Reference& r : tags) out.push_back(r.FamiliarString());
    std::sort(out.begin(), out.end());
    return out;
  }

  fs::path base_, app1_, app2_;
};

TEST_F(ImageTest, LoadsDockerArchiveOciArchiveAndOciDir) {
  json s1, s2, s3;
  fs::path docker = tmp_ / "one.docker.tar", oci = tmp_ / "two.oci.tar", dir = tmp_ / "three.oci";
  Digest id1 = MkImage("--format docker-archive -o " + docker.string() + " --tag test/one:latest" +
                           Layers({&base_, &app1_}), &s1);
  Digest id2 = MkImage("--format oci-archive -o " + oci.string() + " --tag test/two:v2 --tag test/two:latest" +
                           Layers({&base_, &app2_}), &s2);
  Digest id3 = MkImage("--format oci-dir -o " + dir.string() + " --tag quay.io/org/three:3 --compression zstd" +
                           Layers({&base_}), &s3);
  ASSERT_FALSE(HasFailure());

  auto l1 = Load(*store_, docker);
  ASSERT_TRUE(l1.ok()) << l1.status().ToString();
  ASSERT_EQ(l1->size(), 1u);
  EXPECT_EQ((*l1)[0].id, id1);
  EXPECT_EQ(TagStrings((*l1)[0].tags), std::vector<std::string>{"test/one:latest"});
  auto l2 = Load(*store_, oci);
  ASSERT_TRUE(l2.ok()) << l2.status().ToString();
  ASSERT_EQ(l2->size(), 1u);
  EXPECT_EQ((*l2)[0].id, id2);
  EXPECT_EQ(TagStrings((*l2)[0].tags), (std::vector<std::string>{"test/two:latest", "test/two:v2"}));
  auto l3 = Load(*store_, dir);
  ASSERT_TRUE(l3.ok()) << l3.status().ToString();
  ASSERT_EQ(l3->size(), 1u);
  EXPECT_EQ((*l3)[0].id, id3);

  ImageView v1 = MustResolve("test/one");
  EXPECT_EQ(v1.record.id, id1);
  EXPECT_EQ(v1.record.layers, DiffIds(s1));
  ImageView v2 = MustResolve("test/two:v2");
  EXPECT_EQ(v2.record.id, id2);
  EXPECT_EQ(v2.record.layers, DiffIds(s2));
  EXPECT_EQ(TagStrings(v2.tags), (std::vector<std::string>{"test/two:latest", "test/two:v2"}));
  ImageView v3 = MustResolve("quay.io/org/three:3");
  EXPECT_EQ(v3.record.id, id3);
  EXPECT_EQ(v3.record.layers, DiffIds(s3));

  // The base layer is the same in all three: stored once, referenced three times.
  ASSERT_EQ(DiffIds(s1)[0], DiffIds(s3)[0]);
  auto base = store_->FindLayer(DiffIds(s1)[0]);
  ASSERT_TRUE(base.ok() && base->has_value());
  EXPECT_EQ((*base)->refcount, 3u);
  auto listed = store_->ListImages();
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 3u);
  // Every layer exports to its diff_id.
  for (const Digest& d : {DiffIds(s1)[0], DiffIds(s1)[1], DiffIds(s2)[1]}) {
    EXPECT_EQ(Sha256::Of(Export(*store_, d)), d);
  }
  auto report = store_->Fsck({.repair = false, .verify_content = true});
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->consistent());
  EXPECT_TRUE(report->repaired.empty());
  EXPECT_EQ(report->images, 3u);
  EXPECT_EQ(report->layers, 3u);
}

TEST_F(ImageTest, ResolveByNameAndId) {
  fs::path docker = tmp_ / "one.docker.tar";
  Digest id = MkImage("--format docker-archive -o " + docker.string() + " --tag test/one:latest" +
                      Layers({&base_, &app1_}));
  ASSERT_EQ(MustLoad(*store_, docker), id);
  const std::string hex = id.hex();
  for (std::string name : {std::string("test/one"), std::string("test/one:latest"),
                           std::string("docker.io/test/one:latest"), hex, hex.substr(0, 12), hex.substr(0, 5),
                           "sha256:" + hex, "sha256:" + hex.substr(0, 12)}) {
    SCOPED_TRACE(name);
    auto view = store_->ResolveImage(name);
    ASSERT_TRUE(view.ok()) << view.status().ToString();
    EXPECT_EQ(view->record.id, id);
    EXPECT_EQ(TagStrings(view->tags), std::vector<std::string>{"test/one:latest"});
  }
  for (std::string name : {std::string("test/one:other"), std::string("test/two"), std::string(64, 'f'),
                           "sha256:" + std::string(12, '0')}) {
    SCOPED_TRACE(name);
    auto view = store_->ResolveImage(name);
    ASSERT_FALSE(view.ok());
    EXPECT_EQ(view.status().code(), Code::kNotFound);
    EXPECT_NE(view.status().message().find(name), std::string::npos) << view.status().message();
  }
  EXPECT_EQ(store_->ResolveImage("Bad Name!").status().code(), Code::kInvalidArgument);
}

TEST_F(ImageTest, TagAndRemoveImageSemantics) {
  fs::path one = tmp_ / "one.docker.tar", two = tmp_ / "two.docker.tar";
  json s1, s2;
  Digest id1 = MkImage("--format docker-archive -o " + one.string() + " --tag test/one:latest" +
                       Layers({&base_, &app1_}), &s1);
  Digest id2 = MkImage("--format docker-archive -o " + two.string() + " --tag test/two:latest" +
                       Layers({&base_, &app2_}), &s2);
  ASSERT_EQ(MustLoad(*store_, one), id1);
  ASSERT_EQ(MustLoad(*store_, two), id2);
  const Digest only1 = Sha256::Of(Content("one", 5000));
  const Digest only2 = Sha256::Of(Content("two", 6000));
  const Digest shared = Sha256::Of(Content("shared", 9000));
  const Digest libc = Sha256::Of(Content("libc", 20000));
  for (const Digest& d : {only1, only2, shared, libc}) ASSERT_TRUE(fs::exists(ObjectFile(d))) << d.str();

  // Tag: a second name for image 1.
  ASSERT_TRUE(store_->Tag(id1, MustRef("extra/alias:1")).ok());
  EXPECT_EQ(MustResolve("extra/alias:1").record.id, id1);
  EXPECT_EQ(TagStrings(MustResolve(id1.hex()).tags), (std::vector<std::string>{"extra/alias:1", "test/one:latest"}));
  EXPECT_EQ(store_->Tag(Sha256::Of("no such image"), MustRef("x:y")).code(), Code::kNotFound);

  // Removing by a tag while another remains only untags.
  auto untag = store_->RemoveImage("extra/alias:1", false);
  ASSERT_TRUE(untag.ok()) << untag.status().ToString();
  ASSERT_EQ(untag->size(), 1u);
  EXPECT_EQ((*untag)[0].kind, RemovalEvent::kUntagged);
  EXPECT_EQ((*untag)[0].what, "extra/alias:1");
  EXPECT_EQ(store_->ResolveImage("extra/alias:1").status().code(), Code::kNotFound);
  EXPECT_EQ(MustResolve(id1.hex()).record.id, id1);

  // By ID with two tags: needs force.
  ASSERT_TRUE(store_->Tag(id1, MustRef("extra/alias:1")).ok());
  auto refused = store_->RemoveImage(id1.hex().substr(0, 12), false);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("must be forced"), std::string::npos) << refused.status().message();
  EXPECT_EQ(MustResolve("test/one").record.id, id1);
  EXPECT_EQ(MustResolve("extra/alias:1").record.id, id1);

  auto forced = store_->RemoveImage(id1.hex().substr(0, 12), true);
  ASSERT_TRUE(forced.ok()) << forced.status().ToString();
  std::vector<std::string> untagged;
  std::vector<std::string> deleted;
  for (const RemovalEvent& e : *forced) (e.kind == RemovalEvent::kUntagged ? untagged : deleted).push_back(e.what);
  std::sort(untagged.begin(), untagged.end());
  EXPECT_EQ(untagged, (std::vector<std::string>{"extra/alias:1", "test/one:latest"}));
  EXPECT_EQ(deleted, std::vector<std::string>{id1.str()});
  EXPECT_EQ(forced->back().kind, RemovalEvent::kDeleted);
  EXPECT_EQ(store_->ResolveImage(id1.hex()).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->ResolveImage("test/one").status().code(), Code::kNotFound);

  // Freed: image 1's own layer and its own object; kept: the base layer and the shared content.
  EXPECT_FALSE(fs::exists(ObjectFile(only1)));
  EXPECT_TRUE(fs::exists(ObjectFile(shared)));
  EXPECT_TRUE(fs::exists(ObjectFile(libc)));
  EXPECT_TRUE(fs::exists(ObjectFile(only2)));
  auto app1_layer = store_->FindLayer(DiffIds(s1)[1]);
  ASSERT_TRUE(app1_layer.ok());
  EXPECT_FALSE(app1_layer->has_value());
  EXPECT_FALSE(fs::exists(root_ / "layers" / DiffIds(s1)[1].hex()));
  auto base = store_->FindLayer(DiffIds(s1)[0]);
  ASSERT_TRUE(base.ok() && base->has_value());
  EXPECT_EQ((*base)->refcount, 1u);
  EXPECT_FALSE(fs::exists(root_ / "blobs/sha256" / id1.hex())) << "the config blob goes with the image";
  EXPECT_TRUE(fs::exists(root_ / "blobs/sha256" / id2.hex()));

  // Image 2 by its last tag: untagged and deleted; then the store is empty.
  auto last = store_->RemoveImage("test/two", false);
  ASSERT_TRUE(last.ok()) << last.status().ToString();
  ASSERT_EQ(last->size(), 2u);
  EXPECT_EQ((*last)[0].kind, RemovalEvent::kUntagged);
  EXPECT_EQ((*last)[0].what, "test/two:latest");
  EXPECT_EQ((*last)[1].kind, RemovalEvent::kDeleted);
  EXPECT_EQ(ObjectFileCount(), 0u);
  EXPECT_EQ(CountEntries(root_ / "layers"), 0u);
  EXPECT_EQ(CountEntries(root_ / "blobs/sha256"), 0u);
  EXPECT_EQ(store_->RemoveImage("test/two", false).status().code(), Code::kNotFound);
  auto report = store_->Fsck({.repair = false, .verify_content = false});
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->consistent());
  EXPECT_TRUE(report->repaired.empty());
}

TEST_F(ImageTest, PruneDanglingThenAll) {
  fs::path tagged = tmp_ / "tagged.tar", dangling = tmp_ / "dangling.tar";
  json st, sd;
  Digest tagged_id = MkImage("--format docker-archive -o " + tagged.string() + " --tag test/keep:1" +
                             Layers({&base_, &app1_}), &st);
  Digest dangling_id = MkImage("--format oci-archive -o " + dangling.string() + Layers({&base_, &app2_}), &sd);
  ASSERT_EQ(MustLoad(*store_, tagged), tagged_id);
  ASSERT_EQ(MustLoad(*store_, dangling), dangling_id);
  EXPECT_TRUE(MustResolve(dangling_id.hex()).tags.empty());
  auto du = store_->GetDiskUsage();
  ASSERT_TRUE(du.ok());
  EXPECT_EQ(du->images, 2u);
  EXPECT_EQ(du->dangling_images, 1u);
  EXPECT_GT(du->reclaimable_bytes, 0u);

  auto dangling_report = store_->PruneImages(false);
  ASSERT_TRUE(dangling_report.ok()) << dangling_report.status().ToString();
  ASSERT_EQ(dangling_report->events.size(), 1u);
  EXPECT_EQ(dangling_report->events[0].kind, RemovalEvent::kDeleted);
  EXPECT_EQ(dangling_report->events[0].what, dangling_id.str());
  EXPECT_GT(dangling_report->reclaimed_bytes, 0u);
  EXPECT_EQ(store_->ResolveImage(dangling_id.hex()).status().code(), Code::kNotFound);
  EXPECT_EQ(MustResolve("test/keep:1").record.id, tagged_id);
  EXPECT_FALSE(fs::exists(ObjectFile(Sha256::Of(Content("two", 6000)))));
  EXPECT_TRUE(fs::exists(ObjectFile(Sha256::Of(Content("shared", 9000)))));

  auto again = store_->PruneImages(false);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->events.empty()) << "nothing dangling is left";

  auto all = store_->PruneImages(true);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->events.size(), 2u);
  EXPECT_EQ(all->events[0].kind, RemovalEvent::kUntagged);
  EXPECT_EQ(all->events[0].what, "test/keep:1");
  EXPECT_EQ(all->events[1].kind, RemovalEvent::kDeleted);
  EXPECT_EQ(all->events[1].what, tagged_id.str());
  auto listed = store_->ListImages();
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->empty());
  EXPECT_EQ(ObjectFileCount(), 0u);
  EXPECT_EQ(CountEntries(root_ / "layers"), 0u);
  du = store_->GetDiskUsage();
  ASSERT_TRUE(du.ok());
  EXPECT_EQ(du->layers, 0u);
  EXPECT_EQ(du->objects, 0u);
}

TEST_F(ImageTest, ReloadingAnArchiveIsIdempotent) {
  fs::path oci = tmp_ / "img.oci.tar";
  json s;
  Digest id = MkImage("--format oci-archive -o " + oci.string() + " --tag test/img:1" + Layers({&base_, &app1_}), &s);
  ASSERT_EQ(MustLoad(*store_, oci), id);
  size_t objects = ObjectFileCount();
  auto du1 = store_->GetDiskUsage();
  ASSERT_TRUE(du1.ok());
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(MustLoad(*store_, oci), id);
    EXPECT_EQ(ObjectFileCount(), objects);
    auto du = store_->GetDiskUsage();
    ASSERT_TRUE(du.ok());
    EXPECT_EQ(du->images, 1u);
    EXPECT_EQ(du->layers, du1->layers);
    EXPECT_EQ(du->objects, du1->objects);
    for (const Digest& d : DiffIds(s)) {
      auto layer = store_->FindLayer(d);
      ASSERT_TRUE(layer.ok() && layer->has_value());
      EXPECT_EQ((*layer)->refcount, 1u) << "a reload must not count the image twice";
    }
  }
  EXPECT_EQ(CountEntries(root_ / "tmp"), 0u);
  auto report = store_->Fsck({.repair = false, .verify_content = false});
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->consistent());
  EXPECT_TRUE(report->repaired.empty()) << report->repaired.front();
}

TEST_F(ImageTest, SaveThenLoadIntoAnotherStoreKeepsIdAndLayers) {
  fs::path dir = tmp_ / "src.oci";
  json s;
  Digest id = MkImage("--format oci-dir -o " + dir.string() + " --tag test/src:1 --compression gzip" +
                      Layers({&base_, &app1_}), &s);
  ASSERT_EQ(MustLoad(*store_, dir), id);
  ASSERT_TRUE(store_->Tag(id, MustRef("test/src:2")).ok());
  ImageView view = MustResolve("test/src:1");

  for (ArchiveFormat format : {ArchiveFormat::kDockerArchive, ArchiveFormat::kOciArchive}) {
    const std::string fname = format == ArchiveFormat::kDockerArchive ? "saved.docker.tar" : "saved.oci.tar";
    SCOPED_TRACE(fname);
    fs::path out = tmp_ / fname;
    int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    Status saved = SaveImageArchive(*store_, {{id, view.tags}}, format, fd, nullptr);
    ::close(fd);
    ASSERT_TRUE(saved.ok()) << saved.ToString();

    std::unique_ptr<Store> other = OpenStore(tmp_ / ("other-" + fname));
    ASSERT_NE(other, nullptr);
    auto loaded = LoadImageArchive(*other, out.string(), nullptr);
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    ASSERT_EQ(loaded->size(), 1u);
    EXPECT_EQ((*loaded)[0].id, id);
    auto v = other->ResolveImage("test/src:2");
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ(v->record.id, id);
    EXPECT_EQ(v->record.layers, DiffIds(s));
    EXPECT_EQ(TagStrings(v->tags), (std::vector<std::string>{"test/src:1", "test/src:2"}));
    for (const Digest& d : DiffIds(s)) {
      StringSink a, b;
      ASSERT_TRUE(store_->ExportLayer(d, a, nullptr).ok());
      ASSERT_TRUE(other->ExportLayer(d, b, nullptr).ok());
      EXPECT_TRUE(a.out == b.out);
    }
    auto report = other->Fsck({.repair = false, .verify_content = true});
    ASSERT_TRUE(report.ok());
    EXPECT_TRUE(report->consistent());
    EXPECT_TRUE(report->repaired.empty());
  }
}

// ---------------------------------------------------------------------------------------------
// Fsck

class FsckTest : public StoreTest {
 protected:
  // An image of one layer with three files; returns the layer.
  LayerInfo MakeImage() {
    std::string tar = TarBuilder()
                          .Dir("img")
                          .File("img/a", Content("img-a", 3000))
                          .File("img/b", Content("img-b", 4000))
                          .File("img/c", Content("shared-with-orphan-layer", 5000))
                          .Finish();
    auto info = ImportBytes(*store_, tar);
    EXPECT_TRUE(info.ok()) << info.status().ToString();
    if (!info.ok()) return {};
    auto rec = store_->CreateImage({Config({info->diff_id}), {MustRef("fsck/img:1")}, {}});
    EXPECT_TRUE(rec.ok()) << rec.status().ToString();
    return *info;
  }

  Result<FsckReport> Fsck(bool repair, bool verify = false) {
    return store_->Fsck({.repair = repair, .verify_content = verify});
  }

  static bool AnyContains(const std::vector<std::string>& lines, const std::string& needle) {
    return std::any_of(lines.begin(), lines.end(),
                       [&](const std::string& l) { return l.find(needle) != std::string::npos; });
  }
  static std::string Join(const std::vector<std::string>& lines) {
    std::string out;
    for (const std::string& l : lines) out += "  " + l + "\n";
    return out;
  }

  // Rewrites the refcount of object `d` behind the store's back (the store must be closed).
  void SetObjectRefcount(const Digest& d, uint64_t refcount) {
    auto env = lmdb::Env::Open((root_ / "meta").string(), size_t{64} << 30);
    ASSERT_TRUE(env.ok()) << env.status().ToString();
    auto txn = lmdb::Txn::Begin(**env, true);
    ASSERT_TRUE(txn.ok());
    auto t = Tables::Open(*txn);
    ASSERT_TRUE(t.ok());
    auto row = txn->Get(t->objects, d.raw());
    ASSERT_TRUE(row.ok() && row->has_value());
    auto rec = DecodeObject(**row);
    ASSERT_TRUE(rec.ok());
    rec->refcount = refcount;
    ASSERT_TRUE(txn->Put(t->objects, d.raw(), EncodeObject(*rec)).ok());
    ASSERT_TRUE(txn->Commit().ok());
  }
};

TEST_F(FsckTest, FreshStoreIsConsistent) {
  auto report = Fsck(true, true);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->consistent());
  EXPECT_TRUE(report->problems.empty());
  EXPECT_TRUE(report->repaired.empty());
  EXPECT_EQ(report->images, 0u);
  MakeImage();
  report = Fsck(true, true);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->consistent()) << Join(report->problems);
  EXPECT_TRUE(report->repaired.empty()) << Join(report->repaired);
  EXPECT_EQ(report->images, 1u);
  EXPECT_EQ(report->layers, 1u);
  EXPECT_EQ(report->objects, 3u);
  EXPECT_EQ(report->blobs, 1u);
}

TEST_F(FsckTest, CrashLeftoversAreReportedThenRepaired) {
  LayerInfo img_layer = MakeImage();
  const Digest img_a = Sha256::Of(Content("img-a", 3000));
  const Digest shared = Sha256::Of(Content("shared-with-orphan-layer", 5000));

  // 1. A layer imported but never named by an image (refcount 0). It shares one content with the image.
  std::string orphan_tar = TarBuilder()
                               .File("orphan/own", Content("orphan-own", 2500))
                               .File("orphan/shared", Content("shared-with-orphan-layer", 5000))
                               .Finish();
  auto orphan = ImportBytes(*store_, orphan_tar);
  ASSERT_TRUE(orphan.ok()) << orphan.status().ToString();
  const Digest orphan_own = Sha256::Of(Content("orphan-own", 2500));
  // 2. A stray temp file.
  WriteFile(root_ / "tmp" / "12345-0", "half-written");
  // 3. An object file without a record.
  const std::string stray_content = "an object whose import never committed";
  const Digest stray = Sha256::Of(stray_content);
  WriteFile(ObjectFile(stray), stray_content);
  // 4. A wrong object refcount.
  store_.reset();
  SetObjectRefcount(img_a, 7);
  store_ = OpenStore(root_);
  ASSERT_NE(store_, nullptr);

  auto check = Fsck(false);
  ASSERT_TRUE(check.ok()) << check.status().ToString();
  const std::vector<std::string> found = check->repaired;
  EXPECT_TRUE(check->problems.empty()) << Join(check->problems);
  EXPECT_TRUE(AnyContains(found, "tmp/12345-0")) << Join(found);
  EXPECT_TRUE(AnyContains(found, stray.hex().substr(2))) << Join(found);
  EXPECT_TRUE(AnyContains(found, "layer " + orphan->diff_id.str() + " is referenced by no image: would be removed")) << Join(found);
  EXPECT_TRUE(AnyContains(found, "object " + img_a.str() + " reference count 7: would be corrected to 1")) << Join(found);

  // Nothing changed: everything is still there, and a second check finds the same.
  EXPECT_TRUE(fs::exists(root_ / "tmp" / "12345-0"));
  EXPECT_TRUE(fs::exists(ObjectFile(stray)));
  EXPECT_TRUE(fs::exists(ObjectFile(orphan_own)));
  EXPECT_TRUE(fs::exists(root_ / "layers" / orphan->diff_id.hex()));
  auto still = store_->FindLayer(orphan->diff_id);
  ASSERT_TRUE(still.ok());
  EXPECT_TRUE(still->has_value());
  auto check2 = Fsck(false);
  ASSERT_TRUE(check2.ok());
  EXPECT_EQ(check2->repaired, found);

  // Repair.
  auto repair = Fsck(true);
  ASSERT_TRUE(repair.ok()) << repair.status().ToString();
  EXPECT_TRUE(repair->problems.empty()) << Join(repair->problems);
  std::vector<std::string> done = found;  // the same findings, now done
  for (auto& line : done) {
    const size_t would = line.find(": would be ");
    ASSERT_NE(would, std::string::npos) << line;
    line.replace(would, 11, ": ");
  }
  EXPECT_EQ(repair->repaired, done);
  EXPECT_FALSE(fs::exists(root_ / "tmp" / "12345-0"));
  EXPECT_FALSE(fs::exists(ObjectFile(stray)));
  EXPECT_FALSE(fs::exists(ObjectFile(orphan_own)));
  EXPECT_FALSE(fs::exists(root_ / "layers" / orphan->diff_id.hex()));
  EXPECT_TRUE(fs::exists(ObjectFile(shared))) << "the image still uses the content the orphan layer shared";
  auto gone = store_->FindLayer(orphan->diff_id);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());

  // Clean afterwards, and the image is intact.
  auto after = Fsck(true, true);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->consistent()) << Join(after->problems);
  EXPECT_TRUE(after->repaired.empty()) << Join(after->repaired);
  EXPECT_EQ(Sha256::Of(Export(*store_, img_layer.diff_id)), img_layer.diff_id);
  EXPECT_EQ(ObjectFileCount(), 3u);
}

TEST_F(FsckTest, MissingObjectIsAProblemNotARepair) {
  LayerInfo layer = MakeImage();
  const Digest b = Sha256::Of(Content("img-b", 4000));
  ASSERT_EQ(::unlink(ObjectFile(b).c_str()), 0);
  for (bool repair : {false, true, true}) {
    SCOPED_TRACE(repair);
    auto report = Fsck(repair);
    ASSERT_TRUE(report.ok());
    EXPECT_FALSE(report->consistent());
    ASSERT_EQ(report->problems.size(), 1u) << Join(report->problems);
    EXPECT_NE(report->problems[0].find(b.str()), std::string::npos) << report->problems[0];
    EXPECT_NE(report->problems[0].find("missing"), std::string::npos) << report->problems[0];
    EXPECT_NE(report->problems[0].find(layer.diff_id.str()), std::string::npos) << report->problems[0];
  }
  StringSink sink;
  EXPECT_FALSE(store_->ExportLayer(layer.diff_id, sink, nullptr).ok());
}

TEST_F(FsckTest, VerifyContentDetectsChangedBytes) {
  LayerInfo layer = MakeImage();
  const Digest a = Sha256::Of(Content("img-a", 3000));
  fs::path file = ObjectFile(a);
  ASSERT_EQ(::chmod(file.c_str(), 0644), 0);
  std::string bytes = ReadFile(file);
  bytes[1234] ^= 0x01;  // same size, different content
  WriteFile(file, bytes);
  ASSERT_EQ(::chmod(file.c_str(), 0444), 0);

  auto quick = Fsck(false, false);
  ASSERT_TRUE(quick.ok());
  EXPECT_TRUE(quick->consistent()) << "without verify_content only sizes are checked";
  auto deep = Fsck(false, true);
  ASSERT_TRUE(deep.ok());
  EXPECT_FALSE(deep->consistent());
  EXPECT_TRUE(AnyContains(deep->problems, "object " + a.str() + " is damaged")) << Join(deep->problems);
  // Export notices too: the regenerated tar no longer matches its diff_id.
  StringSink sink;
  Status s = store_->ExportLayer(layer.diff_id, sink, nullptr);
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
}

}  // namespace
}  // namespace layerstore
