#include "registry/push.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <cstring>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "layerstore/sha256.h"
#include "parallel.h"

namespace registry {
namespace {

using layerstore::Digest;
using layerstore::Result;
using layerstore::Status;
using ordered_json = nlohmann::ordered_json;

std::string ShortId(const Digest& d) { return d.hex().substr(0, 12); }

std::string OciLayerType(const std::string& compression) {
  if (compression == "gzip") return std::string(kOciLayerGzip);
  if (compression == "zstd") return std::string(kOciLayerZstd);
  return std::string(kOciLayerTar);
}

// Sends the full chunks of a chunked upload on a thread of its own, so that the layer's export
// and compression go on while a chunk travels (a PATCH of 8 MiB waits for the registry to store
// it). At most one chunk waits behind the one being sent; the session belongs to this thread
// until Finish.
class ChunkUploader {
 public:
  ChunkUploader(Client& client, const std::string& repository, UploadSession* session)
      : client_(client), repository_(repository), session_(session), thread_([this] { Loop(); }) {}
  ~ChunkUploader() { (void)Finish(); }
  ChunkUploader(const ChunkUploader&) = delete;
  ChunkUploader& operator=(const ChunkUploader&) = delete;

  // Queues `chunk`; waits while another is queued. A failed upload fails this and every later call.
  Status Submit(std::string chunk) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !queued_ || !error_.ok(); });
    if (!error_.ok()) return error_;
    queued_ = std::move(chunk);
    cv_.notify_all();
    return {};
  }

  // Waits until every queued chunk is sent (or one failed).
  Status Finish() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    return error_;
  }

 private:
  void Loop() {
    for (;;) {
      std::string chunk;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return queued_ || done_; });
        if (!queued_) return;
        chunk = std::move(*queued_);
        queued_.reset();
        cv_.notify_all();
      }
      Status s = client_.UploadChunk(repository_, session_, chunk);
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mu_);
        error_ = s;
        cv_.notify_all();
        return;
      }
    }
  }

  Client& client_;
  const std::string& repository_;
  UploadSession* session_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<std::string> queued_;  // guarded by mu_
  bool done_ = false;                  // guarded by mu_
  Status error_;                       // guarded by mu_ until the thread is joined
  std::thread thread_;                 // last: started once the rest is ready
};

// One way to make a layer's blob present in the target repository.
struct Candidate {
  enum Kind { kExists, kMount, kUploadKept, kRecompress } kind;
  Descriptor blob;         // unknown digest for kRecompress until uploaded
  std::string mount_from;  // repository path in the same registry (kMount)
};

struct LayerPlan {
  Digest diff_id;
  std::string id;  // progress id: short diff_id, as docker push shows
  layerstore::LayerInfo info;
  std::vector<Candidate> candidates;  // tried in order
  Descriptor result;                  // the blob the manifest names, once done
};

// Counts the uncompressed bytes ExportLayer reports under the layer's progress line; the
// line's Begin/End belong to the push.
class ExportProgress final : public layerstore::ProgressSink {
 public:
  ExportProgress(layerstore::ProgressSink* inner, std::string id) : inner_(inner), id_(std::move(id)) {}
  void Update(const std::string&, uint64_t done) override {
    if (inner_) inner_->Update(id_, done);
  }

 private:
  layerstore::ProgressSink* inner_;
  std::string id_;
};

size_t ChunkSizeFromEnvironment(size_t fallback) {
  const char* v = std::getenv("STRATA_REGISTRY_CHUNK_SIZE");
  if (!v || !*v) return fallback;
  long long n = std::atoll(v);
  return n >= 1024 ? static_cast<size_t>(n) : fallback;
}

class Pusher {
 public:
  Pusher(layerstore::Store& store, Client& client, const layerstore::Reference& target, const PushOptions& options,
         layerstore::ProgressSink* progress)
      : store_(store),
        client_(client),
        repo_(target.path),
        here_(Location(client.domain(), target.path)),
        options_(options),
        progress_(progress) {}

  // Returns false (with no error) when the candidate does not apply after all (blob gone,
  // mount refused); the next one is tried.
  Result<bool> Try(LayerPlan& plan, const Candidate& c, std::atomic<bool>* cancel) {
    switch (c.kind) {
      case Candidate::kExists: {
        LS_ASSIGN_OR_RETURN(auto size, client_.HeadBlob(repo_, c.blob.digest, "pull,push"));
        if (!size) {
          // The record is stale (the registry was wiped or garbage-collected).
          Status s = store_.ForgetRemoteBlob(plan.diff_id, here_);
          if (!s.ok()) spdlog::warn("{}", s.message());
          return false;
        }
        plan.result = c.blob;
        End(plan, "Layer already exists");
        ++existed_;
        return true;
      }
      case Candidate::kMount: {
        LS_ASSIGN_OR_RETURN(auto session, client_.StartUpload(repo_, &c.blob.digest, c.mount_from));
        if (session) return false;  // 202: the registry would rather take an upload
        plan.result = c.blob;
        End(plan, "Mounted from " + c.mount_from);
        ++mounted_;
        return true;
      }
      case Candidate::kUploadKept: {
        LS_ASSIGN_OR_RETURN(auto size, client_.HeadBlob(repo_, c.blob.digest, "pull,push"));
        if (size) {
          plan.result = c.blob;
          End(plan, "Layer already exists");
          ++existed_;
          return true;
        }
        auto fd = store_.OpenLayerBlob(plan.diff_id);
        if (!fd.ok()) return false;
        LS_RETURN_IF_ERROR(UploadKept(plan, c.blob, fd->get(), cancel));
        plan.result = c.blob;
        End(plan, "Pushed");
        ++uploaded_;
        return true;
      }
      case Candidate::kRecompress: {
        LS_ASSIGN_OR_RETURN(plan.result, UploadRecompressed(plan, c.blob.media_type, cancel));
        End(plan, "Pushed");
        ++uploaded_;
        return true;
      }
    }
    return false;
  }

  Status PushLayer(LayerPlan& plan, std::atomic<bool>* cancel) {
    for (const Candidate& c : plan.candidates) {
      if (cancel->load()) return Status::Unavailable("cancelled");
      LS_ASSIGN_OR_RETURN(bool done, Try(plan, c, cancel));
      if (done) return {};
    }
    return Status::FailedPrecondition("layer " + plan.diff_id.str() + ": no way to provide blob " +
                                      (plan.candidates.empty() ? std::string("?") : plan.candidates[0].blob.digest.str()));
  }

  Status UploadKept(LayerPlan& plan, const Descriptor& blob, int fd, std::atomic<bool>* cancel) {
    if (progress_) progress_->Begin(plan.id, "Pushing", blob.size);
    uint64_t offset = 0;
    auto reader = [&](char* buf, size_t size) -> Result<size_t> {
      if (cancel->load()) return Status::Unavailable("cancelled");
      for (;;) {
        ssize_t n = ::pread(fd, buf, size, static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Status::FromErrno("reading kept blob " + blob.digest.str(), errno);
        offset += static_cast<uint64_t>(n);
        if (progress_) progress_->Update(plan.id, offset);
        return static_cast<size_t>(n);
      }
    };
    auto rewind = [&]() -> Status {
      offset = 0;
      return {};
    };
    return client_.UploadMonolithic(repo_, blob.digest, blob.size, reader, rewind);
  }

  Result<Descriptor> UploadRecompressed(LayerPlan& plan, const std::string& media_type, std::atomic<bool>* cancel) {
    LS_ASSIGN_OR_RETURN(Compression kind, ParseCompression(MediaTypeCompression(media_type)));
    if (progress_) progress_->Begin(plan.id, "Pushing", plan.info.tar_size);
    LS_ASSIGN_OR_RETURN(auto session, client_.StartUpload(repo_));
    layerstore::Sha256 hash;
    uint64_t size = 0;
    std::string chunk;
    const size_t chunk_size = ChunkSizeFromEnvironment(options_.chunk_size);
    chunk.reserve(chunk_size);
    ChunkUploader uploader(client_, repo_, &*session);
    auto out = [&](const char* data, size_t n) -> Status {
      if (cancel->load()) return Status::Unavailable("cancelled");
      hash.Update(data, n);
      size += n;
      while (n > 0) {
        size_t take = std::min(n, chunk_size - chunk.size());
        chunk.append(data, take);
        data += take;
        n -= take;
        if (chunk.size() == chunk_size) {
          LS_RETURN_IF_ERROR(uploader.Submit(std::exchange(chunk, std::string())));
          chunk.reserve(chunk_size);
        }
      }
      return {};
    };
    LS_ASSIGN_OR_RETURN(auto sink, CompressingSink::Create(kind, out));
    ExportProgress export_progress(progress_, plan.id);
    Status exported = store_.ExportLayer(plan.diff_id, *sink, &export_progress);
    if (exported.ok()) exported = sink->Finish();
    // The upload's own failure says more than the export's "cancelled" or a full queue.
    Status sent = uploader.Finish();
    LS_RETURN_IF_ERROR(sent);
    LS_RETURN_IF_ERROR(exported);
    Digest digest = hash.Finish();
    // The last piece travels with the closing PUT (one request fewer; a small layer is then a
    // plain monolithic upload).
    LS_RETURN_IF_ERROR(client_.FinishUpload(repo_, *session, digest, chunk));
    return Descriptor{media_type, digest, size, std::nullopt, {}};
  }

  void End(const LayerPlan& plan, const std::string& what) {
    if (progress_) progress_->End(plan.id, what);
  }

  std::atomic<int> uploaded_{0}, mounted_{0}, existed_{0};  // updated from the worker threads

 private:
  layerstore::Store& store_;
  Client& client_;
  const std::string repo_;
  const std::string here_;
  const PushOptions& options_;
  layerstore::ProgressSink* progress_;
};

// remote_blobs locations in the same registry as `domain`: the repository part, or "".
std::string SameRegistryRepo(const std::string& location, const std::string& domain) {
  if (location.size() > domain.size() + 1 && location.compare(0, domain.size(), domain) == 0 &&
      location[domain.size()] == '/') {
    return location.substr(domain.size() + 1);
  }
  return "";
}

}  // namespace

std::string MediaTypeCompression(std::string_view media_type) {
  auto ends_with = [&](std::string_view suffix) {
    return media_type.size() >= suffix.size() && media_type.substr(media_type.size() - suffix.size()) == suffix;
  };
  if (ends_with("+gzip") || ends_with(".tar.gzip")) return "gzip";
  if (ends_with("+zstd") || ends_with(".tar.zstd")) return "zstd";
  if (ends_with(".tar") || ends_with("rootfs.diff.tar")) return "none";
  return "";
}

Result<PushResult> Push(layerstore::Store& store, Client& client, const layerstore::Reference& target,
                        const layerstore::ImageView& image, const PushOptions& options,
                        layerstore::ProgressSink* progress) {
  if (target.digest || target.tag.empty()) {
    return Status::InvalidArgument("push needs a tag, not a digest: " + target.FamiliarString());
  }
  const std::string& repo = target.path;
  const std::string here = Location(client.domain(), repo);
  const std::optional<std::string> want =
      options.compression ? std::optional<std::string>(std::string(CompressionName(*options.compression))) : std::nullopt;
  if (progress) progress->Note("The push refers to repository [" + target.Name() + "]");
  LS_RETURN_IF_ERROR(client.Ping());

  LS_ASSIGN_OR_RETURN(std::string config, store.ReadBlob(image.record.id));
  const std::vector<Digest>& diff_ids = image.record.layers;
  std::vector<LayerPlan> plans(diff_ids.size());
  std::vector<std::vector<layerstore::RemoteBlob>> remotes(diff_ids.size());
  for (size_t i = 0; i < diff_ids.size(); ++i) {
    plans[i].diff_id = diff_ids[i];
    plans[i].id = ShortId(diff_ids[i]);
    LS_ASSIGN_OR_RETURN(auto info, store.FindLayer(diff_ids[i]));
    if (!info) return Status::Corruption("image " + image.record.id.str() + " names missing layer " + diff_ids[i].str());
    plans[i].info = *info;
    LS_ASSIGN_OR_RETURN(remotes[i], store.FindRemoteBlobs(diff_ids[i]));
    if (progress) progress->Begin(plans[i].id, "Preparing", 0);
  }
  auto kept_blob = [&](size_t i) {
    auto fd = store.OpenLayerBlob(diff_ids[i]);
    return fd.ok();
  };

  // 1. Can the manifest the image was pulled with be pushed as it is?
  std::optional<ImageManifest> original;
  std::string original_body;
  if (image.record.manifest && IsManifestType(image.record.manifest_media_type)) {
    auto body = store.ReadBlob(*image.record.manifest);
    if (body.ok()) {
      auto m = ParseImageManifest(*body, image.record.manifest_media_type);
      if (m.ok() && m->config.digest == image.record.id && m->layers.size() == diff_ids.size()) {
        original = *m;
        original_body = *body;
      }
    }
  }
  if (original) {
    for (size_t i = 0; i < diff_ids.size() && original; ++i) {
      const Descriptor& d = original->layers[i];
      std::vector<Candidate>& cands = plans[i].candidates;
      if (want && MediaTypeCompression(d.media_type) != *want) {
        original.reset();
        break;
      }
      for (const auto& r : remotes[i]) {
        if (r.digest != d.digest) continue;
        if (r.location == here) {
          cands.insert(cands.begin(), {Candidate::kExists, d, ""});
        } else if (std::string from = SameRegistryRepo(r.location, client.domain()); !from.empty()) {
          cands.push_back({Candidate::kMount, d, from});
        }
      }
      if (plans[i].info.blob_digest == d.digest && kept_blob(i)) cands.push_back({Candidate::kUploadKept, d, ""});
      if (cands.empty()) {
        // Someone else may have pushed exactly this blob here.
        LS_ASSIGN_OR_RETURN(auto size, client.HeadBlob(repo, d.digest, "pull,push"));
        if (size) cands.push_back({Candidate::kExists, d, ""});
      }
      if (cands.empty()) original.reset();
    }
    if (!original) {
      for (auto& p : plans) p.candidates.clear();
      if (progress) {
        progress->Note("Note: the layers' original blobs are not available (pull with --keep-blobs to keep them); "
                       "they are recompressed and the manifest digest changes");
      }
    }
  }

  // 2. Otherwise: reuse what the registry has, else the kept blob, else recompress.
  bool docker_format = image.record.manifest_media_type == kDockerManifest && (!want || *want == "gzip");
  if (!original) {
    for (size_t i = 0; i < diff_ids.size(); ++i) {
      std::vector<Candidate>& cands = plans[i].candidates;
      for (const auto& r : remotes[i]) {
        std::string comp = MediaTypeCompression(r.media_type);
        if (comp.empty() || (want && comp != *want)) continue;
        Descriptor d{r.media_type, r.digest, r.size, std::nullopt, {}};
        if (r.location == here) {
          cands.insert(cands.begin(), {Candidate::kExists, d, ""});
        } else if (std::string from = SameRegistryRepo(r.location, client.domain()); !from.empty()) {
          cands.push_back({Candidate::kMount, d, from});
        }
      }
      const auto& info = plans[i].info;
      if ((info.compression == "gzip" || info.compression == "zstd" || info.compression == "none") &&
          (!want || info.compression == *want) && kept_blob(i)) {
        cands.push_back({Candidate::kUploadKept, {OciLayerType(info.compression), info.blob_digest, info.blob_size, std::nullopt, {}}, ""});
      }
      cands.push_back({Candidate::kRecompress, {OciLayerType(want.value_or("gzip")), Digest(), 0, std::nullopt, {}}, ""});
    }
  }

  Pusher pusher(store, client, target, options, progress);
  std::atomic<bool> cancel{false};
  Status s = RunParallel(plans.size(), options.max_concurrent_uploads, &cancel, [&](size_t i) {
    if (progress) progress->Begin(plans[i].id, "Waiting", 0);
    return pusher.PushLayer(plans[i], &cancel);
  });
  if (!s.ok()) return s.WithContext("pushing " + target.FamiliarString());

  // 3. The config, then the manifest.
  Digest config_digest = image.record.id;
  LS_ASSIGN_OR_RETURN(auto config_present, client.HeadBlob(repo, config_digest, "pull,push"));
  if (!config_present) {
    size_t pos = 0;
    auto reader = [&](char* buf, size_t size) -> Result<size_t> {
      size_t n = std::min(size, config.size() - pos);
      std::memcpy(buf, config.data() + pos, n);
      pos += n;
      return n;
    };
    auto rewind = [&]() -> Status {
      pos = 0;
      return {};
    };
    LS_RETURN_IF_ERROR(client.UploadMonolithic(repo, config_digest, config.size(), reader, rewind));
  }

  PushResult result;
  std::string body;
  if (original) {
    body = original_body;
    result.media_type = original->media_type;
    result.manifest_kept = true;
  } else {
    for (const LayerPlan& p : plans) {
      if (MediaTypeCompression(p.result.media_type) != "gzip") docker_format = false;
    }
    ordered_json m;
    m["schemaVersion"] = 2;
    auto layer_type = [&](const Descriptor& d) {
      std::string comp = MediaTypeCompression(d.media_type);
      return docker_format ? std::string(kDockerLayerGzip) : OciLayerType(comp);
    };
    if (docker_format) {
      result.media_type = kDockerManifest;
      m["mediaType"] = result.media_type;
      m["config"] = {{"mediaType", kDockerConfig}, {"size", config.size()}, {"digest", config_digest.str()}};
      m["layers"] = ordered_json::array();
      for (const LayerPlan& p : plans) {
        m["layers"].push_back({{"mediaType", layer_type(p.result)}, {"size", p.result.size}, {"digest", p.result.digest.str()}});
      }
    } else {
      result.media_type = kOciManifest;
      m["mediaType"] = result.media_type;
      m["config"] = {{"mediaType", kOciConfig}, {"digest", config_digest.str()}, {"size", config.size()}};
      m["layers"] = ordered_json::array();
      for (const LayerPlan& p : plans) {
        m["layers"].push_back({{"mediaType", layer_type(p.result)}, {"digest", p.result.digest.str()}, {"size", p.result.size}});
      }
    }
    body = m.dump();
  }
  LS_ASSIGN_OR_RETURN(result.digest, client.PutManifest(repo, target.tag, result.media_type, body));
  result.size = body.size();
  result.uploaded = pusher.uploaded_.load();
  result.mounted = pusher.mounted_.load();
  result.existed = pusher.existed_.load();

  for (const LayerPlan& p : plans) {
    layerstore::RemoteBlob rb{here, p.result.digest, p.result.media_type, p.result.size};
    Status rs = store.RecordRemoteBlob(p.diff_id, rb);
    if (!rs.ok()) spdlog::warn("recording where layer {} lives: {}", p.diff_id.str(), rs.message());
  }
  // The image now also answers to this repository's digest (docker push records it too).
  layerstore::NewImage update;
  update.config = config;
  update.repo_digests.push_back(target.Name() + "@" + result.digest.str());
  auto recorded = store.CreateImage(update);
  if (!recorded.ok()) spdlog::warn("recording the repo digest: {}", recorded.status().message());
  return result;
}

}  // namespace registry
