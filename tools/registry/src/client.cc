#include "registry/client.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "layerstore/sha256.h"

namespace registry {
namespace {

using json = nlohmann::json;
using layerstore::Digest;
using layerstore::Result;
using layerstore::Sha256;
using layerstore::Status;

std::string JoinScopes(std::vector<std::string> scopes) {
  std::sort(scopes.begin(), scopes.end());
  scopes.erase(std::unique(scopes.begin(), scopes.end()), scopes.end());
  std::string key;
  for (const std::string& s : scopes) key += (key.empty() ? "" : " ") + s;
  return key;
}

// "host[:port]" of a URL, lower case.
std::string HostOfUrl(std::string_view url) {
  size_t start = url.find("://");
  start = start == std::string_view::npos ? 0 : start + 3;
  size_t end = url.find_first_of("/?#", start);
  std::string host(url.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
  std::transform(host.begin(), host.end(), host.begin(), [](unsigned char c) { return std::tolower(c); });
  return host;
}

// A request body read from memory that can be replayed: the reader and rewind of HttpRequest.
struct MemoryBody {
  std::string_view data;
  size_t pos = 0;

  void Attach(HttpRequest* r) {
    r->body_size = data.size();
    r->body_reader = [this](char* buf, size_t size) -> Result<size_t> {
      size_t n = std::min(size, data.size() - pos);
      std::memcpy(buf, data.data() + pos, n);
      pos += n;
      return n;
    };
    r->rewind = [this]() -> Status {
      pos = 0;
      return {};
    };
  }
};

// "0-1023" (a Range header of an upload status) -> 1024 bytes received.
std::optional<uint64_t> UploadedBytes(const std::string& range) {
  size_t dash = range.find('-');
  if (dash == std::string::npos) return std::nullopt;
  std::string end = range.substr(dash + 1);
  if (end.empty() || end.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  return std::stoull(end) + 1;
}

}  // namespace

std::string Location(const std::string& domain, const std::string& repository) { return domain + "/" + repository; }

Client::Client(std::string domain, ClientOptions options)
    : domain_(std::move(domain)), host_(ApiHost(domain_)), options_(std::move(options)) {}

Client::~Client() = default;

std::string Client::base_url() {
  std::lock_guard<std::mutex> lock(mu_);
  return base_url_;
}

std::string Client::Absolute(const std::string& path_or_url) {
  if (path_or_url.find("://") != std::string::npos) return path_or_url;
  std::lock_guard<std::mutex> lock(mu_);
  return base_url_ + path_or_url;
}

void Client::Sleep(std::chrono::milliseconds d, const std::atomic<bool>* cancel) {
  auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until) {
    if (cancel && cancel->load()) return;
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(
        std::chrono::milliseconds(50),
        std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()) +
            std::chrono::milliseconds(1)));
  }
}

Status Client::Ping() {
  std::lock_guard<std::mutex> ping_lock(ping_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (pinged_) return ping_status_;
  }
  CertFiles certs = FindCertFiles(options_.certs_dir, host_);
  std::vector<Endpoint> candidates = EndpointCandidates(host_, options_.tls_verify, certs);
  Status first_error;
  for (const Endpoint& ep : candidates) {
    HttpRequest req;
    req.url = ep.BaseUrl(host_) + "/v2/";
    req.connect_timeout = std::chrono::seconds(15);
    HttpResult res;
    for (int attempt = 1;; ++attempt) {
      res = http_.Do(req, ep);
      bool transient = (!res.ok() && res.error == TransportError::kTransient) ||
                       (res.ok() && RetryPolicy::RetryableStatus(res.response.status));
      if (!transient || !options_.retry.ShouldRetry(attempt)) break;
      spdlog::debug("GET {}: {}; retrying", req.url, res.ok() ? std::to_string(res.response.status) : res.status.message());
      Sleep(options_.retry.Delay(attempt), nullptr);
    }
    Status error;
    if (!res.ok()) {
      error = res.status;
      if (res.error == TransportError::kTls && ep.verify_tls) {
        error = Status::FailedPrecondition(
            res.status.message() + " (the registry's certificate is not trusted: put its CA in " + options_.certs_dir +
            "/" + host_ + "/ca.crt, or use --tls-verify=false for a registry you trust)");
      }
    } else if (res.response.status == 200 || res.response.status == 401) {
      std::lock_guard<std::mutex> lock(mu_);
      endpoint_ = ep;
      base_url_ = ep.BaseUrl(host_);
      pinged_ = true;
      ping_status_ = Status();
      if (res.response.status == 200) mode_ = AuthMode::kNone;
    } else {
      error = ErrorFromResponse(host_ + " does not look like a registry: GET /v2/", res.response);
    }
    if (error.ok()) {
      spdlog::debug("registry {}: using {} (TLS verification {})", host_, base_url(), ep.verify_tls ? "on" : "off");
      if (res.response.status == 401) LearnChallenge(res.response.headers, nullptr);
      return {};
    }
    spdlog::debug("registry {}: {}", host_, error.message());
    if (first_error.ok()) first_error = error;
  }
  std::lock_guard<std::mutex> lock(mu_);
  pinged_ = true;
  ping_status_ = first_error.WithContext("cannot reach registry " + domain_);
  return ping_status_;
}

bool Client::LearnChallenge(const Headers& headers, std::vector<std::string>* extra_scopes) {
  std::optional<Challenge> bearer, basic;
  for (const std::string& value : headers.GetAll("www-authenticate")) {
    for (Challenge& c : ParseWwwAuthenticate(value)) {
      if (c.scheme == "bearer" && !c.Param("realm").empty() && !bearer) bearer = c;
      if (c.scheme == "basic" && !basic) basic = c;
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (bearer) {
    mode_ = AuthMode::kBearer;
    bearer_ = *bearer;
    std::string scope = bearer->Param("scope");
    // The challenge's scope may name more than one, separated by spaces.
    for (size_t i = 0; extra_scopes && i < scope.size();) {
      size_t j = scope.find(' ', i);
      if (j == std::string::npos) j = scope.size();
      if (j > i) extra_scopes->push_back(scope.substr(i, j - i));
      i = j + 1;
    }
    return true;
  }
  if (basic) {
    mode_ = AuthMode::kBasic;
    return true;
  }
  return false;
}

std::optional<Credentials> Client::CredentialsLocked() {
  if (!credentials_loaded_) {
    credentials_loaded_ = true;
    if (options_.credentials) {
      credentials_ = options_.credentials;
    } else {
      auto found = LookupCredentials(options_.auth_files, domain_);
      if (found.ok()) {
        credentials_ = *found;
      } else {
        spdlog::warn("ignoring stored credentials: {}", found.status().message());
      }
    }
  }
  return credentials_;
}

Result<Token> Client::FetchToken(const Challenge& bearer, const std::vector<std::string>& scopes) {
  std::optional<Credentials> creds;
  {
    std::lock_guard<std::mutex> lock(mu_);
    creds = CredentialsLocked();
  }
  std::string url = TokenUrl(bearer, scopes);
  if (creds && !creds->username.empty()) url = AddQuery(url, "account", creds->username);
  std::string realm_host = HostOfUrl(url);
  Endpoint ep = EndpointCandidates(realm_host, options_.tls_verify, FindCertFiles(options_.certs_dir, realm_host))[0];
  HttpRequest req;
  req.url = url;
  if (creds) req.headers.push_back("Authorization: " + BasicAuthorization(*creds));
  auto sent_at = std::chrono::steady_clock::now();
  HttpResult res;
  for (int attempt = 1;; ++attempt) {
    res = http_.Do(req, ep);
    bool transient = (!res.ok() && res.error == TransportError::kTransient) ||
                     (res.ok() && RetryPolicy::RetryableStatus(res.response.status));
    if (!transient || !options_.retry.ShouldRetry(attempt)) break;
    Sleep(options_.retry.Delay(attempt), nullptr);
  }
  // The token URL carries no secret (credentials travel in the header), so naming it is safe.
  if (!res.ok()) return res.status.WithContext("requesting a token from " + realm_host);
  spdlog::debug("GET {} -> {}", url, res.response.status);
  if (res.response.status == 401 || res.response.status == 403) {
    return Status::FailedPrecondition(creds ? "unauthorized: incorrect username or password (token server " +
                                                  realm_host + " refused the credentials of " + creds->username + ")"
                                            : "unauthorized: authentication required (token server " + realm_host +
                                                  " refused an anonymous token; log in with strata login)");
  }
  if (res.response.status != 200) return ErrorFromResponse("requesting a token from " + realm_host, res.response);
  auto token = ParseTokenResponse(res.response.body, sent_at);
  if (!token.ok()) return token.status().WithContext(realm_host);
  return token;
}

Result<std::string> Client::Authorization(const std::vector<std::string>& scopes, bool force_refresh) {
  std::lock_guard<std::mutex> fetch_lock(token_fetch_mu_);
  std::unique_lock<std::mutex> lock(mu_);
  std::optional<Credentials> creds = CredentialsLocked();
  switch (mode_) {
    case AuthMode::kBasic:
      return creds ? BasicAuthorization(*creds) : std::string();
    case AuthMode::kBearer: {
      std::string key = JoinScopes(scopes);
      auto it = tokens_.find(key);
      if (!force_refresh && it != tokens_.end() && it->second.expires > std::chrono::steady_clock::now()) {
        return "Bearer " + it->second.value;
      }
      Challenge bearer = bearer_;
      lock.unlock();
      LS_ASSIGN_OR_RETURN(Token token, FetchToken(bearer, scopes));
      lock.lock();
      tokens_[key] = token;
      return "Bearer " + token.value;
    }
    default:
      return std::string();
  }
}

Status Client::ErrorFromResponse(const std::string& what, const HttpResponse& response) {
  std::string detail;
  json j = json::parse(response.body, nullptr, false);
  if (j.is_object() && j.contains("errors") && j["errors"].is_array() && !j["errors"].empty() &&
      j["errors"][0].is_object()) {
    const json& e = j["errors"][0];
    std::string code = e.value("code", "");
    std::string message = e.value("message", "");
    std::transform(code.begin(), code.end(), code.begin(), [](unsigned char c) { return c == '_' ? ' ' : std::tolower(c); });
    detail = code.empty() ? message : (message.empty() || message == code ? code : code + ": " + message);
  } else if (j.is_object() && j.contains("details") && j["details"].is_string()) {
    detail = j["details"].get<std::string>();  // Docker Hub's v1 API
  }
  std::string msg = what + ": " + (detail.empty() ? "" : detail + " ") + "(HTTP " + std::to_string(response.status) + ")";
  long s = response.status;
  if (s == 404) return Status::NotFound(msg);
  if (s == 401 || s == 403) return Status::FailedPrecondition(msg);
  if (s == 429 || s >= 500) return Status::Unavailable(msg);
  return Status::InvalidArgument(msg);
}

Result<HttpResponse> Client::Send(HttpRequest request, const std::vector<std::string>& scopes, bool retry) {
  LS_RETURN_IF_ERROR(Ping());
  request.url = Absolute(request.url);
  Endpoint ep;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ep = endpoint_;
  }
  std::vector<std::string> want = scopes;
  // Credentials and tokens are for this registry only: an absolute URL elsewhere (Docker Hub's
  // search on index.docker.io) is sent without them.
  std::string host_lower = host_;
  std::transform(host_lower.begin(), host_lower.end(), host_lower.begin(), [](unsigned char c) { return std::tolower(c); });
  const bool ours = HostOfUrl(request.url) == host_lower;
  bool auth_retried = !ours, refresh = false, first_send = true;
  const size_t base_headers = request.headers.size();
  for (int attempt = 1;; ++attempt) {
    std::string authz;
    if (ours) {
      LS_ASSIGN_OR_RETURN(authz, Authorization(want, refresh));
    }
    refresh = false;
    request.headers.resize(base_headers);
    if (!authz.empty()) request.headers.push_back("Authorization: " + authz);
    if (!first_send && request.rewind) LS_RETURN_IF_ERROR(request.rewind());
    first_send = false;
    HttpResult res = http_.Do(request, ep);
    if (!res.ok()) {
      spdlog::debug("{} {}: {}", request.method, request.url, res.status.message());
      if (res.error == TransportError::kTransient && retry && request.Replayable() &&
          options_.retry.ShouldRetry(attempt)) {
        Sleep(options_.retry.Delay(attempt), nullptr);
        continue;
      }
      return res.status;
    }
    HttpResponse& resp = res.response;
    spdlog::debug("{} {} -> {}", request.method, request.url, resp.status);
    if (resp.status == 401 && !auth_retried) {
      auth_retried = true;
      std::vector<std::string> extra;
      if (LearnChallenge(resp.headers, &extra)) {
        for (std::string& s : extra) {
          if (std::find(want.begin(), want.end(), s) == want.end()) want.push_back(std::move(s));
        }
        refresh = true;
        --attempt;  // an auth round is not a failure
        continue;
      }
    }
    if (retry && request.Replayable() && RetryPolicy::RetryableStatus(resp.status) && options_.retry.ShouldRetry(attempt)) {
      spdlog::debug("{} {}: HTTP {}; retrying", request.method, request.url, resp.status);
      Sleep(options_.retry.Delay(attempt, ParseRetryAfter(resp.headers.Get("retry-after"))), nullptr);
      continue;
    }
    return std::move(resp);
  }
}

Status Client::CheckLogin() {
  LS_RETURN_IF_ERROR(Ping());
  AuthMode mode;
  Challenge bearer;
  {
    std::lock_guard<std::mutex> lock(mu_);
    mode = mode_;
    bearer = bearer_;
  }
  if (mode == AuthMode::kBearer) {
    // Docker asks the token server for a token with no scope: it answers 200 only for valid
    // credentials (or anonymously, which it grants no access with).
    auto token = FetchToken(bearer, {});
    return token.status();
  }
  HttpRequest req;
  req.url = "/v2/";
  LS_ASSIGN_OR_RETURN(HttpResponse resp, Send(req, {}, true));
  if (resp.status == 200) return {};
  if (resp.status == 401) {
    bool have;
    {
      std::lock_guard<std::mutex> lock(mu_);
      have = CredentialsLocked().has_value();
    }
    return Status::FailedPrecondition(have ? "unauthorized: incorrect username or password"
                                           : "unauthorized: authentication required");
  }
  return ErrorFromResponse("login to " + domain_, resp);
}

Result<FetchedManifest> Client::GetManifest(const std::string& repository, const std::string& reference) {
  HttpRequest req;
  req.url = ManifestPath(repository, reference);
  req.follow_redirects = true;
  req.headers.push_back("Accept: " + ManifestAccept());
  req.max_body = kMaxManifestBytes;
  std::string what = "manifest " + Location(domain_, repository) + (reference.rfind("sha256:", 0) == 0 ? "@" : ":") + reference;
  LS_ASSIGN_OR_RETURN(HttpResponse resp, Send(req, {RepositoryScope(repository, "pull")}, true));
  if (resp.status == 401 || resp.status == 403) {
    return Status::FailedPrecondition("pull access denied for " + Location(domain_, repository) +
                                      ", repository does not exist or may require 'strata login'");
  }
  if (resp.status != 200) return ErrorFromResponse(what, resp);
  if (resp.body_truncated) {
    return Status::InvalidArgument(what + " is larger than " + std::to_string(kMaxManifestBytes) + " bytes");
  }
  FetchedManifest m;
  m.digest = Sha256::Of(resp.body);
  if (reference.rfind("sha256:", 0) == 0) {
    LS_ASSIGN_OR_RETURN(Digest want, Digest::Parse(reference));
    if (want != m.digest) {
      return Status::InvalidArgument(what + ": digest mismatch: the registry served content with digest " + m.digest.str());
    }
  } else if (std::string header = resp.headers.Get("docker-content-digest"); !header.empty()) {
    auto said = Digest::Parse(header);
    if (said.ok() && *said != m.digest) {
      return Status::InvalidArgument(what + ": digest mismatch: the registry says " + said->str() +
                                     " but served content with digest " + m.digest.str());
    }
  }
  LS_ASSIGN_OR_RETURN(m.media_type, ManifestMediaType(resp.headers.Get("content-type"), resp.body));
  m.body = std::move(resp.body);
  return m;
}

Result<std::optional<uint64_t>> Client::HeadBlob(const std::string& repository, const Digest& digest,
                                                 std::string_view actions) {
  HttpRequest req;
  req.method = "HEAD";
  req.url = BlobPath(repository, digest.str());
  req.follow_redirects = true;
  LS_ASSIGN_OR_RETURN(HttpResponse resp, Send(req, {RepositoryScope(repository, actions)}, true));
  if (resp.status == 404) return std::optional<uint64_t>();
  if (resp.status != 200) return ErrorFromResponse("HEAD blob " + digest.str() + " in " + Location(domain_, repository), resp);
  std::string length = resp.headers.Get("content-length");
  uint64_t size = length.empty() || length.find_first_not_of("0123456789") != std::string::npos ? 0 : std::stoull(length);
  return std::optional<uint64_t>(size);
}

Result<std::string> Client::GetBlob(const std::string& repository, const Descriptor& blob) {
  constexpr uint64_t kMaxSmallBlob = 64 << 20;
  if (blob.size > kMaxSmallBlob) {
    return Status::InvalidArgument("blob " + blob.digest.str() + " is too large to read into memory");
  }
  std::string data;
  Status s = FetchBlob(repository, blob, [&](const char* p, size_t n) {
    data.append(p, n);
    return true;
  });
  LS_RETURN_IF_ERROR(s);
  if (data.size() != blob.size) {
    return Status::InvalidArgument("blob " + blob.digest.str() + " from " + Location(domain_, repository) + ": size mismatch: expected " +
                                   std::to_string(blob.size) + " bytes, got " + std::to_string(data.size()));
  }
  Digest got = Sha256::Of(data);
  if (got != blob.digest) {
    return Status::InvalidArgument("blob " + blob.digest.str() + " from " + Location(domain_, repository) +
                                   ": digest mismatch: content has digest " + got.str());
  }
  return data;
}

Status Client::FetchBlob(const std::string& repository, const Descriptor& blob,
                         const std::function<bool(const char*, size_t)>& sink, const std::atomic<bool>* cancel,
                         const std::function<void(const Status&, uint64_t)>& on_retry) {
  const std::string what = "blob " + blob.digest.str() + " from " + Location(domain_, repository);
  uint64_t delivered = 0;
  for (int attempt = 1;; ++attempt) {
    if (cancel && cancel->load()) return Status::Unavailable(what + ": cancelled");
    HttpRequest req;
    req.url = BlobPath(repository, blob.digest.str());
    req.follow_redirects = true;
    if (delivered > 0) req.headers.push_back("Range: bytes=" + std::to_string(delivered) + "-");
    // Per response: how many leading bytes to drop (a 200 answer to a Range request repeats
    // what we already have) and whether the answer is usable at all.
    uint64_t skip = 0;
    bool bad_range = false, too_long = false, stopped = false;
    const uint64_t resume_at = delivered;
    req.on_response = [&](long status, const Headers& headers) {
      if (status == 200) {
        skip = resume_at;
      } else if (status == 206) {
        std::string cr = headers.Get("content-range");  // "bytes 100-199/200"
        size_t sp = cr.find(' ');
        uint64_t start = UINT64_MAX;
        if (sp != std::string::npos) {
          std::string num = cr.substr(sp + 1, cr.find('-', sp) - sp - 1);
          if (!num.empty() && num.find_first_not_of("0123456789") == std::string::npos) start = std::stoull(num);
        }
        if (start != resume_at) bad_range = true;
      }
    };
    req.on_body = [&](const char* data, size_t n) {
      if (bad_range) return false;
      if (cancel && cancel->load()) {
        stopped = true;
        return false;
      }
      if (skip > 0) {
        size_t drop = static_cast<size_t>(std::min<uint64_t>(skip, n));
        data += drop;
        n -= drop;
        skip -= drop;
        if (n == 0) return true;
      }
      if (delivered + n > blob.size) {
        too_long = true;
        return false;
      }
      if (!sink(data, n)) {
        stopped = true;
        return false;
      }
      delivered += n;
      return true;
    };
    auto sent = Send(req, {RepositoryScope(repository, "pull")}, false);
    if (stopped) return Status::Unavailable(what + ": transfer stopped");
    if (too_long) return Status::InvalidArgument(what + ": the registry sent more than the " + std::to_string(blob.size) + " bytes the manifest declares");
    if (bad_range) return Status::InvalidArgument(what + ": the registry answered a resume request with the wrong range");
    Status failure;
    if (!sent.ok()) {
      // A transfer cut short: retry from where it stopped.
      if (sent.status().code() != layerstore::Code::kUnavailable) return sent.status();
      failure = sent.status();
    } else {
      HttpResponse& resp = *sent;
      if (resp.status == 200 || resp.status == 206) {
        if (delivered == blob.size) return {};
        failure = Status::Unavailable(what + ": connection closed after " + std::to_string(delivered) + " of " +
                                      std::to_string(blob.size) + " bytes");
      } else if (resp.status == 416 && delivered == blob.size) {
        return {};
      } else if (RetryPolicy::RetryableStatus(resp.status)) {
        failure = ErrorFromResponse(what, resp);
      } else if (resp.status == 401 || resp.status == 403) {
        return Status::FailedPrecondition("pull access denied for " + Location(domain_, repository) + ": " +
                                          ErrorFromResponse(what, resp).message());
      } else {
        return ErrorFromResponse(what, resp);
      }
    }
    if (!options_.retry.ShouldRetry(attempt)) {
      return failure.WithContext("giving up after " + std::to_string(attempt) + " attempts");
    }
    spdlog::debug("{}; retrying from byte {}", failure.message(), delivered);
    if (on_retry) on_retry(failure, delivered);
    Sleep(options_.retry.Delay(attempt), cancel);
  }
}

Result<std::optional<UploadSession>> Client::StartUpload(const std::string& repository, const Digest* digest,
                                                         const std::string& mount_from) {
  HttpRequest req;
  req.method = "POST";
  std::vector<std::string> scopes = {RepositoryScope(repository, "pull,push")};
  if (digest && !mount_from.empty()) {
    req.url = MountPath(repository, digest->str(), mount_from);
    scopes.push_back(RepositoryScope(mount_from, "pull"));
  } else {
    req.url = UploadPath(repository);
  }
  LS_ASSIGN_OR_RETURN(HttpResponse resp, Send(req, scopes, true));
  if (resp.status == 201 && digest && !mount_from.empty()) return std::optional<UploadSession>();
  if (resp.status != 202) return ErrorFromResponse("starting an upload to " + Location(domain_, repository), resp);
  std::string location = resp.headers.Get("location");
  if (location.empty()) return Status::InvalidArgument("the registry started an upload without a Location");
  return std::optional<UploadSession>(UploadSession{ResolveUrl(resp.url, location), 0});
}

Status Client::UploadChunk(const std::string& repository, UploadSession* session, std::string_view chunk) {
  std::vector<std::string> scopes = {RepositoryScope(repository, "pull,push")};
  size_t sent_from = 0;  // bytes of `chunk` the registry has confirmed
  for (int attempt = 1;; ++attempt) {
    std::string_view rest = chunk.substr(sent_from);
    if (rest.empty()) return {};
    HttpRequest req;
    req.method = "PATCH";
    req.url = session->location;
    req.headers.push_back("Content-Type: application/octet-stream");
    req.headers.push_back("Content-Range: " + std::to_string(session->offset) + "-" +
                          std::to_string(session->offset + rest.size() - 1));
    MemoryBody body{rest};
    body.Attach(&req);
    auto sent = Send(req, scopes, false);
    if (sent.ok() && sent->status == 202) {
      std::string location = sent->headers.Get("location");
      if (!location.empty()) session->location = ResolveUrl(sent->url, location);
      session->offset += rest.size();
      return {};
    }
    Status failure = sent.ok() ? ErrorFromResponse("uploading to " + Location(domain_, repository), *sent) : sent.status();
    bool transient = !sent.ok() ? failure.code() == layerstore::Code::kUnavailable : RetryPolicy::RetryableStatus(sent->status);
    if (!transient || !options_.retry.ShouldRetry(attempt)) return failure;
    Sleep(options_.retry.Delay(attempt), nullptr);
    // Ask how much of the upload the registry kept (GET on the session: 204 + Range: 0-N).
    HttpRequest status_req;
    status_req.url = session->location;
    auto st = Send(status_req, scopes, true);
    if (!st.ok() || (st->status != 204 && st->status != 202)) return failure;
    std::string location = st->headers.Get("location");
    if (!location.empty()) session->location = ResolveUrl(st->url, location);
    std::optional<uint64_t> kept = UploadedBytes(st->headers.Get("range"));
    uint64_t have = kept.value_or(0);
    if (have < session->offset || have > session->offset + rest.size()) return failure;
    sent_from += static_cast<size_t>(have - session->offset);
    session->offset = have;
  }
}

Status Client::FinishUpload(const std::string& repository, const UploadSession& session, const Digest& digest,
                            std::string_view body) {
  HttpRequest req;
  req.method = "PUT";
  req.url = AddQuery(session.location, "digest", digest.str());
  req.headers.push_back("Content-Type: application/octet-stream");
  MemoryBody mem{body};
  mem.Attach(&req);
  auto sent = Send(req, {RepositoryScope(repository, "pull,push")}, true);
  if (sent.ok() && (sent->status == 201 || sent->status == 204)) return {};
  Status failure = sent.ok() ? ErrorFromResponse("completing the upload of " + digest.str() + " to " +
                                                     Location(domain_, repository), *sent)
                             : sent.status();
  // A PUT whose answer was lost may have completed: the blob being there settles it.
  auto present = HeadBlob(repository, digest, "pull,push");
  if (present.ok() && present->has_value()) return {};
  return failure;
}

Status Client::UploadMonolithic(const std::string& repository, const Digest& digest, uint64_t size,
                                const std::function<Result<size_t>(char*, size_t)>& reader,
                                const std::function<Status()>& rewind) {
  for (int attempt = 1;; ++attempt) {
    LS_ASSIGN_OR_RETURN(auto session, StartUpload(repository));
    HttpRequest req;
    req.method = "PUT";
    req.url = AddQuery(session->location, "digest", digest.str());
    req.headers.push_back("Content-Type: application/octet-stream");
    req.body_reader = reader;
    req.body_size = size;
    req.rewind = rewind;
    if (attempt > 1 && rewind) LS_RETURN_IF_ERROR(rewind());
    auto sent = Send(req, {RepositoryScope(repository, "pull,push")}, false);
    if (sent.ok() && (sent->status == 201 || sent->status == 204)) return {};
    Status failure = sent.ok() ? ErrorFromResponse("uploading " + digest.str() + " to " + Location(domain_, repository), *sent)
                               : sent.status();
    bool transient = !sent.ok() ? failure.code() == layerstore::Code::kUnavailable : RetryPolicy::RetryableStatus(sent->status);
    if (!transient || !rewind || !options_.retry.ShouldRetry(attempt)) return failure;
    Sleep(options_.retry.Delay(attempt), nullptr);
  }
}

Result<Digest> Client::PutManifest(const std::string& repository, const std::string& reference,
                                   std::string_view media_type, const std::string& body) {
  HttpRequest req;
  req.method = "PUT";
  req.url = ManifestPath(repository, reference);
  req.headers.push_back("Content-Type: " + std::string(media_type));
  req.body = body;
  LS_ASSIGN_OR_RETURN(HttpResponse resp, Send(req, {RepositoryScope(repository, "pull,push")}, true));
  if (resp.status != 201 && resp.status != 200) {
    return ErrorFromResponse("pushing manifest " + Location(domain_, repository) + ":" + reference, resp);
  }
  Digest mine = Sha256::Of(body);
  if (std::string header = resp.headers.Get("docker-content-digest"); !header.empty()) {
    auto said = Digest::Parse(header);
    if (said.ok() && *said != mine) {
      return Status::InvalidArgument("the registry stored manifest " + Location(domain_, repository) + ":" + reference +
                                     " as " + said->str() + ", expected " + mine.str());
    }
  }
  return mine;
}

Result<Client::CatalogPage> Client::Catalog(const std::string& url, uint32_t page_size) {
  HttpRequest req;
  req.url = url.empty() ? CatalogPath(page_size) : url;
  LS_ASSIGN_OR_RETURN(HttpResponse resp, Send(req, {"registry:catalog:*"}, true));
  if (resp.status != 200) return ErrorFromResponse("listing the catalog of " + domain_, resp);
  json j = json::parse(resp.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::InvalidArgument("the catalog of " + domain_ + " is not JSON");
  CatalogPage page;
  if (j.contains("repositories") && j["repositories"].is_array()) {
    for (const json& r : j["repositories"]) {
      if (r.is_string()) page.repositories.push_back(r.get<std::string>());
    }
  }
  std::string next = NextLink(resp.headers.Get("link"));
  if (!next.empty()) page.next = ResolveUrl(resp.url, next);
  return page;
}

Result<HttpResponse> Client::Get(const std::string& path_or_url, const std::vector<std::string>& scopes) {
  HttpRequest req;
  req.url = path_or_url;
  return Send(req, scopes, true);
}

}  // namespace registry
