#include "layer_import.h"

#include "archive_api.h"
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "fsutil.h"
#include "gzip_inflate.h"
#include "layerstore/sha256.h"
#include "schema.h"
#include "tarsplit.h"

namespace layerstore {
namespace {

constexpr size_t kChunk = 1 << 20;
constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";
constexpr std::string_view kWhiteoutMetaPrefix = ".wh..wh.";

struct ArchiveFree {
  void operator()(archive* a) const noexcept { Archive().archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveFree>;

// Removes a temp file unless released.
class TempGuard {
 public:
  TempGuard(int root_fd, std::string name) : root_fd_(root_fd), name_(std::move(name)) {}
  ~TempGuard() {
    if (!name_.empty()) ::unlinkat(root_fd_, name_.c_str(), 0);
  }
  std::string Release() { return std::exchange(name_, {}); }

 private:
  int root_fd_;
  std::string name_;
};

// The compressed side: pulls from the ByteSource, hashes what it reads (the blob digest).
struct CompressedSide {
  ByteSource* source;
  Sha256 hash;
  uint64_t bytes = 0;
  uint64_t reported = 0;
  std::vector<char> buf = std::vector<char>(kChunk);
  Status error;
  ProgressSink* progress;
  std::string progress_id;
  int tee_fd = -1;  // keep_blob: the bytes as read are also written here

  // An uncompressed stream: its digest is the diff_id, hashed once on the tar side, and the tar
  // reader takes it straight from the source (no decompressing reader, no copy in between).
  bool plain = false;
  // A gzip stream: decompressed by GzipInflater rather than libarchive's zlib filter.
  bool gzip = false;
  size_t first = 0;  // bytes of buf read by Sniff and not handed out yet

  // Reads the first bytes (at least 6 unless the stream is shorter) and decides `plain` by magic.
  Status Sniff() {
    while (first < 6) {
      LS_ASSIGN_OR_RETURN(size_t n, ReadInto(buf.data() + first, buf.size() - first));
      if (n == 0) break;
      first += n;
    }
    const auto* b = reinterpret_cast<const unsigned char*>(buf.data());
    size_t n = first;
    gzip = n >= 2 && b[0] == 0x1f && b[1] == 0x8b;
    bool compressed = gzip ||
                      (n >= 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd) ||
                      (n >= 3 && b[0] == 'B' && b[1] == 'Z' && b[2] == 'h') ||
                      (n >= 6 && b[0] == 0xfd && b[1] == '7' && b[2] == 'z' && b[3] == 'X' && b[4] == 'Z');
    plain = n >= 6 && !compressed;
    if (!plain) hash.Update(buf.data(), n);
    return {};
  }

  // The next bytes of the stream into `out` (up to `cap`); the sniffed bytes come first.
  Result<size_t> Pull(char* out, size_t cap) {
    if (first > 0) {
      size_t n = std::min(first, cap);
      std::memcpy(out, buf.data(), n);
      std::memmove(buf.data(), buf.data() + n, first - n);
      first -= n;
      return n;
    }
    LS_ASSIGN_OR_RETURN(size_t n, ReadInto(out, cap));
    if (!plain) hash.Update(out, n);
    return n;
  }

  // Reads from the source: tees, counts, reports progress (no hashing).
  Result<size_t> ReadInto(char* out, size_t cap) {
    LS_ASSIGN_OR_RETURN(size_t n, source->Read(out, cap));
    if (tee_fd >= 0 && n > 0) LS_RETURN_IF_ERROR(fsutil::WriteAll(tee_fd, out, n, "kept blob"));
    bytes += n;
    if (progress && (bytes - reported >= kChunk || n == 0)) {
      progress->Update(progress_id, bytes);
      reported = bytes;
    }
    return n;
  }
};

la_ssize_t CompressedRead(archive* a, void* client, const void** out) {
  auto* side = static_cast<CompressedSide*>(client);
  // Hands out the sniffed bytes in place, then reads behind them.
  if (side->first > 0) {
    *out = side->buf.data();
    return static_cast<la_ssize_t>(std::exchange(side->first, 0));
  }
  auto n = side->Pull(side->buf.data(), side->buf.size());
  if (!n.ok()) {
    side->error = n.status();
    Archive().archive_set_error(a, EIO, "%s", n.status().message().c_str());
    return -1;
  }
  *out = side->buf.data();
  return static_cast<la_ssize_t>(*n);
}

// Everything of the tar that is not a skipped payload goes to the tar-split, in order. Bytes fed
// are referenced in place (the chunk) until the next Feed; only what is then neither emitted nor
// known to be payload is copied into the window. So payloads are never copied here, and the window
// stays within one chunk plus headers.
class RawCapture {
 public:
  explicit RawCapture(TarSplitWriter& out) : out_(out) {}

  // The next `n` bytes of the tar. REQUIRES: `data` stays valid until the next Feed.
  void Feed(const char* data, size_t n) {
    Materialize();
    chunk_ = data;
    chunk_start_ = fed_end_;
    fed_end_ += n;
  }

  // Emits raw bytes [keep_from_, pos) as one record. REQUIRES: keep_from_ <= pos <= fed_end_.
  Status EmitUpTo(uint64_t pos) {
    if (pos <= keep_from_) return {};
    size_t n = static_cast<size_t>(pos - keep_from_);
    size_t in_window = window_.size() - start_;
    if (in_window > 0 && n > in_window) {
      Materialize();  // the bytes straddle the window and the chunk
      in_window = window_.size() - start_;
    }
    std::string_view bytes = in_window > 0 ? std::string_view(window_).substr(start_, n)
                                           : std::string_view(chunk_ + (keep_from_ - chunk_start_), n);
    LS_RETURN_IF_ERROR(out_.Raw(bytes));
    Consume(n);
    return {};
  }

  // Marks [start, start+size) as payload: emits the raw bytes before it and drops what of it was
  // already fed.
  Status SkipPayload(uint64_t start, uint64_t size) {
    LS_RETURN_IF_ERROR(EmitUpTo(start));
    Consume(std::min<uint64_t>(size, fed_end_ - keep_from_));
    keep_from_ = start + size;
    return {};
  }

  uint64_t fed_end() const { return fed_end_; }
  uint64_t keep_from() const { return keep_from_; }

  // A copy of the bytes [keep_from_, to) not yet emitted: the headers of the entry being read.
  // REQUIRES: keep_from_ <= to <= fed_end_.
  std::string Pending(uint64_t to) const {
    std::string out;
    uint64_t pos = keep_from_;
    if (pos < chunk_start_) {  // the window holds [keep_from_, chunk_start_)
      const uint64_t end = std::min(to, chunk_start_);
      out.append(window_, start_, static_cast<size_t>(end - pos));
      pos = end;
    }
    if (pos < to) out.append(chunk_ + (pos - chunk_start_), static_cast<size_t>(to - pos));
    return out;
  }

 private:
  // The window holds [keep_from_, chunk_start_) when keep_from_ < chunk_start_, else nothing; the
  // chunk holds [chunk_start_, fed_end_).
  void Materialize() {
    if (keep_from_ < fed_end_ && chunk_start_ < fed_end_) {
      uint64_t from = std::max(chunk_start_, keep_from_);
      window_.append(chunk_ + (from - chunk_start_), static_cast<size_t>(fed_end_ - from));
    }
    chunk_start_ = fed_end_;
  }

  // Drops the next n bytes at keep_from_, from the window first.
  void Consume(uint64_t n) {
    size_t from_window = static_cast<size_t>(std::min<uint64_t>(n, window_.size() - start_));
    start_ += from_window;
    keep_from_ += n;
    // Compact lazily: erasing the front on every small file would be quadratic in a chunk.
    if (start_ == window_.size()) {
      window_.clear();
      start_ = 0;
    } else if (start_ > (256 << 10) && start_ * 2 > window_.size()) {
      window_.erase(0, start_);
      start_ = 0;
    }
  }

  TarSplitWriter& out_;
  std::string window_;
  size_t start_ = 0;           // window_[start_] is the byte at offset keep_from_
  const char* chunk_ = nullptr;
  uint64_t chunk_start_ = 0;   // stream offset of chunk_[0]
  uint64_t fed_end_ = 0;       // offset after the last byte fed
  uint64_t keep_from_ = 0;     // bytes before this were emitted or skipped
};

// The value of `key` in the last pax extended header ('x') among raw tar header blocks `raw`, which
// begin at stream offset `offset` (headers lie at multiples of 512 bytes); nullopt if none has it.
std::optional<std::string> PaxRecord(std::string_view raw, uint64_t offset, std::string_view key) {
  std::optional<std::string> found;
  size_t pos = static_cast<size_t>((512 - offset % 512) % 512);
  while (pos + 512 <= raw.size()) {
    std::string_view header = raw.substr(pos, 512);
    uint64_t size = 0;
    for (char c : header.substr(124, 12)) {
      if (c >= '0' && c <= '7') size = size * 8 + static_cast<uint64_t>(c - '0');
      else if (c != ' ') break;
    }
    pos += 512;
    if (header[156] == 'x' && size <= raw.size() - pos) {
      std::string_view records = raw.substr(pos, static_cast<size_t>(size));
      // Records are "LENGTH KEY=VALUE\n", LENGTH counting the whole record.
      while (!records.empty()) {
        const size_t space = records.find(' ');
        if (space == std::string_view::npos) break;
        size_t length = 0;
        for (char c : records.substr(0, space)) {
          if (c < '0' || c > '9' || length > records.size()) break;
          length = length * 10 + static_cast<size_t>(c - '0');
        }
        if (length <= space + 1 || length > records.size()) break;
        std::string_view record = records.substr(space + 1, length - space - 2);
        size_t eq = record.find('=');
        if (eq != std::string_view::npos && record.substr(0, eq) == key) found = std::string(record.substr(eq + 1));
        records.remove_prefix(length);
      }
    }
    pos += static_cast<size_t>((size + 511) / 512 * 512);  // 12 octal digits: no overflow
  }
  return found;
}

// A pax time ("-1.25": seconds since the epoch, an optional fraction) as seconds and the
// nanoseconds after them: -1.25 is -2 s + 0.75e9 ns. False when it is not one.
bool ParsePaxTime(std::string_view text, int64_t* sec, uint32_t* nsec) {
  const bool negative = !text.empty() && text[0] == '-';
  if (negative) text.remove_prefix(1);
  size_t i = 0;
  int64_t whole = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    if (whole > (INT64_MAX - 9) / 10) return false;
    whole = whole * 10 + (text[i] - '0');
  }
  if (i == 0) return false;
  uint32_t fraction = 0;
  if (i < text.size() && text[i] == '.') {
    uint32_t scale = 100000000;
    for (++i; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, scale /= 10) {
      fraction += static_cast<uint32_t>(text[i] - '0') * scale;  // digits past the 9th add nothing
    }
  }
  if (i != text.size()) return false;
  if (!negative) {
    *sec = whole;
    *nsec = fraction;
  } else if (fraction == 0) {
    *sec = -whole;
    *nsec = 0;
  } else {
    *sec = -whole - 1;
    *nsec = 1000000000 - fraction;
  }
  return true;
}

// Hashes one stream on a thread of its own, so that the diff_id costs the importer's thread
// nothing. The stream comes in buffers of a ring: the reader submits each buffer it filled and
// refills a buffer only after WaitFor(its last ticket), when the hasher is done with it.
class StreamHasher {
 public:
  StreamHasher() = default;
  ~StreamHasher() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  StreamHasher(const StreamHasher&) = delete;
  StreamHasher& operator=(const StreamHasher&) = delete;

  // Queues [data, data+n) and returns its ticket. REQUIRES: the bytes stay put until WaitFor(ticket).
  uint64_t Submit(const char* data, size_t n) {
    if (!thread_.joinable()) {
      thread_ = std::thread([this] {
        ::pthread_setname_np(::pthread_self(), "strata-diffid");  // named for perf and top
        Loop();
      });
    }
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back({data, n});
    cv_.notify_all();
    return ++submitted_;
  }
  void WaitFor(uint64_t ticket) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_ >= ticket; });
  }
  // The digest of everything submitted.
  Digest Finish() {
    WaitFor(submitted_);
    return hash_.Finish();
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return !pending_.empty() || stop_; });
      if (pending_.empty()) return;
      auto [data, n] = pending_.front();
      pending_.pop_front();
      lock.unlock();
      hash_.Update(data, n);  // only this thread touches hash_ until Finish's WaitFor
      lock.lock();
      ++done_;
      cv_.notify_all();
    }
  }

  Sha256 hash_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<const char*, size_t>> pending_;  // guarded by mu_
  uint64_t submitted_ = 0;                              // guarded by mu_
  uint64_t done_ = 0;                                   // guarded by mu_
  bool stop_ = false;                                   // guarded by mu_
  std::thread thread_;
};

// The uncompressed side: the tar stream, hashed (diff_id), captured, bounded.
struct TarSide {
  static constexpr size_t kRing = 4;

  archive* compressed;  // the decompressing reader of a stream neither plain nor gzip
  GzipInflater* gzip;
  CompressedSide* compressed_side;
  RawCapture* capture;
  uint64_t max_bytes;
  std::string where;
  std::vector<std::vector<char>> ring = std::vector<std::vector<char>>(kRing, std::vector<char>(kChunk));
  uint64_t tickets[kRing] = {};
  StreamHasher hash;  // after ring: destroyed (its thread joined) before the buffers it reads
  uint64_t pulls = 0;
  char* current = nullptr;  // the buffer handed to libarchive last
  Status error;

  Result<size_t> Pull() {
    size_t slot = pulls++ % kRing;
    hash.WaitFor(tickets[slot]);
    current = ring[slot].data();
    la_ssize_t n;
    if (gzip) {
      auto got = gzip->Read(current, kChunk);
      if (!got.ok()) {
        if (!compressed_side->error.ok()) return compressed_side->error;
        return Status::InvalidArgument(where + ": cannot decompress layer: " + got.status().message());
      }
      n = static_cast<la_ssize_t>(*got);
    } else if (compressed_side->plain) {
      LS_ASSIGN_OR_RETURN(size_t got, compressed_side->Pull(current, kChunk));
      n = static_cast<la_ssize_t>(got);
    } else {
      n = Archive().archive_read_data(compressed, current, kChunk);
      if (n < 0) {
        if (!compressed_side->error.ok()) return compressed_side->error;
        return Status::InvalidArgument(where + ": cannot decompress layer: " + Archive().archive_error_string(compressed));
      }
    }
    tickets[slot] = hash.Submit(current, static_cast<size_t>(n));
    capture->Feed(current, static_cast<size_t>(n));
    if (capture->fed_end() > max_bytes) {
      return Status::ResourceExhausted(where + ": layer is larger than the limit of " +
                                       std::to_string(max_bytes) + " uncompressed bytes (--max-layer-size)");
    }
    return static_cast<size_t>(n);
  }
};

la_ssize_t TarRead(archive* a, void* client, const void** out) {
  auto* side = static_cast<TarSide*>(client);
  auto n = side->Pull();
  if (!n.ok()) {
    side->error = n.status();
    Archive().archive_set_error(a, EIO, "%s", n.status().message().c_str());
    return -1;
  }
  *out = side->current;
  return static_cast<la_ssize_t>(*n);
}

std::string CompressionName(int code) {
  switch (code) {
    case ARCHIVE_FILTER_NONE: return "none";
    case ARCHIVE_FILTER_GZIP: return "gzip";
    case ARCHIVE_FILTER_ZSTD: return "zstd";
    case ARCHIVE_FILTER_BZIP2: return "bzip2";
    case ARCHIVE_FILTER_XZ: return "xz";
    default: return "unknown";
  }
}

// Cleans a tar name into a relative path with no ".", "..", or empty components ("." for the root).
Status CleanPath(std::string_view raw, const ImportLimits& limits, std::string* out, std::string_view what) {
  if (raw.empty()) return Status::InvalidArgument(std::string(what) + " is empty");
  if (raw.size() > limits.max_path_bytes) {
    return Status::InvalidArgument(std::string(what) + " is longer than " + std::to_string(limits.max_path_bytes) +
                                   " bytes");
  }
  if (raw[0] == '/') return Status::InvalidArgument(std::string(what) + " is an absolute path");
  out->clear();
  size_t i = 0;
  while (i <= raw.size()) {
    size_t slash = raw.find('/', i);
    if (slash == std::string_view::npos) slash = raw.size();
    std::string_view comp = raw.substr(i, slash - i);
    i = slash + 1;
    if (comp.empty() || comp == ".") continue;
    if (comp == "..") return Status::InvalidArgument(std::string(what) + " has a \"..\" component");
    if (comp.size() > 255) return Status::InvalidArgument(std::string(what) + " has a name longer than 255 bytes");
    if (!out->empty()) out->push_back('/');
    out->append(comp);
  }
  if (out->empty()) *out = ".";
  return {};
}

// Heterogeneous lookup: a std::string_view finds a std::string key without a copy.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

struct Seen {
  EntryType type;
  Digest object;
  uint64_t size;
};

}  // namespace

Result<ImportedLayer> ImportLayerStream(int root_fd, const ImportLimits& limits, ObjectWriter& writer,
                                        ByteSource& source, const LayerExpectation& expect,
                                        ProgressSink* progress, const std::string& progress_id) {
  const std::string where = source.Name();
  // Objects are written in the background; the writer is always finished before this returns.
  // Also on an error return: every content committed so far is then on disk and listed in
  // writer.created(), for the store to remove when no other import may be about to record it.
  struct FinishWriter {
    ObjectWriter& w;
    ~FinishWriter() { (void)w.Finish(); }
  } finish_writer{writer};
  std::string ts_name;
  LS_ASSIGN_OR_RETURN(UniqueFd ts_fd, fsutil::CreateTemp(root_fd, &ts_name));
  TempGuard ts_guard(root_fd, ts_name);
  TarSplitWriter tarsplit(ts_fd.get());
  RawCapture capture(tarsplit);

  CompressedSide compressed{&source, {}, 0, 0, std::vector<char>(kChunk), {}, progress, progress_id};
  // Teeing the blob costs one sequential write of the compressed bytes, no second read.
  std::string blob_name;
  UniqueFd blob_fd;
  if (expect.keep_blob) {
    LS_ASSIGN_OR_RETURN(blob_fd, fsutil::CreateTemp(root_fd, &blob_name));
    compressed.tee_fd = blob_fd.get();
  }
  TempGuard blob_guard(root_fd, blob_name);
  LS_RETURN_IF_ERROR(compressed.Sniff());
  LS_RETURN_IF_ERROR(LoadArchive());
  std::optional<GzipInflater> gzip;
  if (compressed.gzip) {
    gzip.emplace([&compressed](char* buf, size_t cap) -> Result<size_t> {
      auto n = compressed.Pull(buf, cap);
      if (!n.ok()) compressed.error = n.status();  // the source's own error, passed on as it is
      return n;
    });
  }
  ArchivePtr outer;
  int r = ARCHIVE_OK;
  if (!compressed.plain && !compressed.gzip) {
    outer.reset(Archive().archive_read_new());
    Archive().archive_read_support_filter_gzip(outer.get());
    Archive().archive_read_support_filter_zstd(outer.get());
    Archive().archive_read_support_filter_bzip2(outer.get());
    Archive().archive_read_support_filter_xz(outer.get());
    Archive().archive_read_support_format_raw(outer.get());
    auto outer_error = [&](const char* doing) -> Status {
      if (!compressed.error.ok()) return compressed.error;
      const char* msg = Archive().archive_error_string(outer.get());
      return Status::InvalidArgument(where + ": " + doing + ": " + (msg ? msg : "unknown error"));
    };
    if (Archive().archive_read_open(outer.get(), &compressed, nullptr, CompressedRead, nullptr) != ARCHIVE_OK) {
      return outer_error("cannot read layer");
    }
    archive_entry* outer_entry = nullptr;
    r = Archive().archive_read_next_header(outer.get(), &outer_entry);
    if (r == ARCHIVE_EOF) return Status::InvalidArgument(where + ": layer stream is empty");
    if (r < ARCHIVE_WARN) return outer_error("cannot read layer");
  }

  TarSide tar{outer.get(), gzip ? &*gzip : nullptr, &compressed, &capture, limits.max_layer_bytes, where};
  ArchivePtr inner(Archive().archive_read_new());
  Archive().archive_read_support_format_tar(inner.get());
  auto tar_error = [&](const std::string& entry) -> Status {
    if (!tar.error.ok()) return tar.error;
    const char* msg = Archive().archive_error_string(inner.get());
    std::string text = msg ? msg : "unknown error";
    if (text.find("Unrecognized archive format") != std::string::npos) text = "not a tar archive";
    return Status::InvalidArgument(where + (entry.empty() ? "" : ": entry \"" + entry + "\"") + ": " + text);
  };
  if (Archive().archive_read_open(inner.get(), &tar, nullptr, TarRead, nullptr) != ARCHIVE_OK) return tar_error("");

  ImportedLayer result;
  result.info.compression = compressed.plain ? "none"
                            : compressed.gzip ? "gzip"
                                              : CompressionName(Archive().archive_filter_code(outer.get(), 0));
  std::unordered_map<std::string, Seen> seen;
  std::unordered_set<std::string, StringHash, std::equal_to<>> symlinks;  // looked up by prefix views
  std::unordered_map<Digest, std::pair<uint64_t, uint64_t>> objects;  // (entries naming it, size)
  std::string path, last_path;
  std::vector<char> discard(64 << 10);
  uint64_t entries = 0;

  for (;;) {
    archive_entry* ae = nullptr;
    r = Archive().archive_read_next_header(inner.get(), &ae);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) return tar_error(last_path.empty() ? "" : "after " + last_path);
    if (++entries > limits.max_entries) {
      return Status::ResourceExhausted(where + ": layer has more than " + std::to_string(limits.max_entries) +
                                       " entries (--max-entries)");
    }
    const char* raw_name = Archive().archive_entry_pathname(ae);
    std::string shown = raw_name ? raw_name : "";
    auto entry_error = [&](const std::string& msg) {
      return Status::InvalidArgument(where + ": entry \"" + shown + "\": " + msg);
    };
    Status clean = CleanPath(shown, limits, &path, "name");
    if (!clean.ok()) return entry_error(clean.message());
    last_path = path;

    // A name below a symlink of this same layer would be written through the link on extraction.
    for (size_t slash = symlinks.empty() ? std::string::npos : path.find('/'); slash != std::string::npos;
         slash = path.find('/', slash + 1)) {
      if (symlinks.find(std::string_view(path).substr(0, slash)) != symlinks.end()) {
        return entry_error("lies under symlink \"" + path.substr(0, slash) + "\" of the same layer");
      }
    }

    Entry e;
    e.mode = Archive().archive_entry_perm(ae) & 07777;
    e.uid = static_cast<uint32_t>(Archive().archive_entry_uid(ae));
    e.gid = static_cast<uint32_t>(Archive().archive_entry_gid(ae));
    e.mtime_sec = Archive().archive_entry_mtime(ae);
    e.mtime_nsec = static_cast<uint32_t>(Archive().archive_entry_mtime_nsec(ae));
    int64_t declared = Archive().archive_entry_size_is_set(ae) ? Archive().archive_entry_size(ae) : 0;
    if (declared < 0) return entry_error("negative size");
    if (static_cast<uint64_t>(declared) > limits.max_file_bytes) {
      return Status::ResourceExhausted(where + ": entry \"" + shown + "\": size " + std::to_string(declared) +
                                       " exceeds the limit of " + std::to_string(limits.max_file_bytes) +
                                       " bytes (--max-file-size)");
    }

    uint64_t xattr_bytes = 0;
    const char* xname;
    const void* xvalue;
    size_t xsize;
    Archive().archive_entry_xattr_reset(ae);
    while (Archive().archive_entry_xattr_next(ae, &xname, &xvalue, &xsize) == ARCHIVE_OK) {
      xattr_bytes += std::strlen(xname) + xsize;
      if (xattr_bytes > limits.max_xattr_bytes) return entry_error("extended attributes exceed the size limit");
      // bsdtar writes each xattr twice (SCHILY.xattr and LIBARCHIVE.xattr records), and libarchive
      // lists both: one name, one value, the later record winning as pax keywords do.
      std::string value(static_cast<const char*>(xvalue), xsize);
      auto same = std::find_if(e.xattrs.begin(), e.xattrs.end(), [&](const auto& x) { return x.first == xname; });
      if (same != e.xattrs.end()) {
        same->second = std::move(value);
      } else {
        e.xattrs.emplace_back(xname, std::move(value));
      }
    }

    const size_t last_slash = path.rfind('/');
    std::string_view base = std::string_view(path).substr(last_slash == std::string::npos ? 0 : last_slash + 1);
    std::string_view parent = last_slash == std::string::npos ? std::string_view(".") : std::string_view(path).substr(0, last_slash);
    const char* hardlink = Archive().archive_entry_hardlink(ae);
    bool payload = false;  // a plain regular file: its bytes go to an object, not the tar-split
    bool record = true;
    uint64_t data_start = static_cast<uint64_t>(Archive().archive_filter_bytes(inner.get(), 0));
    // libarchive 3.6 drops the sign of a pre-epoch pax mtime's fraction ("-1.25" reads as -1 s +
    // 0.25e9 ns, "-0.5" as +0.5 s): only such a time comes out at or before 0 s with nanoseconds,
    // and it is read again from the entry's own pax header.
    if (e.mtime_sec <= 0 && e.mtime_nsec > 0) {
      auto pax = PaxRecord(capture.Pending(data_start), capture.keep_from(), "mtime");
      if (pax) ParsePaxTime(*pax, &e.mtime_sec, &e.mtime_nsec);  // else libarchive's reading stands
    }

    if (base.rfind(kWhiteoutPrefix, 0) == 0) {
      if (base == kOpaqueMarker) {
        e.type = EntryType::kOpaque;
        e.path = parent;
      } else if (base.rfind(kWhiteoutMetaPrefix, 0) == 0) {
        record = false;  // AUFS bookkeeping (.wh..wh.plnk etc.): Docker skips it too
      } else {
        std::string hidden(base.substr(kWhiteoutPrefix.size()));
        if (hidden.empty() || hidden == "." || hidden == "..") return entry_error("whiteout names no file");
        e.type = EntryType::kWhiteout;
        e.path = parent == "." ? hidden : std::string(parent) + "/" + hidden;
      }
      if (declared != 0 || (hardlink == nullptr && Archive().archive_entry_filetype(ae) != AE_IFREG)) {
        return entry_error("whiteout must be an empty regular file");
      }
    } else if (hardlink) {
      std::string target;
      Status ts = CleanPath(hardlink, limits, &target, "hardlink target");
      if (!ts.ok()) {
        return entry_error(ts.message() + " (hardlink to \"" + std::string(hardlink) + "\", outside the layer)");
      }
      auto it = seen.find(target);
      if (it == seen.end()) return entry_error("hardlink to \"" + target + "\", which is not earlier in the layer");
      if (it->second.type == EntryType::kDirectory) return entry_error("hardlink to a directory");
      e.type = EntryType::kHardlink;
      e.path = path;
      e.link_target = target;
      e.object = it->second.object;
      e.size = it->second.size;
    } else {
      e.path = path;
      switch (Archive().archive_entry_filetype(ae)) {
        case AE_IFREG:
          e.type = EntryType::kRegular;
          e.size = static_cast<uint64_t>(declared);
          e.sparse = Archive().archive_entry_sparse_count(ae) > 0;
          payload = !e.sparse;
          break;
        case AE_IFDIR:
          e.type = EntryType::kDirectory;
          break;
        case AE_IFLNK: {
          e.type = EntryType::kSymlink;
          const char* target = Archive().archive_entry_symlink(ae);
          e.link_target = target ? target : "";
          if (e.link_target.empty()) return entry_error("symlink with an empty target");
          if (e.link_target.size() > limits.max_path_bytes) return entry_error("symlink target too long");
          break;
        }
        case AE_IFCHR:
        case AE_IFBLK:
          e.type = Archive().archive_entry_filetype(ae) == AE_IFCHR ? EntryType::kCharDevice : EntryType::kBlockDevice;
          e.dev_major = static_cast<uint32_t>(Archive().archive_entry_rdevmajor(ae));
          e.dev_minor = static_cast<uint32_t>(Archive().archive_entry_rdevminor(ae));
          break;
        case AE_IFIFO:
          e.type = EntryType::kFifo;
          break;
        default:
          return entry_error("unsupported entry type");
      }
    }

    if (payload) {
      LS_RETURN_IF_ERROR(capture.SkipPayload(data_start, e.size));
    }
    if (e.type == EntryType::kRegular) {
      LS_RETURN_IF_ERROR(writer.Begin(e.size, path));
    }
    // Read the entry's data: into the object for regular files, else only to keep the raw
    // capture flushing as it goes (data of other entries stays in the tar-split).
    uint64_t delivered = 0;
    for (;;) {
      const void* block;
      size_t size;
      la_int64_t offset;
      int rb = Archive().archive_read_data_block(inner.get(), &block, &size, &offset);
      if (rb == ARCHIVE_EOF) break;
      if (rb < ARCHIVE_WARN) return tar_error(shown);
      delivered += size;
      if (e.type == EntryType::kRegular) {
        Status ws = writer.Write(static_cast<uint64_t>(offset), block, size);
        if (!ws.ok()) return ws.WithContext(where);
      }
      if (!payload) LS_RETURN_IF_ERROR(capture.EmitUpTo(static_cast<uint64_t>(Archive().archive_filter_bytes(inner.get(), 0))));
    }
    if (e.type == EntryType::kRegular) {
      auto d = writer.Commit();
      if (!d.ok()) return d.status().WithContext(where);
      e.object = *d;
      if (payload) {
        if (delivered != e.size) return entry_error("data is shorter than its declared size");
        LS_RETURN_IF_ERROR(tarsplit.Payload(e.object, e.size));
      }
    }

    if (!record) continue;
    if (e.type == EntryType::kSymlink) {
      symlinks.insert(e.path);
    } else if (e.type != EntryType::kWhiteout && e.type != EntryType::kOpaque) {
      symlinks.erase(e.path);
    }
    if (e.type != EntryType::kWhiteout && e.type != EntryType::kOpaque) {
      EntryType kind = e.type == EntryType::kHardlink ? seen[e.link_target].type : e.type;
      seen[e.path] = Seen{kind, e.object, e.size};
    }
    if (e.NamesObject()) {
      auto& [count, size] = objects[e.object];
      ++count;
      size = e.size;
    }
    if (e.type == EntryType::kRegular || e.type == EntryType::kHardlink) result.info.content_size += e.size;
    if (e.type == EntryType::kSymlink) result.info.content_size += e.link_target.size();
    result.encoded_entries.push_back(EncodeEntry(e));
  }

  // Whatever follows the end-of-archive blocks is part of the diff_id and of the tar-split.
  for (;;) {
    auto n = tar.Pull();
    if (!n.ok()) return n.status();
    if (*n == 0) break;
  }
  LS_RETURN_IF_ERROR(capture.EmitUpTo(capture.fed_end()));
  if (capture.keep_from() != capture.fed_end()) return Status::InvalidArgument(where + ": truncated tar archive");
  while (!compressed.plain) {  // (a plain stream was read to its end by the tar side)
    auto n = compressed.Pull(compressed.buf.data(), compressed.buf.size());
    if (!n.ok()) return n.status();
    if (*n == 0) break;
  }

  // Sorted, so that the store updates the objects table in key order.
  result.objects.assign(objects.begin(), objects.end());
  std::sort(result.objects.begin(), result.objects.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  LayerInfo& info = result.info;
  info.diff_id = tar.hash.Finish();
  info.tar_size = capture.fed_end();
  info.entry_count = result.encoded_entries.size();
  info.blob_digest = compressed.plain ? info.diff_id : compressed.hash.Finish();
  info.blob_size = compressed.bytes;
  if (expect.blob_size && *expect.blob_size != info.blob_size) {
    return Status::InvalidArgument(where + ": size mismatch: expected " + std::to_string(*expect.blob_size) +
                                   " bytes, read " + std::to_string(info.blob_size));
  }
  if (expect.blob_digest && *expect.blob_digest != info.blob_digest) {
    return Status::InvalidArgument(where + ": digest mismatch: expected " + expect.blob_digest->str() + ", got " +
                                   info.blob_digest.str());
  }
  if (expect.diff_id && *expect.diff_id != info.diff_id) {
    return Status::InvalidArgument(where + ": diff_id mismatch: expected " + expect.diff_id->str() +
                                   ", uncompressed content has " + info.diff_id.str());
  }
  Status written = writer.Finish();
  if (!written.ok()) return written.WithContext(where);
  info.new_bytes = writer.new_bytes();
  LS_RETURN_IF_ERROR(tarsplit.Finish(info.diff_id, info.tar_size));
  if (blob_fd) {
    // Blobs are read-only in the store, like configs and objects.
    if (::fchmod(blob_fd.get(), 0444) != 0) return Status::FromErrno("chmod of kept blob", errno);
    blob_fd.Reset();
    result.blob_temp = blob_guard.Release();
  }
  ts_fd.Reset();
  result.tarsplit_temp = ts_guard.Release();
  if (expect.on_written) expect.on_written();
  return result;
}

}  // namespace layerstore
