// Endpoints: how a reference's domain becomes URLs, and which scheme and TLS settings to try.
//
// Pure functions over strings (no I/O except FindCertFiles, which only stats files, and
// ResolveHost), so that URL building and the TLS decision table are unit-tested without a network.
//
// Docker's rules, which we follow:
//   - "docker.io" is served by registry-1.docker.io; its credentials live under the key
//     "https://index.docker.io/v1/" in config.json; its search API is index.docker.io/v1/search.
//   - Registries on loopback (localhost, 127.0.0.0/8, ::1) are insecure by default: HTTPS is
//     tried without verification, then plain HTTP (Docker's default insecure CIDR 127.0.0.0/8).
//   - Every other registry needs verified HTTPS unless the user says --tls-verify=false or lists
//     it in the store's insecure-registries (IsInsecureRegistry).
//   - Per-registry CAs and client certificates: <certs dir>/<host:port>/ca.crt, client.cert,
//     client.key (Docker's /etc/docker/certs.d layout), where the certs dir is $STRATA_CERTS_DIR
//     or /etc/strata/certs.d.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "layerstore/status.h"

namespace registry {

inline constexpr std::string_view kDockerHubDomain = "docker.io";
inline constexpr std::string_view kDockerHubHost = "registry-1.docker.io";
inline constexpr std::string_view kDockerHubIndexHost = "index.docker.io";
inline constexpr std::string_view kDockerHubConfigKey = "https://index.docker.io/v1/";

// Normalises what a user types as a registry ("https://index.docker.io/v1/", "Docker.io",
// "localhost:5000/", "http://myreg:5000/v2") to a reference domain ("docker.io", "localhost:5000",
// "myreg:5000"). Docker Hub's aliases all become "docker.io"; a path after the host is dropped.
std::string NormalizeRegistry(std::string_view input);

// The host[:port] that serves the distribution API for a reference domain.
std::string ApiHost(std::string_view domain);

// The key under which `docker login` stores credentials for a domain in config.json.
std::string ConfigKey(std::string_view domain);

// localhost, 127.0.0.0/8 or ::1, with or without a port ("[::1]:5000").
bool IsLoopback(std::string_view host_port);

// ---- insecure-registries (the store setting, strata-config(5); Docker's daemon.json key) ----
//
// An entry names a registry as "host[:port]" (a name, an IPv4 address, or an IPv6 address, in
// brackets when a port follows) or a range of addresses in CIDR notation ("10.0.0.0/8",
// "fd00::/8"). As Docker does, a leading "http://" or "https://" is ignored.

// OK, or InvalidArgument saying what is wrong with `entry`.
layerstore::Status ValidateInsecureRegistry(std::string_view entry);

// The addresses (numeric strings) a host name resolves to; empty when it does not resolve.
using Resolver = std::function<std::vector<std::string>(const std::string& host)>;
std::vector<std::string> ResolveHost(const std::string& host);  // getaddrinfo

// Whether the registry `domain` ("host[:port]", as NormalizeRegistry returns it) is one of
// `insecure`: named by an entry (case-insensitive, port included: "reg:5000" does not cover
// "reg"), or with an address inside a CIDR entry: its own when the host is an IP address, else
// any that `resolve` gives for the name (resolved only when a CIDR entry exists). Invalid
// entries match nothing.
bool IsInsecureRegistry(std::string_view domain, const std::vector<std::string>& insecure,
                        const Resolver& resolve = ResolveHost);

// One way of talking to a registry: a scheme and whether the server's certificate is verified.
struct Endpoint {
  std::string scheme = "https";  // "https" or "http"
  bool verify_tls = true;
  std::string ca_file;      // extra CA bundle (certs dir), empty for the system store only
  std::string client_cert;  // client certificate and key for mutual TLS, both or neither
  std::string client_key;

  std::string BaseUrl(std::string_view host) const { return scheme + "://" + std::string(host); }
};

// Files found in <certs_dir>/<host>/: ca.crt, client.cert and client.key.
struct CertFiles {
  std::string ca_file, client_cert, client_key;
};
CertFiles FindCertFiles(const std::string& certs_dir, std::string_view host);

// $STRATA_CERTS_DIR, else /etc/strata/certs.d.
std::string DefaultCertsDir();

// The endpoints to try, in order, for `host` (an API host). `tls_verify` is the user's
// --tls-verify (unset: the default rules above). The first endpoint that answers GET /v2/ is
// used for every later request.
//   tls_verify=false       -> https (unverified), http
//   tls_verify=true        -> https (verified)
//   unset, loopback        -> https (verified when a CA file is configured, else unverified), http
//   unset, anything else   -> https (verified)
std::vector<Endpoint> EndpointCandidates(std::string_view host, std::optional<bool> tls_verify,
                                         const CertFiles& certs);

// ---- URL paths (distribution-spec v1.1, "Endpoints") ----

// Percent-encodes everything except unreserved characters (RFC 3986 2.3).
std::string UrlEncode(std::string_view text);

std::string ManifestPath(std::string_view repository, std::string_view tag_or_digest);  // /v2/<name>/manifests/<ref>
std::string BlobPath(std::string_view repository, std::string_view digest);             // /v2/<name>/blobs/<digest>
std::string UploadPath(std::string_view repository);                                    // /v2/<name>/blobs/uploads/
// POST target of a cross-repository mount: /v2/<name>/blobs/uploads/?mount=<digest>&from=<repo>
std::string MountPath(std::string_view repository, std::string_view digest, std::string_view from);
std::string CatalogPath(uint32_t page_size);  // /v2/_catalog?n=<page_size>

// Resolves a Location or Link target against the URL of the request that returned it: an
// absolute URL stays as is, "/path?q" keeps the scheme and authority of `base`.
std::string ResolveUrl(std::string_view base, std::string_view target);

// Appends "key=value" (value percent-encoded) to the query of `url`.
std::string AddQuery(std::string_view url, std::string_view key, std::string_view value);

// The target of the rel="next" link in an RFC 8288 Link header, as the registry's catalog and
// tags/list paginate (`</v2/_catalog?last=b&n=2>; rel="next"`); "" when there is none.
std::string NextLink(std::string_view link_header);

}  // namespace registry
