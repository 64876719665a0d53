// Search: `docker search` against Docker Hub's search API (GET /v1/search?q=&n=, which some
// other registries also serve) or, on registries that only speak the distribution API, a
// substring match over GET /v2/_catalog, following its Link pagination.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "layerstore/status.h"
#include "registry/client.h"

namespace registry {

struct SearchResult {
  std::string name;  // as pullable: "busybox", "user/app", "localhost:5000/app"
  std::string description;
  int64_t stars = 0;
  bool official = false;
  bool automated = false;
};

// Up to `limit` results for `term` (case-insensitive substring for catalogs).
layerstore::Result<std::vector<SearchResult>> Search(Client& client, const std::string& term, uint32_t limit);

// Parses a /v1/search answer ({"results": [{"name", "description", "star_count", "is_official",
// "is_automated"}]}); `prefix` is prepended to names (a registry other than Docker Hub).
layerstore::Result<std::vector<SearchResult>> ParseSearchResults(const std::string& body, const std::string& prefix);

}  // namespace registry
