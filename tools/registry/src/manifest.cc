#include "registry/manifest.h"

#include <sys/utsname.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace registry {
namespace {

using json = nlohmann::json;
using layerstore::Digest;
using layerstore::Result;
using layerstore::Status;

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

Result<Descriptor> ParseDescriptor(const json& j, const std::string& what) {
  if (!j.is_object()) return Status::InvalidArgument(what + " is not an object");
  Descriptor d;
  d.media_type = Str(j, "mediaType");
  std::string digest = Str(j, "digest");
  if (digest.empty()) return Status::InvalidArgument(what + " has no digest");
  auto parsed = Digest::Parse(digest);
  if (!parsed.ok()) return Status::InvalidArgument(what + ": " + parsed.status().message());
  d.digest = *parsed;
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_integer() || size->get<int64_t>() < 0) {
    return Status::InvalidArgument(what + " has no valid size");
  }
  d.size = size->get<uint64_t>();
  if (j.contains("platform") && j["platform"].is_object()) {
    const json& p = j["platform"];
    Platform platform;
    platform.os = Str(p, "os");
    platform.architecture = Str(p, "architecture");
    platform.variant = Str(p, "variant");
    platform.os_version = Str(p, "os.version");
    d.platform = platform;
  }
  if (j.contains("urls") && j["urls"].is_array()) {
    for (const json& u : j["urls"]) {
      if (u.is_string()) d.urls.push_back(u.get<std::string>());
    }
  }
  return d;
}

// An arm variant's number ("v7" -> 7), 0 when not of that form.
int ArmVersion(const std::string& variant) {
  if (variant.size() < 2 || variant[0] != 'v') return 0;
  int v = 0;
  for (size_t i = 1; i < variant.size(); ++i) {
    if (variant[i] < '0' || variant[i] > '9') return 0;
    v = v * 10 + (variant[i] - '0');
  }
  return v;
}

}  // namespace

std::string ManifestAccept() {
  return std::string(kOciIndex) + ", " + std::string(kOciManifest) + ", " + std::string(kDockerManifestList) + ", " +
         std::string(kDockerManifest) + ", " + std::string(kDockerSchema1Signed) + ";q=0.1, " +
         std::string(kDockerSchema1) + ";q=0.1";
}

std::string Platform::String() const {
  std::string s = os + "/" + architecture;
  if (!variant.empty()) s += "/" + variant;
  return s;
}

Platform NormalizePlatform(Platform p) {
  std::transform(p.os.begin(), p.os.end(), p.os.begin(), [](unsigned char c) { return std::tolower(c); });
  std::string& a = p.architecture;
  std::transform(a.begin(), a.end(), a.begin(), [](unsigned char c) { return std::tolower(c); });
  if (a == "x86_64" || a == "x86-64") {
    a = "amd64";
  } else if (a == "i386" || a == "i686") {
    a = "386";
  } else if (a == "aarch64" || a == "arm64") {
    a = "arm64";
    if (p.variant == "8" || p.variant == "v8") p.variant.clear();  // the default arm64 variant
  } else if (a == "armhf") {
    a = "arm";
    p.variant = "v7";
  } else if (a == "armel") {
    a = "arm";
    p.variant = "v6";
  } else if (a == "arm" || a == "armv7l" || a == "armv6l" || a == "armv5l") {
    if (a != "arm") p.variant = "v" + a.substr(4, 1);
    a = "arm";
    if (p.variant.empty()) p.variant = "v7";
    if (p.variant.size() == 1) p.variant = "v" + p.variant;
  }
  return p;
}

Result<Platform> ParsePlatform(std::string_view text) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= text.size()) {
    size_t slash = text.find('/', start);
    if (slash == std::string_view::npos) slash = text.size();
    parts.emplace_back(text.substr(start, slash - start));
    start = slash + 1;
  }
  if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty() ||
      (parts.size() == 3 && parts[2].empty())) {
    return Status::InvalidArgument("invalid platform \"" + std::string(text) + "\": expected OS/ARCH[/VARIANT]");
  }
  Platform p;
  p.os = parts[0];
  p.architecture = parts[1];
  if (parts.size() == 3) p.variant = parts[2];
  return NormalizePlatform(p);
}

Platform HostPlatform() {
  Platform p;
  p.os = "linux";
  struct utsname u;
  p.architecture = ::uname(&u) == 0 ? u.machine : "amd64";
  return NormalizePlatform(p);
}

bool IsIndexType(std::string_view media_type) { return media_type == kOciIndex || media_type == kDockerManifestList; }
bool IsManifestType(std::string_view media_type) { return media_type == kOciManifest || media_type == kDockerManifest; }

Result<std::string> ManifestMediaType(std::string_view content_type, std::string_view body) {
  std::string ct(content_type.substr(0, content_type.find(';')));
  while (!ct.empty() && ct.back() == ' ') ct.pop_back();
  auto schema1 = [] {
    return Status::Unsupported(
        "the registry serves this image only as a Docker v2 schema 1 manifest, a deprecated format strata does "
        "not support (re-push it with a current Docker or skopeo)");
  };
  if (ct == kDockerSchema1 || ct == kDockerSchema1Signed) return schema1();
  if (IsIndexType(ct) || IsManifestType(ct)) return ct;
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::InvalidArgument("manifest is not a JSON object");
  std::string declared = Str(j, "mediaType");
  if (declared == kDockerSchema1 || declared == kDockerSchema1Signed) return schema1();
  if (IsIndexType(declared) || IsManifestType(declared)) return declared;
  if (j.contains("schemaVersion") && j["schemaVersion"] == 1) return schema1();
  if (!declared.empty()) return Status::Unsupported("unsupported manifest media type " + declared);
  if (j.contains("manifests")) return std::string(kOciIndex);
  if (j.contains("config") && j.contains("layers")) return std::string(kOciManifest);
  return Status::Unsupported("unrecognised manifest (Content-Type \"" + std::string(content_type) + "\")");
}

Result<ImageManifest> ParseImageManifest(std::string_view body, std::string_view media_type) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::InvalidArgument("manifest is not a JSON object");
  if (!j.contains("schemaVersion") || j["schemaVersion"] != 2) {
    return Status::InvalidArgument("manifest has schemaVersion other than 2");
  }
  ImageManifest m;
  m.media_type = media_type;
  if (!j.contains("config")) return Status::InvalidArgument("manifest has no config");
  LS_ASSIGN_OR_RETURN(m.config, ParseDescriptor(j["config"], "manifest config"));
  if (!j.contains("layers") || !j["layers"].is_array()) return Status::InvalidArgument("manifest has no layers");
  for (size_t i = 0; i < j["layers"].size(); ++i) {
    LS_ASSIGN_OR_RETURN(Descriptor d, ParseDescriptor(j["layers"][i], "manifest layer " + std::to_string(i + 1)));
    m.layers.push_back(std::move(d));
  }
  return m;
}

Result<ManifestIndex> ParseIndex(std::string_view body, std::string_view media_type) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::InvalidArgument("index is not a JSON object");
  if (!j.contains("manifests") || !j["manifests"].is_array()) return Status::InvalidArgument("index has no manifests");
  ManifestIndex index;
  index.media_type = media_type;
  for (size_t i = 0; i < j["manifests"].size(); ++i) {
    LS_ASSIGN_OR_RETURN(Descriptor d, ParseDescriptor(j["manifests"][i], "index entry " + std::to_string(i + 1)));
    index.manifests.push_back(std::move(d));
  }
  return index;
}

bool PlatformMatches(const Platform& want_raw, const Platform& have_raw) {
  Platform want = NormalizePlatform(want_raw);
  Platform have = NormalizePlatform(have_raw);
  if (want.os != have.os || want.architecture != have.architecture) return false;
  if (want.variant.empty() || have.variant.empty() || want.variant == have.variant) return true;
  if (want.architecture == "arm") {
    int w = ArmVersion(want.variant), h = ArmVersion(have.variant);
    return w > 0 && h > 0 && h <= w;
  }
  return false;
}

Result<Descriptor> SelectPlatform(const ManifestIndex& index, const Platform& want_raw) {
  Platform want = NormalizePlatform(want_raw);
  const Descriptor* best = nullptr;
  int best_rank = -1;
  std::vector<std::string> offered;
  for (const Descriptor& d : index.manifests) {
    if (!d.platform) continue;
    Platform have = NormalizePlatform(*d.platform);
    if (have.os == "unknown") continue;  // attestations, signatures
    offered.push_back(have.String());
    if (!IsManifestType(d.media_type) && !d.media_type.empty()) continue;
    if (!PlatformMatches(want, have)) continue;
    // Rank: exact variant 1000; a compatible older arm variant by its version; no variant 0.
    int rank = have.variant == want.variant ? 1000 : (have.variant.empty() ? 0 : ArmVersion(have.variant));
    if (rank > best_rank) {
      best = &d;
      best_rank = rank;
    }
  }
  if (!best) {
    std::string list;
    for (const std::string& p : offered) list += (list.empty() ? "" : ", ") + p;
    return Status::NotFound("no matching manifest for " + want.String() + " in the manifest list entries" +
                            (list.empty() ? "" : " (available: " + list + ")"));
  }
  return *best;
}

}  // namespace registry
