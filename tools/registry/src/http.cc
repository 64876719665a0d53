#include "registry/http.h"

#include "curl_api.h"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <mutex>

namespace registry {
namespace {

using layerstore::Status;

struct EasyCleanup {
  void operator()(CURL* c) const noexcept { Curl()->easy_cleanup(c); }
};
using EasyPtr = std::unique_ptr<CURL, EasyCleanup>;

struct SlistFree {
  void operator()(curl_slist* l) const noexcept { Curl()->slist_free_all(l); }
};
using SlistPtr = std::unique_ptr<curl_slist, SlistFree>;

struct ShareCleanup {
  void operator()(CURLSH* s) const noexcept { Curl()->share_cleanup(s); }
};
using SharePtr = std::unique_ptr<CURLSH, ShareCleanup>;

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return std::string(s);
}

bool IsDirectory(const char* path) {
  struct stat st;
  return ::stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

// State of one exchange, reached from libcurl's C callbacks through their user pointer.
struct Transfer {
  const HttpRequest* request;
  HttpResponse* response;
  bool started = false;  // on_response was called for the final response
  bool aborted = false;  // a callback stopped the transfer
  Status reader_error;

  bool Success() const { return response->status >= 200 && response->status < 300; }
};

size_t OnHeader(char* data, size_t size, size_t nitems, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * nitems;
  std::string_view line(data, n);
  if (line.rfind("HTTP/", 0) == 0) {
    // A new response (after a redirect or a 100 Continue): forget the previous headers.
    t->response->headers.Clear();
    size_t sp = line.find(' ');
    t->response->status = sp == std::string_view::npos ? 0 : std::atol(std::string(line.substr(sp + 1, 3)).c_str());
    return n;
  }
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    t->response->headers.Add(Lower(Trim(line.substr(0, colon))), Trim(line.substr(colon + 1)));
  }
  return n;
}

size_t OnWrite(char* data, size_t size, size_t nmemb, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * nmemb;
  if (!t->started) {
    t->started = true;
    if (t->request->on_response) t->request->on_response(t->response->status, t->response->headers);
  }
  if (t->Success() && t->request->on_body) {
    if (!t->request->on_body(data, n)) {
      t->aborted = true;
      return 0;  // anything but n makes libcurl fail the transfer with CURLE_WRITE_ERROR
    }
    return n;
  }
  size_t limit = t->Success() ? t->request->max_body : size_t{64} << 10;
  std::string& body = t->response->body;
  if (body.size() < limit) {
    body.append(data, std::min(n, limit - body.size()));
  }
  if (body.size() >= limit && n > 0 && body.size() + n > limit) t->response->body_truncated = true;
  return n;
}

size_t OnRead(char* buf, size_t size, size_t nitems, void* user) {
  auto* t = static_cast<Transfer*>(user);
  auto n = t->request->body_reader(buf, size * nitems);
  if (!n.ok()) {
    t->reader_error = n.status();
    t->aborted = true;
    return CURL_READFUNC_ABORT;
  }
  return *n;
}

// Called by libcurl when it must send an upload again (after a redirect); only a rewind to the
// start is possible.
int OnSeek(void* user, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(user);
  if (offset == 0 && origin == SEEK_SET && t->request->rewind && t->request->rewind().ok()) return CURL_SEEKFUNC_OK;
  return CURL_SEEKFUNC_CANTSEEK;
}

TransportError Classify(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_AGAIN:
      return TransportError::kTransient;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
      return TransportError::kTls;
    default:
      return TransportError::kFatal;
  }
}

}  // namespace

void Headers::Add(std::string name, std::string value) { items_.emplace_back(std::move(name), std::move(value)); }

std::string Headers::Get(std::string_view name) const {
  for (const auto& [k, v] : items_) {
    if (k == name) return v;
  }
  return "";
}

std::vector<std::string> Headers::GetAll(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : items_) {
    if (k == name) out.push_back(v);
  }
  return out;
}

// DNS results and TLS sessions shared by all easy handles of this client, and a pool of idle easy
// handles. Connections are not put in the share: libcurl does not support one connection cache
// used by concurrent threads. Instead each easy handle keeps its own connections, and a handle
// goes back to the pool after its exchange, so the next request (from any thread, one at a time)
// reuses its open connection.
struct HttpClient::Shared {
  SharePtr share;
  std::array<std::mutex, CURL_LOCK_DATA_LAST> locks;
  std::mutex pool_mu;
  std::vector<EasyPtr> pool;  // idle handles, guarded by pool_mu
  static constexpr size_t kMaxIdle = 8;

  EasyPtr Take() {
    {
      std::lock_guard<std::mutex> lock(pool_mu);
      if (!pool.empty()) {
        EasyPtr e = std::move(pool.back());
        pool.pop_back();
        Curl()->easy_reset(e.get());  // options back to defaults; connections and caches stay
        return e;
      }
    }
    return EasyPtr(Curl() ? Curl()->easy_init() : nullptr);
  }
  void Give(EasyPtr e) {
    std::lock_guard<std::mutex> lock(pool_mu);
    if (pool.size() < kMaxIdle) pool.push_back(std::move(e));
  }

  static void Lock(CURL*, curl_lock_data data, curl_lock_access, void* user) {
    static_cast<Shared*>(user)->locks[static_cast<size_t>(data)].lock();
  }
  static void Unlock(CURL*, curl_lock_data data, void* user) {
    static_cast<Shared*>(user)->locks[static_cast<size_t>(data)].unlock();
  }
};

HttpClient::HttpClient() : shared_(new Shared) {
  if (!Curl()) return;  // Do() reports why
  shared_->share.reset(Curl()->share_init());
  if (shared_->share) {
    CURLSH* sh = shared_->share.get();
    Curl()->share_setopt(sh, CURLSHOPT_LOCKFUNC, &Shared::Lock);
    Curl()->share_setopt(sh, CURLSHOPT_UNLOCKFUNC, &Shared::Unlock);
    Curl()->share_setopt(sh, CURLSHOPT_USERDATA, shared_.get());
    Curl()->share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    Curl()->share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  }
}

HttpClient::~HttpClient() = default;

std::string HttpClient::UserAgent() {
#ifdef STRATA_VERSION
  return std::string("strata/") + STRATA_VERSION;
#else
  return "strata";
#endif
}

HttpResult HttpClient::Do(const HttpRequest& request, const Endpoint& tls) {
  HttpResult result;
  if (!Curl()) {
    result.status = Status::Unavailable(CurlLoadError());
    return result;
  }
  EasyPtr easy = shared_->Take();
  if (!easy) {
    result.status = Status::IOError("curl_easy_init failed");
    return result;
  }
  CURL* c = easy.get();
  // However this exchange ends, the handle (and its open connection) goes back to the pool.
  struct GiveBack {
    Shared* shared;
    EasyPtr& easy;
    ~GiveBack() { shared->Give(std::move(easy)); }
  } give_back{shared_.get(), easy};
  Transfer transfer{&request, &result.response};
  char errbuf[CURL_ERROR_SIZE] = {0};

  Curl()->easy_setopt(c, CURLOPT_URL, request.url.c_str());
  Curl()->easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  Curl()->easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM-based DNS timeouts
  Curl()->easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  Curl()->easy_setopt(c, CURLOPT_USERAGENT, UserAgent().c_str());
  if (shared_->share) Curl()->easy_setopt(c, CURLOPT_SHARE, shared_->share.get());
  Curl()->easy_setopt(c, CURLOPT_CONNECTTIMEOUT, static_cast<long>(request.connect_timeout.count()));
  Curl()->easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  Curl()->easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(request.stall_timeout.count()));
  if (request.follow_redirects) {
    Curl()->easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    Curl()->easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    Curl()->easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    // libcurl (>= 7.58) does not send a custom Authorization header to another host after a
    // redirect, so a registry token never reaches the storage backend it redirects to.
  }

  // TLS. An extra CA file replaces libcurl's default bundle, so the system directory is named
  // too: a registry with a private CA may still redirect blobs to a publicly signed backend.
  Curl()->easy_setopt(c, CURLOPT_SSL_VERIFYPEER, tls.verify_tls ? 1L : 0L);
  Curl()->easy_setopt(c, CURLOPT_SSL_VERIFYHOST, tls.verify_tls ? 2L : 0L);
  if (!tls.ca_file.empty()) {
    Curl()->easy_setopt(c, CURLOPT_CAINFO, tls.ca_file.c_str());
    if (IsDirectory("/etc/ssl/certs")) Curl()->easy_setopt(c, CURLOPT_CAPATH, "/etc/ssl/certs");
  }
  if (!tls.client_cert.empty()) {
    Curl()->easy_setopt(c, CURLOPT_SSLCERT, tls.client_cert.c_str());
    Curl()->easy_setopt(c, CURLOPT_SSLKEY, tls.client_key.c_str());
  }

  curl_slist* raw_headers = nullptr;
  bool has_content_type = false;
  for (const std::string& h : request.headers) {
    raw_headers = Curl()->slist_append(raw_headers, h.c_str());
    if (Lower(h.substr(0, 13)) == "content-type:") has_content_type = true;
  }
  // No "Expect: 100-continue" round trip before bodies.
  raw_headers = Curl()->slist_append(raw_headers, "Expect:");
  const bool sends_body = request.method == "POST" || request.method == "PUT" || request.method == "PATCH";
  // libcurl would label a POST body as a form; registries want no type or an explicit one.
  if (sends_body && !has_content_type) raw_headers = Curl()->slist_append(raw_headers, "Content-Type:");
  SlistPtr headers(raw_headers);
  Curl()->easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());

  Curl()->easy_setopt(c, CURLOPT_HEADERFUNCTION, &OnHeader);
  Curl()->easy_setopt(c, CURLOPT_HEADERDATA, &transfer);
  Curl()->easy_setopt(c, CURLOPT_WRITEFUNCTION, &OnWrite);
  Curl()->easy_setopt(c, CURLOPT_WRITEDATA, &transfer);

  if (request.method == "GET") {
    Curl()->easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    Curl()->easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (sends_body && request.body_reader) {
    Curl()->easy_setopt(c, CURLOPT_UPLOAD, 1L);
    Curl()->easy_setopt(c, CURLOPT_READFUNCTION, &OnRead);
    Curl()->easy_setopt(c, CURLOPT_READDATA, &transfer);
    Curl()->easy_setopt(c, CURLOPT_SEEKFUNCTION, &OnSeek);
    Curl()->easy_setopt(c, CURLOPT_SEEKDATA, &transfer);
    Curl()->easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(request.body_size));
    if (request.method != "PUT") Curl()->easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  } else if (sends_body) {
    Curl()->easy_setopt(c, CURLOPT_POST, 1L);
    Curl()->easy_setopt(c, CURLOPT_POSTFIELDS, request.body.data());
    Curl()->easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    if (request.method != "POST") Curl()->easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  } else {
    Curl()->easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }

  CURLcode rc = Curl()->easy_perform(c);
  char* effective = nullptr;
  if (Curl()->easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &effective) == CURLE_OK && effective) {
    result.response.url = effective;
  } else {
    result.response.url = request.url;
  }
  if (rc == CURLE_OK) {
    long code = 0;
    Curl()->easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (code != 0) result.response.status = code;
    // A body-less response still announces itself (HEAD, 201 Created, 202 Accepted).
    if (!transfer.started && request.on_response) request.on_response(result.response.status, result.response.headers);
    return result;
  }
  if (transfer.aborted) {
    result.error = TransportError::kAborted;
    result.status = transfer.reader_error.ok()
                        ? Status::IOError(request.method + " " + request.url + ": transfer stopped by the receiver")
                        : transfer.reader_error;
    return result;
  }
  result.error = Classify(rc);
  std::string detail = errbuf[0] ? errbuf : Curl()->easy_strerror(rc);
  while (!detail.empty() && detail.back() == '\n') detail.pop_back();
  std::string msg = request.method + " " + request.url + ": " + detail;
  switch (result.error) {
    case TransportError::kTransient:
      result.status = Status::Unavailable(msg);
      break;
    case TransportError::kTls:
      result.status = Status::FailedPrecondition(msg);
      break;
    default:
      result.status = Status::IOError(msg);
      break;
  }
  return result;
}

}  // namespace registry
