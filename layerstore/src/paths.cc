#include "paths.h"

#include <cstdio>

#include "layerstore/sha256.h"

namespace layerstore::paths {

std::string Blob(const Digest& d) { return std::string(kBlobsDir) + "/" + d.hex(); }

std::string Object(const Digest& d) {
  std::string hex = d.hex();
  return std::string(kObjectsDir) + "/" + hex.substr(0, 2) + "/" + hex.substr(2);
}

std::string ObjectShard(unsigned shard) {
  char buf[3];
  std::snprintf(buf, sizeof buf, "%02x", shard & 0xff);
  return std::string(kObjectsDir) + "/" + buf;
}

std::string LayerDir(const Digest& diff_id) { return std::string(kLayersDir) + "/" + diff_id.hex(); }
std::string TarSplit(const Digest& diff_id) { return LayerDir(diff_id) + "/tar-split.zst"; }
std::string ChainIndex(const Digest& chain_id) { return std::string(kChainsDir) + "/" + chain_id.hex() + ".idx"; }

std::string ContainerDir(std::string_view id) { return std::string(kContainersDir) + "/" + std::string(id); }
std::string ContainerLock(std::string_view id) { return ContainerDir(id) + "/" + kLockName; }

std::string LeaseFile(std::string_view mountpoint) {
  return std::string(kMountsDir) + "/" + Sha256::Of(mountpoint).hex();
}

bool ParseObjectPath(const std::string& shard, const std::string& name, Digest* out) {
  if (shard.size() != 2 || name.size() != 62) return false;
  auto d = Digest::FromHex(shard + name);
  if (!d.ok()) return false;
  *out = *d;
  return true;
}

}  // namespace layerstore::paths
