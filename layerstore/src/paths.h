// Every on-disk name under the store root, in one place. Nothing else builds store paths.
//
//   strata-store.json              {"format":"strata-store","version":1}
//   config.json                    the store's settings, written by its owner (config.h)
//   gc.lock                        flock: shared by writers, exclusive by deleters
//   meta/                          the LMDB environment (data.mdb, lock.mdb)
//   blobs/sha256/<hex>             configs and manifests, read-only files
//   objects/<2 hex>/<62 hex>       one file per distinct regular-file content, read-only
//   layers/<diff_id hex>/tar-split.zst   headers and padding that regenerate the layer's tar
//   chains/<chain id hex>.idx      merged rootfs index of a layer chain (a cache: rebuilt when missing)
//   containers/<id>/               a container's writable layer: upper/, work/ (the FUSE driver's,
//                                  overlayfs format) and lock (flock held by the daemon serving it)
//   mounts/<sha256 of mountpoint>  a live mount's lease, JSON (src/leases.cc)
//   tmp/                           in-flight files; anything here after a crash is garbage
#pragma once

#include <string>
#include <string_view>

#include "layerstore/digest.h"

namespace layerstore::paths {

inline constexpr const char* kFormatFile = "strata-store.json";
inline constexpr const char* kConfigFile = "config.json";
inline constexpr const char* kLockFile = "gc.lock";
inline constexpr const char* kMetaDir = "meta";
inline constexpr const char* kBlobsDir = "blobs/sha256";
inline constexpr const char* kObjectsDir = "objects";
inline constexpr const char* kLayersDir = "layers";
inline constexpr const char* kTmpDir = "tmp";
inline constexpr const char* kChainsDir = "chains";
inline constexpr const char* kContainersDir = "containers";
inline constexpr const char* kMountsDir = "mounts";

// All relative to the root.
std::string Blob(const Digest& d);
std::string Object(const Digest& d);
std::string ObjectShard(unsigned shard);  // "objects/ab"
std::string LayerDir(const Digest& diff_id);
std::string TarSplit(const Digest& diff_id);
std::string ChainIndex(const Digest& chain_id);
std::string ContainerDir(std::string_view id);   // "containers/<id>"
std::string ContainerLock(std::string_view id);  // "containers/<id>/lock"
std::string LeaseFile(std::string_view mountpoint);  // "mounts/<hex>"
// Names inside a container's directory.
inline constexpr const char* kUpperDir = "upper";
inline constexpr const char* kWorkDir = "work";
inline constexpr const char* kLockName = "lock";

// Parses "objects/ab/<62 hex>" back to a digest; false for anything else.
bool ParseObjectPath(const std::string& shard, const std::string& name, Digest* out);

}  // namespace layerstore::paths
