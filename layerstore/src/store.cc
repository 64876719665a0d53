#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <nlohmann/json.hpp>

#include "fsutil.h"
#include "layerstore/io.h"
#include "layer_import.h"
#include "object_prefetch.h"
#include "layerstore/sha256.h"
#include "paths.h"
#include "rootfs_index.h"
#include "store_impl.h"
#include "tarsplit.h"

namespace layerstore {
namespace {

// Virtual address space only: LMDB grows the file as pages are used.
constexpr size_t kMapSize = size_t{64} << 30;

// A layer with fewer files is exported before prefetch threads would pay off.
constexpr size_t kPrefetchMinObjects = 32;

class FlockLease final : public WriteLease {
 public:
  FlockLease(StoreImpl* store, UniqueFd fd) : store_(store), fd_(std::move(fd)) {}
  ~FlockLease() override {
    fd_.Reset();  // closing the description releases the shared lock
    store_->ReleaseLease();
  }

 private:
  StoreImpl* store_;
  UniqueFd fd_;
};

LayerInfo ToInfo(const Digest& diff_id, const LayerRecord& r) {
  LayerInfo info;
  info.diff_id = diff_id;
  info.tar_size = r.tar_size;
  info.content_size = r.content_size;
  info.entry_count = r.entry_count;
  info.blob_digest = r.blob_digest;
  info.blob_size = r.blob_size;
  info.compression = r.compression;
  info.refcount = r.refcount;
  return info;
}

}  // namespace

Result<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) { return StoreImpl::OpenImpl(options); }

Result<std::unique_ptr<Store>> StoreImpl::OpenImpl(const StoreOptions& options) {
  if (options.root.empty()) return Status::InvalidArgument("store root is empty");
  // Create the root and its parents (mkdir -p) with private permissions.
  for (size_t pos = 1; pos <= options.root.size(); ++pos) {
    if (pos == options.root.size() || options.root[pos] == '/') {
      std::string prefix = options.root.substr(0, pos);
      if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
        return Status::FromErrno("creating store root " + prefix, errno);
      }
    }
  }
  UniqueFd root_fd(::open(options.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd) return Status::FromErrno("opening store root " + options.root, errno);

  // The format file decides whether this is ours before anything is written.
  auto format = fsutil::ReadFileAt(root_fd.get(), paths::kFormatFile);
  if (format.ok()) {
    auto j = nlohmann::json::parse(*format, nullptr, false);
    if (j.is_discarded() || !j.is_object() || j.value("format", "") != "strata-store") {
      return Status::FailedPrecondition(options.root + " is not a strata store (" + paths::kFormatFile +
                                        " is foreign)");
    }
    int version = j.value("version", 0);
    if (version > std::stoi(std::string(kFormatVersion))) {
      return Status::FailedPrecondition(options.root + " was written by a newer strata (store format " +
                                        std::to_string(version) + ", this build reads " +
                                        std::string(kFormatVersion) + ")");
    }
  } else if (!format.status().IsNotFound()) {
    return format.status();
  } else {
    // A non-empty directory without our format file is someone else's: refuse to scribble on it.
    UniqueFd probe(::openat(root_fd.get(), paths::kMetaDir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (probe) return Status::FailedPrecondition(options.root + " has metadata but no " + paths::kFormatFile);
    // A new store: the format file comes first (before meta/), so a crash while the rest is
    // created leaves a root the next open completes, not one it must refuse as foreign.
    LS_RETURN_IF_ERROR(fsutil::MkdirAt(root_fd.get(), paths::kTmpDir, 0700));
    nlohmann::json j = {{"format", "strata-store"}, {"version", std::stoi(std::string(kFormatVersion))}};
    LS_RETURN_IF_ERROR(fsutil::WriteFileAtomicAt(root_fd.get(), paths::kFormatFile, j.dump() + "\n", 0644));
  }

  // The layout's directories; an open also adds those a store made by an older strata lacks.
  for (const char* dir : {paths::kMetaDir, "blobs", paths::kBlobsDir, paths::kObjectsDir, paths::kLayersDir,
                          paths::kTmpDir, paths::kChainsDir, paths::kContainersDir, paths::kMountsDir}) {
    LS_RETURN_IF_ERROR(fsutil::MkdirAt(root_fd.get(), dir, 0700));
  }
  // Every command and every mount daemon opens the store, so the 256 object shards cost one stat
  // once made: objects/ff comes last, after the others are durable, so its presence means all are
  // there even if a crash cut the first open short.
  const std::string last_shard = paths::ObjectShard(255);
  struct stat st;
  if (::fstatat(root_fd.get(), last_shard.c_str(), &st, 0) != 0) {
    for (unsigned shard = 0; shard < 255; ++shard) {
      LS_RETURN_IF_ERROR(fsutil::MkdirAt(root_fd.get(), paths::ObjectShard(shard), 0755));
    }
    LS_RETURN_IF_ERROR(fsutil::FsyncPath(root_fd.get(), paths::kObjectsDir));
    LS_RETURN_IF_ERROR(fsutil::MkdirAt(root_fd.get(), last_shard, 0755));
  }
  LS_ASSIGN_OR_RETURN(auto env, lmdb::Env::Open(options.root + "/" + paths::kMetaDir, kMapSize));
  std::unique_ptr<StoreImpl> store(new StoreImpl(options, std::move(root_fd), std::move(env)));
  LS_RETURN_IF_ERROR(store->Init());
  return std::unique_ptr<Store>(std::move(store));
}

Status StoreImpl::Init() {
  // Nearly every open finds the tables and the format in place: then a read transaction does,
  // and opening the store never waits for another process's writer (an import, a lease update).
  {
    Tables rt;
    auto reader = Begin(false, &rt);
    if (reader.ok()) {
      auto version = reader->Get(rt.meta, "format");
      // Committed, not aborted: only then do the table handles it opened stay open for the
      // environment's later transactions, which open tables from several threads at once.
      if (version.ok() && *version && **version == kFormatVersion) return reader->Commit();
    }
  }
  // A new store, or one an older strata made without some table: created here.
  Tables t;
  LS_ASSIGN_OR_RETURN(lmdb::Txn txn, Begin(true, &t));
  LS_ASSIGN_OR_RETURN(auto version, txn.Get(t.meta, "format"));
  if (!version) {
    LS_RETURN_IF_ERROR(txn.Put(t.meta, "format", kFormatVersion));
  } else if (*version != kFormatVersion) {
    return Status::FailedPrecondition("store metadata has format " + std::string(*version) + ", expected " +
                                      std::string(kFormatVersion));
  }
  return txn.Commit();
}

Result<lmdb::Txn> StoreImpl::Begin(bool write, Tables* tables) {
  LS_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(*env_, write));
  LS_ASSIGN_OR_RETURN(*tables, Tables::Open(txn));
  return txn;
}

Result<std::unique_ptr<WriteLease>> StoreImpl::AcquireWriteLease() {
  UniqueFd fd(::openat(root_fd_.get(), paths::kLockFile, O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return Status::FromErrno("opening gc.lock", errno);
  while (::flock(fd.get(), LOCK_SH) != 0) {
    if (errno != EINTR) return Status::FromErrno("locking gc.lock", errno);
  }
  ++lease_depth_;
  return std::unique_ptr<WriteLease>(new FlockLease(this, std::move(fd)));
}

Result<UniqueFd> StoreImpl::LockExclusive() {
  UniqueFd fd(::openat(root_fd_.get(), paths::kLockFile, O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return Status::FromErrno("opening gc.lock", errno);
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return Status::FromErrno("locking gc.lock", errno);
  }
  return fd;
}

void StoreImpl::NoteAbandonedObjects(const std::vector<Digest>& objects) {
  std::lock_guard<std::mutex> lock(abandoned_mu_);
  abandoned_.insert(abandoned_.end(), objects.begin(), objects.end());
}

void StoreImpl::ReleaseLease() {
  std::lock_guard<std::mutex> lock(abandoned_mu_);
  if (--lease_depth_ > 0 || abandoned_.empty()) return;
  // Only when no other writer holds the lock may an unrecorded object be removed: another import
  // could have found the file and be about to record it.
  UniqueFd fd(::openat(root_fd_.get(), paths::kLockFile, O_RDWR | O_CLOEXEC));
  if (!fd || ::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) return;  // fsck will collect them
  Tables t;
  auto txn = Begin(false, &t);
  if (!txn.ok()) return;
  for (const Digest& d : abandoned_) {
    auto row = txn->Get(t.objects, d.raw());
    if (row.ok() && !row->has_value()) ::unlinkat(root_fd_.get(), paths::Object(d).c_str(), 0);
  }
  abandoned_.clear();
}

Result<Digest> StoreImpl::PutBlob(std::string_view bytes, const Digest* expected, std::string_view media_type) {
  (void)media_type;  // recorded when an image references the blob
  Digest d = Sha256::Of(bytes);
  if (expected && *expected != d) {
    return Status::InvalidArgument("blob digest mismatch: expected " + expected->str() + ", got " + d.str());
  }
  std::string path = paths::Blob(d);
  struct stat st;
  if (::fstatat(root_fd_.get(), path.c_str(), &st, 0) == 0 && static_cast<size_t>(st.st_size) == bytes.size()) {
    return d;
  }
  LS_RETURN_IF_ERROR(fsutil::WriteFileAtomicAt(root_fd_.get(), path, bytes, 0444));
  return d;
}

Result<std::string> StoreImpl::ReadBlob(const Digest& digest) {
  auto data = fsutil::ReadFileAt(root_fd_.get(), paths::Blob(digest));
  if (!data.ok()) {
    if (data.status().IsNotFound()) return Status::NotFound("blob " + digest.str() + " is not in the store");
    return data.status();
  }
  return data;
}

Result<std::optional<LayerInfo>> StoreImpl::FindLayer(const Digest& diff_id) {
  Tables t;
  LS_ASSIGN_OR_RETURN(lmdb::Txn txn, Begin(false, &t));
  LS_ASSIGN_OR_RETURN(auto row, txn.Get(t.layers, diff_id.raw()));
  if (!row) return std::optional<LayerInfo>();
  LS_ASSIGN_OR_RETURN(LayerRecord rec, DecodeLayer(*row));
  return std::optional<LayerInfo>(ToInfo(diff_id, rec));
}

Result<LayerInfo> StoreImpl::ImportLayer(ByteSource& source, const LayerExpectation& expect,
                                         ProgressSink* progress) {
  if (lease_depth_ == 0) return Status::FailedPrecondition("ImportLayer without a write lease");
  if (expect.diff_id) {
    LS_ASSIGN_OR_RETURN(auto existing, FindLayer(*expect.diff_id));
    if (existing) return *existing;
  }

  Tables rt;
  LS_ASSIGN_OR_RETURN(lmdb::Txn reader, Begin(false, &rt));
  ObjectWriter writer(root_fd_.get(), [&](const Digest& d) {
    auto row = reader.Get(rt.objects, d.raw());
    return row.ok() && row->has_value();
  });
  std::string progress_id = expect.diff_id ? expect.diff_id->hex().substr(0, 12)
                                           : (expect.blob_digest ? expect.blob_digest->hex().substr(0, 12) : "layer");
  auto imported = ImportLayerStream(root_fd_.get(), options_.limits, writer, source, expect, progress, progress_id);
  reader.Abort();
  if (!imported.ok()) {
    NoteAbandonedObjects(writer.created());
    return imported.status();
  }
  ImportedLayer& layer = *imported;
  const Digest& diff_id = layer.info.diff_id;
  auto discard_tarsplit = [&] { ::unlinkat(root_fd_.get(), layer.tarsplit_temp.c_str(), 0); };
  // The kept compressed blob (keep_blob) is published beside the tar-split and made durable by the
  // same syncfs; its blobs row commits with the layer row. Until then nothing names the file, so
  // a crash leaves only a file fsck removes.
  const std::string kept_blob = layer.blob_temp.empty() ? "" : paths::Blob(layer.info.blob_digest);
  auto discard_blob = [&] {
    if (!layer.blob_temp.empty()) ::unlinkat(root_fd_.get(), layer.blob_temp.c_str(), 0);
  };

  // Publish the tar-split, then make every file of the layer durable with one syncfs before the
  // metadata names them.
  Status s = fsutil::MkdirAt(root_fd_.get(), paths::LayerDir(diff_id), 0700);
  if (s.ok() && ::renameat(root_fd_.get(), layer.tarsplit_temp.c_str(), root_fd_.get(),
                           paths::TarSplit(diff_id).c_str()) != 0) {
    s = Status::FromErrno("publishing tar-split of " + diff_id.str(), errno);
  }
  if (s.ok() && !kept_blob.empty()) {
    if (::renameat(root_fd_.get(), layer.blob_temp.c_str(), root_fd_.get(), kept_blob.c_str()) != 0) {
      s = Status::FromErrno("publishing blob " + layer.info.blob_digest.str(), errno);
    } else {
      layer.blob_temp.clear();
    }
  }
  if (s.ok() && ::syncfs(root_fd_.get()) != 0) s = Status::FromErrno("syncfs on the store", errno);
  if (!s.ok()) {
    discard_tarsplit();
    discard_blob();
    NoteAbandonedObjects(writer.created());
    return s;
  }

  Tables t;
  LS_ASSIGN_OR_RETURN(lmdb::Txn txn, Begin(true, &t));
  LS_ASSIGN_OR_RETURN(auto existing, txn.Get(t.layers, diff_id.raw()));
  if (existing) {
    // Imported meanwhile by someone else (or the stream had no expected diff_id): theirs stands,
    // and its tar-split is byte-identical to ours.
    LS_ASSIGN_OR_RETURN(LayerRecord rec, DecodeLayer(*existing));
    if (!kept_blob.empty()) {
      // Our kept blob stays only if it is the existing layer's blob and nothing records it yet.
      LS_ASSIGN_OR_RETURN(auto blob_row, txn.Get(t.blobs, rec.blob_digest.raw()));
      if (rec.blob_digest == layer.info.blob_digest && !blob_row) {
        BlobRecord blob{1, layer.info.blob_size, expect.blob_media_type};
        LS_RETURN_IF_ERROR(txn.Put(t.blobs, rec.blob_digest.raw(), EncodeBlob(blob)));
        LS_RETURN_IF_ERROR(txn.Commit());
      } else if (!blob_row) {
        ::unlinkat(root_fd_.get(), kept_blob.c_str(), 0);
      }
    }
    return ToInfo(diff_id, rec);
  }
  for (size_t i = 0; i < layer.encoded_entries.size(); ++i) {
    LS_RETURN_IF_ERROR(txn.Put(t.entries, EntryKey(diff_id, static_cast<uint32_t>(i)), layer.encoded_entries[i]));
  }
  for (const auto& [digest, use] : layer.objects) {
    LS_ASSIGN_OR_RETURN(auto row, txn.Get(t.objects, digest.raw()));
    ObjectRecord rec;
    if (row) {
      LS_ASSIGN_OR_RETURN(rec, DecodeObject(*row));
    }
    rec.refcount += use.first;
    rec.size = use.second;
    LS_RETURN_IF_ERROR(txn.Put(t.objects, digest.raw(), EncodeObject(rec)));
  }
  LayerRecord rec;
  rec.tar_size = layer.info.tar_size;
  rec.content_size = layer.info.content_size;
  rec.entry_count = layer.info.entry_count;
  rec.blob_digest = layer.info.blob_digest;
  rec.blob_size = layer.info.blob_size;
  rec.compression = layer.info.compression;
  LS_RETURN_IF_ERROR(txn.Put(t.layers, diff_id.raw(), EncodeLayer(rec)));
  if (!kept_blob.empty()) {
    // Refcount 1: the layer keeping it (fsck counts it from the layer row the same way).
    BlobRecord blob{1, layer.info.blob_size, expect.blob_media_type};
    LS_RETURN_IF_ERROR(txn.Put(t.blobs, layer.info.blob_digest.raw(), EncodeBlob(blob)));
  }
  LS_RETURN_IF_ERROR(txn.Commit());
  LayerInfo info = layer.info;
  info.refcount = 0;
  return info;
}

Status StoreImpl::ForEachEntry(const Digest& diff_id, const std::function<bool(const Entry&)>& fn) {
  Tables t;
  LS_ASSIGN_OR_RETURN(lmdb::Txn txn, Begin(false, &t));
  Status inner;
  LS_RETURN_IF_ERROR(txn.Scan(t.entries, diff_id.raw(), [&](std::string_view, std::string_view value) {
    auto e = DecodeEntry(value);
    if (!e.ok()) {
      inner = e.status().WithContext("layer " + diff_id.str());
      return false;
    }
    return fn(*e);
  }));
  return inner;
}

Status StoreImpl::ExportLayer(const Digest& diff_id, ByteSink& sink, ProgressSink* progress) {
  LS_ASSIGN_OR_RETURN(auto layer, FindLayer(diff_id));
  if (!layer) return Status::NotFound("layer " + diff_id.str() + " is not in the store");
  std::string ts_path = paths::TarSplit(diff_id);
  UniqueFd ts(::openat(root_fd_.get(), ts_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ts) return Status::FromErrno("opening tar-split of layer " + diff_id.str(), errno);

  Sha256 hash;
  uint64_t written = 0, reported = 0;
  std::string id = diff_id.hex().substr(0, 12);
  if (progress) progress->Begin(id, "Writing layer", layer->tar_size);
  auto emit = [&](const void* data, size_t n) -> Status {
    hash.Update(data, n);
    written += n;
    if (progress && written - reported >= (1 << 20)) {
      progress->Update(id, written);
      reported = written;
    }
    return sink.Write(data, n);
  };
  // A first pass over the tar-split (a small file) lists the objects to read, for the prefetch.
  std::vector<std::pair<Digest, uint64_t>> reads;
  LS_RETURN_IF_ERROR(TarSplitReader::Replay(
      ts.get(), [](std::string_view) { return Status(); },
      [&](const Digest& object, uint64_t size) {
        reads.emplace_back(object, size);
        return Status();
      },
      nullptr, nullptr));
  if (::lseek(ts.get(), 0, SEEK_SET) != 0) return Status::FromErrno("rewinding the tar-split of layer " + diff_id.str(), errno);
  std::optional<ObjectPrefetcher> prefetch;
  if (reads.size() >= kPrefetchMinObjects) prefetch.emplace(root_fd_.get(), std::move(reads));
  size_t read_index = 0;

  std::vector<char> buf(1 << 20);
  auto raw = [&](std::string_view bytes) { return emit(bytes.data(), bytes.size()); };
  auto payload = [&](const Digest& object, uint64_t size) -> Status {
    if (prefetch) prefetch->Reading(read_index++);
    std::string path = paths::Object(object);
    UniqueFd fd(::openat(root_fd_.get(), path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return Status::FromErrno("layer " + diff_id.str() + ": opening object " + object.str(), errno);
    ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
    uint64_t left = size;
    while (left > 0) {
      LS_ASSIGN_OR_RETURN(size_t n, ReadFull(fd.get(), buf.data(),
                                                     static_cast<size_t>(std::min<uint64_t>(left, buf.size())), path));
      if (n == 0) return Status::Corruption("object " + object.str() + " is shorter than recorded");
      LS_RETURN_IF_ERROR(emit(buf.data(), n));
      left -= n;
    }
    return {};
  };
  Digest recorded;
  uint64_t recorded_size = 0;
  LS_RETURN_IF_ERROR(TarSplitReader::Replay(ts.get(), raw, payload, &recorded, &recorded_size));
  Digest actual = hash.Finish();
  if (actual != diff_id || recorded != diff_id || written != recorded_size) {
    return Status::Corruption("layer " + diff_id.str() + " regenerated as " + actual.str() +
                              ": the store is damaged (run strata fsck --verify-content)");
  }
  if (progress) progress->End(id, "Written");
  return {};
}

}  // namespace layerstore

namespace layerstore {

Result<std::unique_ptr<RootfsIndex>> StoreImpl::OpenRootfs(const std::vector<Digest>& layers, bool raw) {
  if (raw && layers.size() != 1) return Status::InvalidArgument("a raw layer view takes exactly one layer");
  Digest chain = raw ? Sha256::Of("raw " + layers[0].str()) : ChainId(layers);
  std::string path = paths::ChainIndex(chain);
  auto opened = OpenRootfsIndex(root_fd_.get(), path);
  if (opened.ok() && (*opened)->chain_id() == chain) return opened;

  std::vector<LayerEntries> sources;
  for (const Digest& diff_id : layers) {
    LS_ASSIGN_OR_RETURN(auto info, FindLayer(diff_id));
    if (!info) return Status::NotFound("layer " + diff_id.str() + " is not in the store");
    sources.push_back([this, diff_id](const std::function<Status(const Entry&)>& fn) {
      Status inner;
      LS_RETURN_IF_ERROR(ForEachEntry(diff_id, [&](const Entry& e) {
        inner = fn(e);
        return inner.ok();
      }));
      return inner;
    });
  }
  LS_ASSIGN_OR_RETURN(std::string bytes, BuildRootfsIndex(chain, sources, raw));
  LS_RETURN_IF_ERROR(fsutil::WriteFileAtomicAt(root_fd_.get(), path, bytes, 0444));
  return OpenRootfsIndex(root_fd_.get(), path);
}

Result<UniqueFd> StoreImpl::OpenObject(const Digest& object) {
  UniqueFd fd(::openat(root_fd_.get(), paths::Object(object).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Status::FromErrno("opening object " + object.str(), errno);
  return fd;
}

}  // namespace layerstore
