// Image archives in and out: docker-archive (docker save, skopeo docker-archive:) and the OCI
// image layout (as a directory or a tar, skopeo oci:/oci-archive:).
#include "layerstore/archive.h"

#include "archive_api.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>
#include <thread>

#include "fsutil.h"
#include "layerstore/io.h"
#include "layerstore/sha256.h"

namespace layerstore {
namespace {

using json = nlohmann::json;

struct ReadFree {
  void operator()(archive* a) const noexcept { Archive().archive_read_free(a); }
};
struct WriteFree {
  void operator()(archive* a) const noexcept { Archive().archive_write_free(a); }
};
struct EntryFree {
  void operator()(archive_entry* e) const noexcept { Archive().archive_entry_free(e); }
};

std::string CleanMemberName(std::string name) {
  while (name.rfind("./", 0) == 0) name.erase(0, 2);
  while (!name.empty() && name[0] == '/') name.erase(0, 1);
  return name;
}

// Random access to the members of an archive: a directory, or an uncompressed tar file indexed once.
class Members {
 public:
  virtual ~Members() = default;
  virtual bool Has(const std::string& name) const = 0;
  virtual Result<std::unique_ptr<ByteSource>> Open(const std::string& name) = 0;
  virtual Result<uint64_t> Size(const std::string& name) = 0;

  Result<std::string> Read(const std::string& name, uint64_t max = 64 << 20) {
    LS_ASSIGN_OR_RETURN(uint64_t size, Size(name));
    if (size > max) return Status::InvalidArgument(name + " is implausibly large (" + std::to_string(size) + " bytes)");
    LS_ASSIGN_OR_RETURN(auto src, Open(name));
    std::string out(static_cast<size_t>(size), '\0');
    size_t got = 0;
    while (got < out.size()) {
      LS_ASSIGN_OR_RETURN(size_t n, src->Read(out.data() + got, out.size() - got));
      if (n == 0) break;
      got += n;
    }
    if (got != out.size()) return Status::InvalidArgument(name + " is truncated");
    return out;
  }
};

class DirMembers final : public Members {
 public:
  static Result<std::unique_ptr<Members>> Create(const std::string& dir) {
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return Status::FromErrno("opening " + dir, errno);
    return std::unique_ptr<Members>(new DirMembers(dir, std::move(fd)));
  }
  bool Has(const std::string& name) const override {
    struct stat st;
    return Safe(name) && ::fstatat(fd_.get(), name.c_str(), &st, 0) == 0 && S_ISREG(st.st_mode);
  }
  Result<uint64_t> Size(const std::string& name) override {
    struct stat st;
    if (!Safe(name) || ::fstatat(fd_.get(), name.c_str(), &st, 0) != 0) {
      return Status::NotFound(dir_ + ": " + name + " is missing");
    }
    return static_cast<uint64_t>(st.st_size);
  }
  Result<std::unique_ptr<ByteSource>> Open(const std::string& name) override {
    if (!Safe(name)) return Status::InvalidArgument(dir_ + ": member name \"" + name + "\" leaves the directory");
    UniqueFd fd(::openat(fd_.get(), name.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return Status::FromErrno(dir_ + ": opening " + name, errno);
    class OwningSource final : public ByteSource {
     public:
      OwningSource(UniqueFd f, std::string n) : fd_(std::move(f)), inner_(fd_.get(), std::move(n)) {}
      Result<size_t> Read(void* buf, size_t size) override { return inner_.Read(buf, size); }
      std::string Name() const override { return inner_.Name(); }

     private:
      UniqueFd fd_;
      FdSource inner_;
    };
    return std::unique_ptr<ByteSource>(new OwningSource(std::move(fd), dir_ + ": " + name));
  }

 private:
  DirMembers(std::string dir, UniqueFd fd) : dir_(std::move(dir)), fd_(std::move(fd)) {}
  static bool Safe(const std::string& name) {
    return !name.empty() && name[0] != '/' && name.find("..") == std::string::npos;
  }
  std::string dir_;
  UniqueFd fd_;
};

class TarMembers final : public Members {
 public:
  // REQUIRES: fd is an uncompressed tar, seekable; it must outlive this.
  static Result<std::unique_ptr<Members>> Index(int fd, const std::string& name) {
    LS_RETURN_IF_ERROR(LoadArchive());
    std::unique_ptr<archive, ReadFree> a(Archive().archive_read_new());
    Archive().archive_read_support_format_tar(a.get());
    if (Archive().archive_read_open_fd(a.get(), fd, 1 << 16) != ARCHIVE_OK) {
      return Status::InvalidArgument(name + ": not an image archive: " + Archive().archive_error_string(a.get()));
    }
    std::unique_ptr<TarMembers> m(new TarMembers(fd, name));
    for (;;) {
      archive_entry* e;
      int r = Archive().archive_read_next_header(a.get(), &e);
      if (r == ARCHIVE_EOF) break;
      if (r < ARCHIVE_WARN) {
        const char* msg = Archive().archive_error_string(a.get());
        std::string text = msg ? msg : "unreadable";
        if (text.find("Unrecognized archive format") != std::string::npos) text = "not a tar archive";
        return Status::InvalidArgument(name + ": not an image archive: " + text);
      }
      if (Archive().archive_entry_filetype(e) != AE_IFREG || Archive().archive_entry_sparse_count(e) > 0) continue;
      const char* hardlink = Archive().archive_entry_hardlink(e);
      std::string member = CleanMemberName(Archive().archive_entry_pathname(e) ? Archive().archive_entry_pathname(e) : "");
      if (hardlink) {
        auto it = m->members_.find(CleanMemberName(hardlink));
        if (it != m->members_.end()) m->members_[member] = it->second;
        continue;
      }
      uint64_t offset = static_cast<uint64_t>(Archive().archive_filter_bytes(a.get(), 0));
      m->members_[member] = {offset, static_cast<uint64_t>(Archive().archive_entry_size(e))};
    }
    return std::unique_ptr<Members>(std::move(m));
  }
  bool Has(const std::string& name) const override { return members_.count(name) > 0; }
  Result<uint64_t> Size(const std::string& name) override {
    auto it = members_.find(name);
    if (it == members_.end()) return Status::NotFound(name_ + ": " + name + " is missing");
    return it->second.second;
  }
  Result<std::unique_ptr<ByteSource>> Open(const std::string& name) override {
    auto it = members_.find(name);
    if (it == members_.end()) return Status::NotFound(name_ + ": " + name + " is missing");
    return std::unique_ptr<ByteSource>(
        new FdSource(fd_, name_ + ": " + name, static_cast<int64_t>(it->second.first), it->second.second));
  }

 private:
  TarMembers(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}
  int fd_;
  std::string name_;
  std::map<std::string, std::pair<uint64_t, uint64_t>> members_;  // name -> (offset, size)
};

// A ByteSource that names itself as the layer being loaded.
class NamedSource final : public ByteSource {
 public:
  NamedSource(std::unique_ptr<ByteSource> inner, std::string name) : inner_(std::move(inner)), name_(std::move(name)) {}
  Result<size_t> Read(void* buf, size_t size) override { return inner_->Read(buf, size); }
  std::string Name() const override { return name_; }

 private:
  std::unique_ptr<ByteSource> inner_;
  std::string name_;
};

Result<json> ParseJson(const std::string& text, const std::string& what) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return Status::InvalidArgument(what + " is not valid JSON");
  return j;
}

Result<std::vector<Digest>> ConfigDiffIds(const json& config, const std::string& what) {
  std::vector<Digest> out;
  if (!config.is_object() || !config.contains("rootfs") || !config["rootfs"].is_object()) {
    return Status::InvalidArgument(what + " has no rootfs");
  }
  const json& ids = config["rootfs"].value("diff_ids", json::array());
  if (!ids.is_array()) return Status::InvalidArgument(what + ": rootfs.diff_ids is not an array");
  for (const json& id : ids) {
    if (!id.is_string()) return Status::InvalidArgument(what + ": a diff_id is not a string");
    LS_ASSIGN_OR_RETURN(Digest d, Digest::Parse(id.get<std::string>()));
    out.push_back(d);
  }
  return out;
}

struct PendingLayer {
  std::string member;
  LayerExpectation expect;
  std::string media_type;  // as the archive's manifest gives it, "" if it gives none
};

// The compression of a member, from its first bytes: "gzip", "zstd", "bzip2", "xz" or "none".
Result<std::string> SniffCompression(Members& members, const std::string& member) {
  LS_ASSIGN_OR_RETURN(auto src, members.Open(member));
  unsigned char b[6] = {};
  size_t n = 0;
  while (n < sizeof b) {
    LS_ASSIGN_OR_RETURN(size_t got, src->Read(b + n, sizeof b - n));
    if (got == 0) break;
    n += got;
  }
  if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b) return std::string("gzip");
  if (n >= 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd) return std::string("zstd");
  if (n >= 3 && b[0] == 'B' && b[1] == 'Z' && b[2] == 'h') return std::string("bzip2");
  if (n >= 6 && b[0] == 0xfd && b[1] == '7' && b[2] == 'z' && b[3] == 'X' && b[4] == 'Z') return std::string("xz");
  return std::string("none");
}

// With keep_blobs: whether to keep the layer's blob (gzip or zstd only: the compressions a
// registry takes) and the media type to record for it.
Status PlanKeptBlob(Members& members, PendingLayer& layer, bool docker_archive) {
  LS_ASSIGN_OR_RETURN(std::string compression, SniffCompression(members, layer.member));
  if (compression != "gzip" && compression != "zstd") return {};
  layer.expect.keep_blob = true;
  if (!layer.media_type.empty()) {
    layer.expect.blob_media_type = layer.media_type;
  } else if (compression == "gzip") {
    layer.expect.blob_media_type = docker_archive ? "application/vnd.docker.image.rootfs.diff.tar.gzip"
                                                  : "application/vnd.oci.image.layer.v1.tar+gzip";
  } else {
    layer.expect.blob_media_type = "application/vnd.oci.image.layer.v1.tar+zstd";
  }
  return {};
}

// Imports the image's new layers in order, overlapping each layer's sync and commit with the next
// layer's import: layer i+1 starts as soon as layer i's files are all written and verified
// (LayerExpectation::on_written), so one layer streams at a time and no import ever finds a file
// that another one is still writing. Each layer still becomes visible only after its own syncfs.
// After a failure no further layer starts; the first error in layer order is returned once the
// imports already started have ended.
Status LoadLayers(Store& store, Members& members, const std::string& archive_name, const std::string& image_name,
                  std::vector<PendingLayer>& layers, bool docker_archive, const LoadArchiveOptions& options,
                  ProgressSink* progress) {
  std::mutex mu;
  std::condition_variable cv;
  bool writing = false;  // guarded by mu: a started import has not written its files yet
  bool failed = false;   // guarded by mu
  std::vector<Status> statuses(layers.size());  // each written by its import's thread only
  std::vector<std::thread> threads;
  auto join_all = [&] {
    for (std::thread& t : threads) t.join();
    threads.clear();
  };
  auto first_error = [&]() -> Status {
    for (const Status& s : statuses) {
      if (!s.ok()) return s;
    }
    return {};
  };
  std::set<Digest> started;  // a layer listed twice is imported once
  Status setup;
  for (size_t i = 0; i < layers.size() && setup.ok(); ++i) {
    PendingLayer& layer = layers[i];
    std::string id = layer.expect.diff_id->hex().substr(0, 12);
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return !writing; });
      if (failed) break;
    }
    auto existing = store.FindLayer(*layer.expect.diff_id);
    if (!existing.ok()) {
      setup = existing.status();
      break;
    }
    if (*existing || started.count(*layer.expect.diff_id)) {
      if (progress) {
        progress->Begin(id, "Loading layer", 0);
        progress->End(id, "Already exists");
      }
      continue;
    }
    auto size = members.Size(layer.member);
    setup = size.status();
    if (setup.ok() && options.keep_blobs) setup = PlanKeptBlob(members, layer, docker_archive);
    if (!setup.ok()) break;
    auto src = members.Open(layer.member);
    if (!src.ok()) {
      setup = src.status();
      break;
    }
    started.insert(*layer.expect.diff_id);
    auto named = std::make_shared<NamedSource>(std::move(*src), archive_name + ": " + image_name + ": layer " +
                                                                    std::to_string(i + 1) + "/" +
                                                                    std::to_string(layers.size()) + " (" +
                                                                    layer.member + ")");
    if (progress) progress->Begin(id, "Loading layer", *size);
    {
      std::lock_guard<std::mutex> lock(mu);
      writing = true;
    }
    auto written = [&] {
      std::lock_guard<std::mutex> lock(mu);
      writing = false;
      cv.notify_all();
    };
    LayerExpectation expect = layer.expect;
    expect.on_written = written;
    try {
      threads.emplace_back([&, i, id, named, expect = std::move(expect)] {
        auto info = store.ImportLayer(*named, expect, progress);
        if (info.ok() && progress) progress->End(id, "Loaded");
        std::lock_guard<std::mutex> lock(mu);
        statuses[i] = info.status();
        if (!info.ok()) failed = true;
        writing = false;  // also when it failed before writing everything
        cv.notify_all();
      });
    } catch (const std::system_error& e) {
      written();
      setup = Status::IOError(std::string("starting a layer import: ") + e.what());
    }
  }
  join_all();
  LS_RETURN_IF_ERROR(first_error());
  return setup;
}

std::vector<Reference> ParseTags(const json& tags, std::vector<std::string>* bad) {
  std::vector<Reference> out;
  if (!tags.is_array()) return out;
  for (const json& t : tags) {
    if (!t.is_string()) continue;
    auto ref = ParseReference(t.get<std::string>());
    if (ref.ok() && !ref->digest) {
      out.push_back(*ref);
    } else {
      bad->push_back(t.get<std::string>());
    }
  }
  return out;
}

Result<std::vector<LoadedImage>> LoadDockerArchive(Store& store, Members& members, const std::string& name,
                                                   const LoadArchiveOptions& options, ProgressSink* progress) {
  LS_ASSIGN_OR_RETURN(std::string text, members.Read("manifest.json"));
  LS_ASSIGN_OR_RETURN(json manifest, ParseJson(text, name + ": manifest.json"));
  if (!manifest.is_array() || manifest.empty()) {
    return Status::InvalidArgument(name + ": manifest.json lists no images");
  }
  std::vector<LoadedImage> loaded;
  for (const json& item : manifest) {
    if (!item.is_object() || !item.contains("Config") || !item["Config"].is_string()) {
      return Status::InvalidArgument(name + ": manifest.json has an entry without Config");
    }
    std::string config_name = CleanMemberName(item["Config"].get<std::string>());
    LS_ASSIGN_OR_RETURN(std::string config, members.Read(config_name));
    LS_ASSIGN_OR_RETURN(json config_json, ParseJson(config, name + ": " + config_name));
    LS_ASSIGN_OR_RETURN(std::vector<Digest> diff_ids, ConfigDiffIds(config_json, name + ": " + config_name));
    // The config's file name, when it is a digest, must match its content.
    Digest config_digest = Sha256::Of(config);
    std::string base = config_name.substr(config_name.rfind('/') == std::string::npos ? 0 : config_name.rfind('/') + 1);
    if (base.size() >= 64 && IsHexString(base.substr(0, 64)) && base.substr(0, 64) != config_digest.hex()) {
      return Status::InvalidArgument(name + ": " + config_name + " does not match its digest (content is " +
                                     config_digest.str() + ")");
    }
    const json& layer_names = item.value("Layers", json::array());
    if (!layer_names.is_array() || layer_names.size() != diff_ids.size()) {
      return Status::InvalidArgument(name + ": " + config_name + " lists " + std::to_string(diff_ids.size()) +
                                     " layers but manifest.json gives " + std::to_string(layer_names.size()));
    }
    std::vector<PendingLayer> layers;
    for (size_t i = 0; i < diff_ids.size(); ++i) {
      if (!layer_names[i].is_string()) return Status::InvalidArgument(name + ": a layer name is not a string");
      PendingLayer p;
      p.member = CleanMemberName(layer_names[i].get<std::string>());
      p.expect.diff_id = diff_ids[i];
      // Docker 25+ names layers blobs/sha256/<digest of the blob as stored>.
      if (p.member.rfind("blobs/sha256/", 0) == 0) {
        auto d = Digest::FromHex(p.member.substr(13));
        if (d.ok()) p.expect.blob_digest = *d;
      }
      if (!members.Has(p.member)) return Status::InvalidArgument(name + ": layer " + p.member + " is missing");
      layers.push_back(std::move(p));
    }
    std::vector<std::string> bad;
    std::vector<Reference> tags = ParseTags(item.value("RepoTags", json::array()), &bad);
    if (!bad.empty()) return Status::InvalidArgument(name + ": invalid RepoTags entry \"" + bad[0] + "\"");
    std::string image_name = tags.empty() ? config_digest.str().substr(0, 19) : tags[0].FamiliarString();
    LS_RETURN_IF_ERROR(LoadLayers(store, members, name, image_name, layers, true, options, progress));
    LS_ASSIGN_OR_RETURN(ImageRecord rec, store.CreateImage({config, tags, {}}));
    loaded.push_back({rec.id, tags});
  }
  return loaded;
}

constexpr const char* kOciManifest = "application/vnd.oci.image.manifest.v1+json";
constexpr const char* kOciIndex = "application/vnd.oci.image.index.v1+json";
constexpr const char* kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
constexpr const char* kDockerList = "application/vnd.docker.distribution.manifest.list.v2+json";

Result<std::string> ReadVerifiedBlob(Members& members, const std::string& name, const json& desc) {
  if (!desc.is_object() || !desc.contains("digest") || !desc["digest"].is_string()) {
    return Status::InvalidArgument(name + ": a descriptor has no digest");
  }
  LS_ASSIGN_OR_RETURN(Digest d, Digest::Parse(desc["digest"].get<std::string>()));
  LS_ASSIGN_OR_RETURN(std::string data, members.Read("blobs/sha256/" + d.hex()));
  if (Sha256::Of(data) != d) return Status::InvalidArgument(name + ": blob " + d.str() + " does not match its digest");
  if (desc.contains("size") && desc["size"].is_number_unsigned() && desc["size"].get<uint64_t>() != data.size()) {
    return Status::InvalidArgument(name + ": blob " + d.str() + " has the wrong size");
  }
  return data;
}

// The host platform, as OCI names it.
bool MatchesHost(const json& desc) {
  if (!desc.contains("platform") || !desc["platform"].is_object()) return true;
  const json& p = desc["platform"];
#if defined(__x86_64__)
  const char* arch = "amd64";
#elif defined(__aarch64__)
  const char* arch = "arm64";
#else
  const char* arch = "";
#endif
  return p.value("os", "linux") == "linux" && p.value("architecture", arch) == arch;
}

Result<std::vector<LoadedImage>> LoadOciLayout(Store& store, Members& members, const std::string& name,
                                               const LoadArchiveOptions& options, ProgressSink* progress) {
  LS_ASSIGN_OR_RETURN(std::string text, members.Read("index.json"));
  LS_ASSIGN_OR_RETURN(json index, ParseJson(text, name + ": index.json"));
  if (!index.is_object() || !index.contains("manifests") || !index["manifests"].is_array()) {
    return Status::InvalidArgument(name + ": index.json has no manifests");
  }
  // Group the tags by manifest digest, resolving nested indexes to the host's platform.
  std::vector<std::pair<json, std::vector<Reference>>> manifests;
  std::map<std::string, size_t> seen;
  for (const json& desc : index["manifests"]) {
    std::vector<Reference> tags;
    if (desc.contains("annotations") && desc["annotations"].is_object()) {
      const json& ann = desc["annotations"];
      std::string full = ann.value("io.containerd.image.name", "");
      std::string ref_name = ann.value("org.opencontainers.image.ref.name", "");
      // ref.name is often a bare tag ("latest"), which names no repository.
      if (full.empty() && (ref_name.find(':') != std::string::npos || ref_name.find('/') != std::string::npos)) {
        full = ref_name;
      }
      if (!full.empty()) {
        auto ref = ParseReference(full);
        if (!ref.ok()) return ref.status().WithContext(name + ": index.json");
        if (!ref->digest) tags.push_back(*ref);
      }
    }
    json target = desc;
    std::string media = desc.value("mediaType", "");
    for (int depth = 0; (media == kOciIndex || media == kDockerList) && depth < 4; ++depth) {
      LS_ASSIGN_OR_RETURN(std::string nested_text, ReadVerifiedBlob(members, name, target));
      LS_ASSIGN_OR_RETURN(json nested, ParseJson(nested_text, name + ": nested index"));
      const json& list = nested.value("manifests", json::array());
      auto it = std::find_if(list.begin(), list.end(), MatchesHost);
      if (it == list.end()) return Status::NotFound(name + ": no manifest for this platform in the image index");
      target = *it;
      media = target.value("mediaType", "");
    }
    std::string key = target.value("digest", "");
    if (seen.count(key)) {
      auto& existing = manifests[seen[key]].second;
      existing.insert(existing.end(), tags.begin(), tags.end());
    } else {
      seen[key] = manifests.size();
      manifests.emplace_back(target, tags);
    }
  }

  std::vector<LoadedImage> loaded;
  for (auto& [desc, tags] : manifests) {
    LS_ASSIGN_OR_RETURN(std::string manifest_text, ReadVerifiedBlob(members, name, desc));
    LS_ASSIGN_OR_RETURN(json manifest, ParseJson(manifest_text, name + ": manifest"));
    std::string media = manifest.value("mediaType", desc.value("mediaType", std::string(kOciManifest)));
    if (media != kOciManifest && media != kDockerManifest) {
      return Status::Unsupported(name + ": unsupported manifest media type " + media);
    }
    if (!manifest.contains("config")) return Status::InvalidArgument(name + ": manifest has no config");
    LS_ASSIGN_OR_RETURN(std::string config, ReadVerifiedBlob(members, name, manifest["config"]));
    LS_ASSIGN_OR_RETURN(json config_json, ParseJson(config, name + ": config"));
    LS_ASSIGN_OR_RETURN(std::vector<Digest> diff_ids, ConfigDiffIds(config_json, name + ": config"));
    const json& layer_descs = manifest.value("layers", json::array());
    if (!layer_descs.is_array() || layer_descs.size() != diff_ids.size()) {
      return Status::InvalidArgument(name + ": manifest lists " + std::to_string(layer_descs.size()) +
                                     " layers but its config " + std::to_string(diff_ids.size()));
    }
    std::vector<PendingLayer> layers;
    for (size_t i = 0; i < diff_ids.size(); ++i) {
      const json& ld = layer_descs[i];
      if (!ld.is_object() || !ld.contains("digest") || !ld["digest"].is_string()) {
        return Status::InvalidArgument(name + ": a layer descriptor has no digest");
      }
      PendingLayer p;
      LS_ASSIGN_OR_RETURN(Digest blob, Digest::Parse(ld["digest"].get<std::string>()));
      p.member = "blobs/sha256/" + blob.hex();
      p.expect.blob_digest = blob;
      if (ld.contains("size") && ld["size"].is_number_unsigned()) p.expect.blob_size = ld["size"].get<uint64_t>();
      p.expect.diff_id = diff_ids[i];
      if (ld.contains("mediaType") && ld["mediaType"].is_string()) p.media_type = ld["mediaType"].get<std::string>();
      layers.push_back(std::move(p));
    }
    std::string image_name = tags.empty() ? Sha256::Of(config).str().substr(0, 19) : tags[0].FamiliarString();
    LS_RETURN_IF_ERROR(LoadLayers(store, members, name, image_name, layers, false, options, progress));
    LS_ASSIGN_OR_RETURN(ImageRecord rec, store.CreateImage({config, tags, {}}));
    loaded.push_back({rec.id, tags});
  }
  return loaded;
}

// Decompresses a compressed archive file into an unlinked temp file so members can be read at
// random. Returns the fd of the plain tar.
Result<UniqueFd> Decompress(int fd, const std::string& name, const std::string& tmp_dir) {
  LS_RETURN_IF_ERROR(LoadArchive());
  std::unique_ptr<archive, ReadFree> a(Archive().archive_read_new());
  Archive().archive_read_support_filter_all(a.get());
  Archive().archive_read_support_format_raw(a.get());
  if (Archive().archive_read_open_fd(a.get(), fd, 1 << 16) != ARCHIVE_OK) {
    return Status::InvalidArgument(name + ": " + Archive().archive_error_string(a.get()));
  }
  archive_entry* e;
  if (Archive().archive_read_next_header(a.get(), &e) != ARCHIVE_OK) {
    return Status::InvalidArgument(name + ": cannot decompress: " + Archive().archive_error_string(a.get()));
  }
  UniqueFd out(::open(tmp_dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (!out) return Status::FromErrno("creating a temporary file in " + tmp_dir, errno);
  std::vector<char> buf(1 << 20);
  for (;;) {
    la_ssize_t n = Archive().archive_read_data(a.get(), buf.data(), buf.size());
    if (n < 0) return Status::InvalidArgument(name + ": cannot decompress: " + Archive().archive_error_string(a.get()));
    if (n == 0) break;
    LS_RETURN_IF_ERROR(fsutil::WriteAll(out.get(), buf.data(), static_cast<size_t>(n), "decompressed archive"));
  }
  return out;
}

}  // namespace

Result<std::vector<LoadedImage>> LoadImageArchive(Store& store, const std::string& path, ProgressSink* progress,
                                                  const LoadArchiveOptions& options) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Status::FromErrno("opening " + path, errno);
  std::unique_ptr<Members> members;
  UniqueFd file, plain;
  if (S_ISDIR(st.st_mode)) {
    LS_ASSIGN_OR_RETURN(members, DirMembers::Create(path));
  } else {
    file.Reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!file) return Status::FromErrno("opening " + path, errno);
    // Pipes and compressed files are copied into a seekable plain tar first.
    bool seekable_plain = false;
    if (S_ISREG(st.st_mode)) {
      unsigned char magic[6] = {};
      LS_ASSIGN_OR_RETURN(size_t n, ReadFull(file.get(), magic, sizeof magic, path));
      bool compressed = (n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b) ||
                        (n >= 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd) ||
                        (n >= 6 && magic[0] == 0xfd && magic[1] == '7' && magic[2] == 'z') ||
                        (n >= 3 && magic[0] == 'B' && magic[1] == 'Z' && magic[2] == 'h');
      if (::lseek(file.get(), 0, SEEK_SET) != 0) return Status::FromErrno("seek " + path, errno);
      seekable_plain = !compressed;
    }
    int tar_fd = file.get();
    if (!seekable_plain) {
      LS_ASSIGN_OR_RETURN(plain, Decompress(file.get(), path, store.root() + "/tmp"));
      if (::lseek(plain.get(), 0, SEEK_SET) != 0) return Status::FromErrno("seek in decompressed archive", errno);
      tar_fd = plain.get();
    }
    LS_ASSIGN_OR_RETURN(members, TarMembers::Index(tar_fd, path));
  }
  LS_ASSIGN_OR_RETURN(auto lease, store.AcquireWriteLease());
  if (members->Has("manifest.json")) return LoadDockerArchive(store, *members, path, options, progress);
  if (members->Has("index.json")) return LoadOciLayout(store, *members, path, options, progress);
  return Status::InvalidArgument(path + ": neither a docker-archive (no manifest.json) nor an OCI layout (no index.json)");
}

namespace {

class ArchiveWriter {
 public:
  explicit ArchiveWriter(int fd) : a_(Archive().archive_write_new()) {
    Archive().archive_write_set_format_pax_restricted(a_.get());
    Archive().archive_write_set_bytes_in_last_block(a_.get(), 1);
    open_ = Archive().archive_write_open_fd(a_.get(), fd) == ARCHIVE_OK;
  }
  Status Error(const std::string& what) {
    return Status::IOError("writing archive: " + what + ": " + (Archive().archive_error_string(a_.get()) ?: "error"));
  }
  Status Begin(const std::string& name, uint64_t size) {
    if (!open_) return Error("open");
    std::unique_ptr<archive_entry, EntryFree> e(Archive().archive_entry_new());
    Archive().archive_entry_set_pathname(e.get(), name.c_str());
    Archive().archive_entry_set_filetype(e.get(), AE_IFREG);
    Archive().archive_entry_set_perm(e.get(), 0644);
    Archive().archive_entry_set_size(e.get(), static_cast<la_int64_t>(size));
    Archive().archive_entry_set_mtime(e.get(), 0, 0);
    if (Archive().archive_write_header(a_.get(), e.get()) != ARCHIVE_OK) return Error(name);
    return {};
  }
  Status Data(const void* data, size_t size) {
    if (Archive().archive_write_data(a_.get(), data, size) != static_cast<la_ssize_t>(size)) return Error("data");
    return {};
  }
  Status File(const std::string& name, std::string_view data) {
    LS_RETURN_IF_ERROR(Begin(name, data.size()));
    return Data(data.data(), data.size());
  }
  Status Dir(const std::string& name) {
    std::unique_ptr<archive_entry, EntryFree> e(Archive().archive_entry_new());
    Archive().archive_entry_set_pathname(e.get(), name.c_str());
    Archive().archive_entry_set_filetype(e.get(), AE_IFDIR);
    Archive().archive_entry_set_perm(e.get(), 0755);
    Archive().archive_entry_set_mtime(e.get(), 0, 0);
    if (Archive().archive_write_header(a_.get(), e.get()) != ARCHIVE_OK) return Error(name);
    return {};
  }
  Status Close() {
    if (Archive().archive_write_close(a_.get()) != ARCHIVE_OK) return Error("close");
    return {};
  }

 private:
  std::unique_ptr<archive, WriteFree> a_;
  bool open_ = false;
};

class ArchiveSink final : public ByteSink {
 public:
  explicit ArchiveSink(ArchiveWriter& w) : w_(w) {}
  Status Write(const void* data, size_t size) override { return w_.Data(data, size); }

 private:
  ArchiveWriter& w_;
};

}  // namespace

Status SaveImageArchive(Store& store, const std::vector<SaveItem>& items, ArchiveFormat format, int fd,
                        ProgressSink* progress) {
  LS_RETURN_IF_ERROR(LoadArchive());
  ArchiveWriter out(fd);
  std::set<Digest> written;
  auto write_layer = [&](const Digest& diff_id, const std::string& member) -> Status {
    LS_ASSIGN_OR_RETURN(auto layer, store.FindLayer(diff_id));
    if (!layer) return Status::NotFound("layer " + diff_id.str() + " is not in the store");
    LS_RETURN_IF_ERROR(out.Begin(member, layer->tar_size));
    ArchiveSink sink(out);
    return store.ExportLayer(diff_id, sink, progress);
  };

  if (format == ArchiveFormat::kDockerArchive) {
    json manifest = json::array();
    for (const SaveItem& item : items) {
      LS_ASSIGN_OR_RETURN(std::string config, store.ReadBlob(item.id));
      LS_ASSIGN_OR_RETURN(std::vector<Digest> diff_ids, ConfigDiffIds(json::parse(config, nullptr, false), "config"));
      std::string config_name = item.id.hex() + ".json";
      if (written.insert(item.id).second) LS_RETURN_IF_ERROR(out.File(config_name, config));
      json entry = {{"Config", config_name}, {"RepoTags", json::array()}, {"Layers", json::array()}};
      for (const Reference& tag : item.tags) entry["RepoTags"].push_back(tag.FamiliarString());
      for (const Digest& diff_id : diff_ids) {
        std::string member = diff_id.hex() + "/layer.tar";
        if (written.insert(diff_id).second) {
          LS_RETURN_IF_ERROR(out.Dir(diff_id.hex() + "/"));
          LS_RETURN_IF_ERROR(write_layer(diff_id, member));
        }
        entry["Layers"].push_back(member);
      }
      manifest.push_back(entry);
    }
    LS_RETURN_IF_ERROR(out.File("manifest.json", manifest.dump()));
    return out.Close();
  }

  LS_RETURN_IF_ERROR(out.File("oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
  LS_RETURN_IF_ERROR(out.Dir("blobs/"));
  LS_RETURN_IF_ERROR(out.Dir("blobs/sha256/"));
  json index = {{"schemaVersion", 2}, {"mediaType", kOciIndex}, {"manifests", json::array()}};
  for (const SaveItem& item : items) {
    LS_ASSIGN_OR_RETURN(std::string config, store.ReadBlob(item.id));
    LS_ASSIGN_OR_RETURN(std::vector<Digest> diff_ids, ConfigDiffIds(json::parse(config, nullptr, false), "config"));
    json manifest = {{"schemaVersion", 2},
                     {"mediaType", kOciManifest},
                     {"config",
                      {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                       {"digest", item.id.str()},
                       {"size", config.size()}}},
                     {"layers", json::array()}};
    if (written.insert(item.id).second) LS_RETURN_IF_ERROR(out.File("blobs/sha256/" + item.id.hex(), config));
    for (const Digest& diff_id : diff_ids) {
      LS_ASSIGN_OR_RETURN(auto layer, store.FindLayer(diff_id));
      if (!layer) return Status::NotFound("layer " + diff_id.str() + " is not in the store");
      manifest["layers"].push_back({{"mediaType", "application/vnd.oci.image.layer.v1.tar"},
                                    {"digest", diff_id.str()},
                                    {"size", layer->tar_size}});
      if (written.insert(diff_id).second) LS_RETURN_IF_ERROR(write_layer(diff_id, "blobs/sha256/" + diff_id.hex()));
    }
    std::string manifest_text = manifest.dump();
    Digest manifest_digest = Sha256::Of(manifest_text);
    if (written.insert(manifest_digest).second) {
      LS_RETURN_IF_ERROR(out.File("blobs/sha256/" + manifest_digest.hex(), manifest_text));
    }
    json desc = {{"mediaType", kOciManifest}, {"digest", manifest_digest.str()}, {"size", manifest_text.size()}};
    if (item.tags.empty()) index["manifests"].push_back(desc);
    for (const Reference& tag : item.tags) {
      json tagged = desc;
      tagged["annotations"] = {{"io.containerd.image.name", tag.String()},
                               {"org.opencontainers.image.ref.name", tag.tag}};
      index["manifests"].push_back(tagged);
    }
  }
  LS_RETURN_IF_ERROR(out.File("index.json", index.dump()));
  return out.Close();
}

}  // namespace layerstore
