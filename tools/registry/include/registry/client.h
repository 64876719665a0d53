// Client: the distribution-spec v1.1 client for one registry (one domain), with the request
// flow every operation shares:
//
//   1. The first request pings GET /v2/ on each candidate endpoint (endpoint.h) and keeps the
//      first that answers; the answer (200, or 401 with a challenge) says how it authenticates.
//   2. Each request carries the Authorization the registry asked for: Basic with the stored
//      credentials, or a Bearer token for the request's scopes (fetched from the challenge's
//      realm, with the credentials or anonymously, then cached per scope set until it expires).
//   3. A 401 refreshes the token once (the challenge may widen the scope) and repeats.
//   4. Transient failures (retry.h) are retried with backoff when the request can be replayed;
//      blob downloads resume where they stopped with a Range request instead.
//
// Every manifest and blob read is verified against its digest before it is returned or passed on
// as complete. Errors are Status values naming the registry, repository and object; they never
// contain a password or token.
//
// Thread-safety: all methods may be called from several threads at once (pull and push transfer
// layers in parallel); the endpoint choice and the token cache are guarded by a mutex.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "layerstore/digest.h"
#include "layerstore/status.h"
#include "registry/auth.h"
#include "registry/credentials.h"
#include "registry/endpoint.h"
#include "registry/http.h"
#include "registry/manifest.h"
#include "registry/retry.h"

namespace registry {

struct ClientOptions {
  std::optional<bool> tls_verify;  // --tls-verify; unset: endpoint.h's defaults
  std::string certs_dir = DefaultCertsDir();
  RetryPolicy retry = RetryPolicy::FromEnvironment();
  // Credentials to use; when unset they are looked up in auth_files for the domain.
  std::optional<Credentials> credentials;
  AuthFiles auth_files = DefaultAuthFiles();
};

// A manifest (or index) as served, verified against its digest.
struct FetchedManifest {
  std::string body;
  std::string media_type;
  layerstore::Digest digest;
};

// Where a blob upload stands: the URL to send the next request to, and bytes accepted so far.
struct UploadSession {
  std::string location;
  uint64_t offset = 0;
};

class Client {
 public:
  // `domain` as NormalizeRegistry returns it ("docker.io", "localhost:5000"). No I/O.
  Client(std::string domain, ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const std::string& domain() const { return domain_; }
  const std::string& host() const { return host_; }  // the API host ("registry-1.docker.io")
  // "https://host" once an endpoint is chosen, else "".
  std::string base_url();

  // Chooses the endpoint (see above). Idempotent; every other call does it first.
  layerstore::Status Ping();

  // Verifies the credentials given in the options the way `docker login` does: a Basic registry
  // must accept them on GET /v2/; a Bearer registry's token server must issue a token for them.
  // A registry that requires no authentication accepts anything. Wrong credentials are
  // FailedPrecondition "unauthorized: ..." (the password never appears).
  layerstore::Status CheckLogin();

  // GET /v2/<repo>/manifests/<tag or digest>. Verifies the body against the requested digest, or
  // against the Docker-Content-Digest header for a tag.
  layerstore::Result<FetchedManifest> GetManifest(const std::string& repository, const std::string& reference);

  // HEAD /v2/<repo>/blobs/<digest>: the blob's size when the repository has it, nullopt when not.
  layerstore::Result<std::optional<uint64_t>> HeadBlob(const std::string& repository, const layerstore::Digest& digest,
                                                       std::string_view actions = "pull");

  // GET of a small blob (a config), read whole and verified.
  layerstore::Result<std::string> GetBlob(const std::string& repository, const Descriptor& blob);

  // Streams a blob to `sink` exactly once, in order: a transfer cut short is resumed with
  // "Range: bytes=N-" (a server that ignores Range has its first N bytes skipped), transient
  // errors are retried with backoff, and a body longer than blob.size is refused. `sink`
  // returning false stops everything (the caller's reason is the caller's to report); so does
  // `*cancel` becoming true. `on_retry` (optional) hears about each retry. The content is not
  // hashed here: the consumer verifies the digest of what it received.
  layerstore::Status FetchBlob(const std::string& repository, const Descriptor& blob,
                               const std::function<bool(const char*, size_t)>& sink,
                               const std::atomic<bool>* cancel = nullptr,
                               const std::function<void(const layerstore::Status&, uint64_t offset)>& on_retry = {});

  // POST /v2/<repo>/blobs/uploads/, or with `mount_from` a cross-repository mount of `digest`.
  // Returns nullopt when the registry mounted the blob (201 Created): nothing to upload.
  layerstore::Result<std::optional<UploadSession>> StartUpload(const std::string& repository,
                                                               const layerstore::Digest* digest = nullptr,
                                                               const std::string& mount_from = "");
  // PATCH of one chunk at session->offset (Content-Range), updating the session from the answer.
  // Retried (the chunk is in memory) after asking the registry how much it kept.
  layerstore::Status UploadChunk(const std::string& repository, UploadSession* session, std::string_view chunk);
  // PUT <location>?digest=<d>: completes an upload; `body` is the last (or only) piece.
  layerstore::Status FinishUpload(const std::string& repository, const UploadSession& session,
                                  const layerstore::Digest& digest, std::string_view body = {});
  // Monolithic upload of a blob read from `reader` (size bytes): POST then one PUT with the
  // whole body. `rewind` restarts the reader for a retry.
  layerstore::Status UploadMonolithic(const std::string& repository, const layerstore::Digest& digest, uint64_t size,
                                      const std::function<layerstore::Result<size_t>(char*, size_t)>& reader,
                                      const std::function<layerstore::Status()>& rewind);

  // PUT /v2/<repo>/manifests/<reference>. Returns the digest the registry reports (checked
  // against the body's).
  layerstore::Result<layerstore::Digest> PutManifest(const std::string& repository, const std::string& reference,
                                                     std::string_view media_type, const std::string& body);

  // One page of GET /v2/_catalog; `url` is "" for the first page, else the previous page's next.
  struct CatalogPage {
    std::vector<std::string> repositories;
    std::string next;  // absolute URL of the next page, "" at the end
  };
  layerstore::Result<CatalogPage> Catalog(const std::string& url, uint32_t page_size);

  // GET of a path on this registry with the auth flow (search's /v1/search). `scopes` may be
  // empty. Returns the response whatever its status.
  layerstore::Result<HttpResponse> Get(const std::string& path_or_url, const std::vector<std::string>& scopes);

 private:
  enum class AuthMode { kUnknown, kNone, kBasic, kBearer };

  // Sends `request` (its url may be a path, made absolute here) with auth for `scopes`; handles
  // 401 once and, when `retry` and the request is replayable, transient failures.
  layerstore::Result<HttpResponse> Send(HttpRequest request, const std::vector<std::string>& scopes, bool retry);
  // Authorization header for scopes ("" for none), fetching a token when needed.
  layerstore::Result<std::string> Authorization(const std::vector<std::string>& scopes, bool force_refresh);
  layerstore::Result<Token> FetchToken(const Challenge& bearer, const std::vector<std::string>& scopes);
  // The credentials to send (options, else the auth files), loaded on first use. REQUIRES: mu_ held.
  std::optional<Credentials> CredentialsLocked();
  // Learns the auth scheme from a 401's WWW-Authenticate; false when nothing usable was offered.
  bool LearnChallenge(const Headers& headers, std::vector<std::string>* extra_scopes);
  layerstore::Status ErrorFromResponse(const std::string& what, const HttpResponse& response);
  std::string Absolute(const std::string& path_or_url);
  void Sleep(std::chrono::milliseconds d, const std::atomic<bool>* cancel);

  const std::string domain_;
  const std::string host_;
  ClientOptions options_;
  HttpClient http_;

  std::mutex ping_mu_;  // held while choosing the endpoint, so only one thread pings; before mu_
  std::mutex mu_;       // guards everything below
  bool pinged_ = false;
  layerstore::Status ping_status_;
  Endpoint endpoint_;
  std::string base_url_;
  AuthMode mode_ = AuthMode::kUnknown;
  Challenge bearer_;
  bool credentials_loaded_ = false;
  std::optional<Credentials> credentials_;
  std::map<std::string, Token> tokens_;  // key: scopes joined by ' '

  std::mutex token_fetch_mu_;  // one token request at a time; taken before mu_, never inside it
};

// "registry/repository" as remote_blobs and messages name a location ("localhost:5000/app").
std::string Location(const std::string& domain, const std::string& repository);

}  // namespace registry
