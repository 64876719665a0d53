// Manifests, indexes and platforms: the four formats a registry serves (OCI image manifest and
// index, Docker v2 schema 2 manifest and manifest list), parsed into one shape, and platform
// selection for multi-platform images. Docker v2 schema 1 is recognised only to refuse it.
// Value types and pure functions; parsing never throws.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "layerstore/digest.h"
#include "layerstore/status.h"

namespace registry {

inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerSchema1 = "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr std::string_view kDockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kOciLayerTar = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view kDockerLayerForeign = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

// The Accept header of a manifest request: every format we read, most preferred first.
std::string ManifestAccept();

// Manifests larger than this are refused (containerd's limit): they are read into memory.
inline constexpr size_t kMaxManifestBytes = 4 << 20;

struct Platform {
  std::string os;            // "linux"
  std::string architecture;  // GOARCH: "amd64", "arm64", "arm", "386", "ppc64le", "s390x", ...
  std::string variant;       // "v7", "v8", ... ("" when none)
  std::string os_version;    // Windows only

  // "linux/arm64/v8"
  std::string String() const;
};

// Parses "os/arch[/variant]" ("linux/arm64", "linux/arm/v7") and normalises it (x86_64 -> amd64,
// aarch64 -> arm64, armhf -> arm/v7, arm64/v8 -> arm64).
layerstore::Result<Platform> ParsePlatform(std::string_view text);
// The platform of this machine, normalised.
Platform HostPlatform();
// Normalises architecture aliases and default variants, as containerd's platforms.Normalize.
Platform NormalizePlatform(Platform p);

struct Descriptor {
  std::string media_type;
  layerstore::Digest digest;
  uint64_t size = 0;
  std::optional<Platform> platform;  // index entries only
  std::vector<std::string> urls;     // foreign layers
};

// An image manifest (OCI or Docker v2 schema 2).
struct ImageManifest {
  std::string media_type;
  Descriptor config;
  std::vector<Descriptor> layers;
};

// An OCI index or Docker manifest list.
struct ManifestIndex {
  std::string media_type;
  std::vector<Descriptor> manifests;
};

bool IsIndexType(std::string_view media_type);
bool IsManifestType(std::string_view media_type);

// The media type of a manifest body: the Content-Type header when it names a known type, else
// the body's "mediaType", else guessed from its shape (OCI allows omitting mediaType: "manifests"
// means an index, "config" a manifest). Schema 1 is Unsupported with a message saying so.
layerstore::Result<std::string> ManifestMediaType(std::string_view content_type, std::string_view body);

layerstore::Result<ImageManifest> ParseImageManifest(std::string_view body, std::string_view media_type);
layerstore::Result<ManifestIndex> ParseIndex(std::string_view body, std::string_view media_type);

// Whether an index entry can run on `want`: same OS and architecture, and a variant that is
// equal, or (for arm) an older one the CPU also runs (v7 runs v6 and v5), or unspecified.
bool PlatformMatches(const Platform& want, const Platform& have);

// Picks the manifest for `want` from an index: among matching entries the exact variant wins,
// then the newest compatible variant, then an entry without a variant; ties go to the first
// listed. Attestation manifests (platform unknown/unknown) never match. NotFound lists the
// platforms the index offers.
layerstore::Result<Descriptor> SelectPlatform(const ManifestIndex& index, const Platform& want);

}  // namespace registry
