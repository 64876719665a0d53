#include "registry/pull.h"

#include <spdlog/spdlog.h>

#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "parallel.h"
#include "registry/pipe.h"

namespace registry {
namespace {

using json = nlohmann::json;
using layerstore::Digest;
using layerstore::Result;
using layerstore::Status;

// Forwards the store's byte counts for a layer under the id the pull shows for it (the short
// blob digest, as docker pull does); Begin/End are the pull's own.
class LayerProgress final : public layerstore::ProgressSink {
 public:
  LayerProgress(layerstore::ProgressSink* inner, std::string id) : inner_(inner), id_(std::move(id)) {}
  void Update(const std::string&, uint64_t done) override {
    if (inner_) inner_->Update(id_, done);
  }

 private:
  layerstore::ProgressSink* inner_;
  std::string id_;
};

std::string ShortId(const Digest& d) { return d.hex().substr(0, 12); }

struct Layer {
  Descriptor blob;
  Digest diff_id;
  std::string id;  // progress id
  bool present = false;
};

Result<std::vector<Digest>> DiffIds(const json& config) {
  std::vector<Digest> out;
  if (!config.is_object() || !config.contains("rootfs") || !config["rootfs"].is_object()) {
    return Status::InvalidArgument("image config has no rootfs");
  }
  const json& ids = config["rootfs"].value("diff_ids", json::array());
  if (!ids.is_array()) return Status::InvalidArgument("image config rootfs.diff_ids is not an array");
  for (const json& id : ids) {
    if (!id.is_string()) return Status::InvalidArgument("image config has a non-string diff_id");
    LS_ASSIGN_OR_RETURN(Digest d, Digest::Parse(id.get<std::string>()));
    out.push_back(d);
  }
  return out;
}

// Downloads one layer into the store: the HTTP transfer runs on its own thread and writes into
// a bounded pipe; this thread imports from the pipe. Both end before this returns.
Status PullLayer(layerstore::Store& store, Client& client, const std::string& repository, const Layer& layer,
                 bool keep_blob, std::atomic<bool>* cancel, layerstore::ProgressSink* progress) {
  BlobPipe pipe("layer " + layer.blob.digest.str());
  if (progress) progress->Begin(layer.id, "Downloading", layer.blob.size);
  std::jthread transfer([&] {
    Status s = client.FetchBlob(
        repository, layer.blob, [&](const char* data, size_t n) { return pipe.Write(data, n); }, cancel,
        [&](const Status& why, uint64_t offset) {
          spdlog::info("layer {}: {}; resuming at byte {}", layer.id, why.message(), offset);
          if (progress) progress->Begin(layer.id, offset > 0 ? "Resuming" : "Retrying", layer.blob.size);
        });
    pipe.Close(s);
  });
  // Declared after the thread, so destroyed before it is joined: however this function is left,
  // the transfer is released from a pipe nobody reads any more.
  struct CancelOnExit {
    BlobPipe& pipe;
    ~CancelOnExit() { pipe.Cancel(); }
  } cancel_on_exit{pipe};
  layerstore::LayerExpectation expect;
  expect.blob_digest = layer.blob.digest;
  expect.blob_size = layer.blob.size;
  expect.diff_id = layer.diff_id;
  expect.keep_blob = keep_blob;
  expect.blob_media_type = layer.blob.media_type;
  LayerProgress layer_progress(progress, layer.id);
  auto imported = store.ImportLayer(pipe, expect, &layer_progress);
  // Whatever happened, the transfer must not wait on a reader that is gone.
  pipe.Cancel();
  transfer.join();
  if (!imported.ok()) return imported.status();
  if (progress) progress->End(layer.id, "Pull complete");
  return {};
}

}  // namespace

Result<ResolvedManifest> ResolveManifest(Client& client, const layerstore::Reference& ref,
                                         const std::optional<Platform>& platform) {
  std::string reference = ref.digest ? ref.digest->str() : ref.tag;
  ResolvedManifest out;
  LS_ASSIGN_OR_RETURN(out.top, client.GetManifest(ref.path, reference));
  if (!platform || !IsIndexType(out.top.media_type)) return out;
  LS_ASSIGN_OR_RETURN(ManifestIndex index, ParseIndex(out.top.body, out.top.media_type));
  auto chosen = SelectPlatform(index, *platform);
  if (!chosen.ok()) return chosen.status().WithContext(ref.FamiliarString());
  LS_ASSIGN_OR_RETURN(FetchedManifest m, client.GetManifest(ref.path, chosen->digest.str()));
  if (!IsManifestType(m.media_type)) {
    return Status::Unsupported(ref.FamiliarString() + ": the index entry for " + platform->String() + " is a " +
                               m.media_type + ", not an image manifest");
  }
  out.chosen = std::move(m);
  return out;
}

Result<PullResult> Pull(layerstore::Store& store, Client& client, const layerstore::Reference& ref,
                        const PullOptions& options, layerstore::ProgressSink* progress) {
  const std::string& repository = ref.path;
  const Platform platform = options.platform ? *options.platform : HostPlatform();
  if (progress) progress->Note((ref.digest ? ref.digest->str() : ref.tag) + ": Pulling from " + repository);

  LS_ASSIGN_OR_RETURN(ResolvedManifest resolved, ResolveManifest(client, ref, platform));
  const FetchedManifest& fetched = resolved.image();
  if (!IsManifestType(fetched.media_type)) {
    return Status::Unsupported(ref.FamiliarString() + ": unsupported manifest type " + fetched.media_type);
  }
  LS_ASSIGN_OR_RETURN(ImageManifest manifest, ParseImageManifest(fetched.body, fetched.media_type));
  LS_ASSIGN_OR_RETURN(std::string config, client.GetBlob(repository, manifest.config));
  json config_json = json::parse(config, nullptr, false);
  if (config_json.is_discarded()) return Status::InvalidArgument(ref.FamiliarString() + ": image config is not JSON");
  LS_ASSIGN_OR_RETURN(std::vector<Digest> diff_ids, DiffIds(config_json));
  if (diff_ids.size() != manifest.layers.size()) {
    return Status::InvalidArgument(ref.FamiliarString() + ": the manifest lists " + std::to_string(manifest.layers.size()) +
                                   " layers but the config has " + std::to_string(diff_ids.size()) + " diff_ids");
  }
  if (!resolved.chosen && config_json.is_object()) {
    // A single-platform image: say so when it is not what was asked for, as Docker warns.
    Platform have;
    have.os = config_json.value("os", "");
    have.architecture = config_json.value("architecture", "");
    have.variant = config_json.value("variant", "");
    if (!have.os.empty() && !have.architecture.empty() && !PlatformMatches(platform, have) && progress) {
      progress->Note("WARNING: the image's platform (" + NormalizePlatform(have).String() +
                     ") does not match the requested platform (" + platform.String() + ")");
    }
  }

  LS_ASSIGN_OR_RETURN(auto lease, store.AcquireWriteLease());
  std::vector<Layer> layers;
  std::map<Digest, bool> seen;  // a layer listed twice is fetched once
  PullResult result;
  for (size_t i = 0; i < manifest.layers.size(); ++i) {
    Layer l{manifest.layers[i], diff_ids[i], ShortId(manifest.layers[i].digest)};
    LS_ASSIGN_OR_RETURN(auto existing, store.FindLayer(l.diff_id));
    l.present = existing.has_value() || seen.count(l.diff_id);
    seen[l.diff_id] = true;
    if (existing) {
      ++result.layers_existing;
      if (progress) progress->End(l.id, "Already exists");
    } else if (!l.present && progress) {
      progress->Begin(l.id, "Waiting", 0);
    }
    layers.push_back(std::move(l));
  }

  std::vector<size_t> missing;  // layers the store lacks
  for (size_t i = 0; i < layers.size(); ++i) {
    if (!layers[i].present) missing.push_back(i);
  }
  std::atomic<bool> cancel{false};
  Status s = RunParallel(missing.size(), options.max_concurrent_downloads, &cancel, [&](size_t k) {
    return PullLayer(store, client, repository, layers[missing[k]], options.keep_blobs, &cancel, progress);
  });
  if (!s.ok()) return s.WithContext(ref.FamiliarString());
  result.layers_downloaded = static_cast<int>(missing.size());

  // Everything verified: record the image.
  LS_ASSIGN_OR_RETURN(result.manifest, store.PutBlob(fetched.body, &fetched.digest, fetched.media_type));
  result.image_id = manifest.config.digest;
  result.digest = resolved.top.digest;
  result.repo_digest = ref.Name() + "@" + result.digest.str();
  layerstore::NewImage image;
  image.config = config;
  if (!ref.digest) {
    layerstore::Reference tag = ref;
    tag.digest.reset();
    image.tags.push_back(tag);
    auto before = store.ResolveImage(tag.String());
    result.up_to_date = before.ok() && before->record.id == result.image_id && result.layers_downloaded == 0;
  }
  image.repo_digests.push_back(result.repo_digest);
  image.manifest = result.manifest;
  image.manifest_media_type = fetched.media_type;
  LS_ASSIGN_OR_RETURN(layerstore::ImageRecord record, store.CreateImage(image));
  if (record.id != result.image_id) {
    return Status::Corruption("image recorded as " + record.id.str() + ", expected " + result.image_id.str());
  }
  // Where each layer lives, for push (mounts, skipped uploads). Failing to note it costs only
  // an upload later, so it does not fail the pull.
  for (const Layer& l : layers) {
    layerstore::RemoteBlob rb{Location(client.domain(), repository), l.blob.digest, l.blob.media_type, l.blob.size};
    Status rs = store.RecordRemoteBlob(l.diff_id, rb);
    if (!rs.ok()) spdlog::warn("recording where layer {} lives: {}", l.diff_id.str(), rs.message());
  }
  if (progress) {
    progress->Note("Digest: " + result.digest.str());
    std::string shown = ref.FamiliarString();
    progress->Note(result.up_to_date ? "Status: Image is up to date for " + shown
                                     : "Status: Downloaded newer image for " + shown);
  }
  return result;
}

}  // namespace registry
