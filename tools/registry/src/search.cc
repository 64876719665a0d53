#include "registry/search.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <nlohmann/json.hpp>

namespace registry {
namespace {

using json = nlohmann::json;
using layerstore::Result;
using layerstore::Status;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// A registry that lists more than this many pages is searched no further.
constexpr int kMaxCatalogPages = 1000;
constexpr uint32_t kCatalogPageSize = 100;

}  // namespace

Result<std::vector<SearchResult>> ParseSearchResults(const std::string& body, const std::string& prefix) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("results") || !j["results"].is_array()) {
    return Status::InvalidArgument("search answer is not a search result list");
  }
  std::vector<SearchResult> out;
  for (const json& r : j["results"]) {
    if (!r.is_object() || !r.contains("name") || !r["name"].is_string()) continue;
    SearchResult s;
    s.name = prefix + r["name"].get<std::string>();
    if (r.contains("description") && r["description"].is_string()) s.description = r["description"].get<std::string>();
    if (r.contains("star_count") && r["star_count"].is_number_integer()) s.stars = r["star_count"].get<int64_t>();
    if (r.contains("is_official") && r["is_official"].is_boolean()) s.official = r["is_official"].get<bool>();
    if (r.contains("is_automated") && r["is_automated"].is_boolean()) s.automated = r["is_automated"].get<bool>();
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::vector<SearchResult>> Search(Client& client, const std::string& term, uint32_t limit) {
  const bool hub = client.domain() == kDockerHubDomain;
  std::string path = "/v1/search";
  path = AddQuery(path, "q", term);
  path = AddQuery(path, "n", std::to_string(limit));
  // Docker Hub's search lives on the index host, not on the registry's.
  std::string url = hub ? "https://" + std::string(kDockerHubIndexHost) + path : path;
  LS_ASSIGN_OR_RETURN(HttpResponse resp, client.Get(url, {}));
  if (resp.status == 200) {
    auto parsed = ParseSearchResults(resp.body, hub ? "" : client.domain() + "/");
    if (parsed.ok()) {
      if (parsed->size() > limit) parsed->resize(limit);
      return parsed;
    }
    if (hub) return parsed.status();
  } else if (hub) {
    return Status::Unavailable("searching Docker Hub: HTTP " + std::to_string(resp.status));
  }

  // A distribution-only registry: walk the catalog.
  std::vector<SearchResult> out;
  std::string needle = Lower(term);
  std::string next;
  uint32_t page_size = kCatalogPageSize;
  // Tests shrink pages to exercise Link pagination against a small registry.
  if (const char* env = std::getenv("STRATA_REGISTRY_CATALOG_PAGE"); env && std::atoi(env) > 0) {
    page_size = static_cast<uint32_t>(std::atoi(env));
  }
  for (int page = 0; page < kMaxCatalogPages && out.size() < limit; ++page) {
    LS_ASSIGN_OR_RETURN(Client::CatalogPage p, client.Catalog(next, page_size));
    for (const std::string& repo : p.repositories) {
      if (Lower(repo).find(needle) == std::string::npos) continue;
      SearchResult r;
      r.name = client.domain() + "/" + repo;
      out.push_back(std::move(r));
      if (out.size() >= limit) break;
    }
    if (p.next.empty()) break;
    next = p.next;
  }
  return out;
}

}  // namespace registry
