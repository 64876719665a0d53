// HttpClient: one HTTP exchange over libcurl, with the registry client's needs and nothing more:
// streamed request and response bodies, response headers, per-request TLS settings, and
// transport errors classified for the retry policy.
//
// Ownership: every CURL*, curl_slist and CURLSH lives in a unique_ptr with its cleanup function.
// libcurl's global state is initialised once per process (std::call_once) before any handle.
//
// Thread-safety: Do() may be called from several threads at once. Each call takes an easy handle
// from a pool (or makes one) and returns it afterwards, so a handle's open connection serves the
// next request; DNS results and TLS sessions are shared through one CURLSH whose lock callbacks
// use a mutex per data kind. Connections themselves are never shared between threads (libcurl
// does not support a connection cache used concurrently).
//
// Secrets: request headers (Authorization) are never logged; CURLOPT_VERBOSE is never set.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "layerstore/status.h"
#include "registry/endpoint.h"

namespace registry {

// Response headers: names lower-cased, in arrival order, repeats kept.
class Headers {
 public:
  void Add(std::string name, std::string value);
  // The first value of `name` (lower case), "" when absent.
  std::string Get(std::string_view name) const;
  std::vector<std::string> GetAll(std::string_view name) const;
  void Clear() { items_.clear(); }

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

struct HttpRequest {
  std::string method = "GET";  // GET, HEAD, POST, PUT, PATCH, DELETE
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  // The request body: `body`, unless body_reader is set, which streams body_size bytes (it fills
  // buf and returns the count, 0 at the end). A reader body can be sent again only when `rewind`
  // is set (and succeeds).
  std::string body;
  std::function<layerstore::Result<size_t>(char* buf, size_t size)> body_reader;
  uint64_t body_size = 0;
  std::function<layerstore::Status()> rewind;
  // Called once with the final status and headers before the first byte of the response body.
  std::function<void(long status, const Headers& headers)> on_response;
  // Receives the body of a 2xx response as it arrives; returning false aborts the transfer.
  // When unset, the body is kept in HttpResponse::body, up to max_body bytes.
  std::function<bool(const char* data, size_t size)> on_body;
  size_t max_body = 4 << 20;
  bool follow_redirects = false;  // blob GETs: registries redirect to storage backends
  std::chrono::seconds connect_timeout{30};
  // A transfer that moves less than 1 byte/s for this long is cut (and may be retried).
  std::chrono::seconds stall_timeout{60};

  bool Replayable() const { return !body_reader || static_cast<bool>(rewind); }
};

struct HttpResponse {
  long status = 0;
  Headers headers;
  std::string body;             // non-2xx bodies (up to 64 KiB), or 2xx bodies without on_body
  bool body_truncated = false;  // the body was longer than the limit
  std::string url;              // effective URL after redirects
};

// How a transport failure (no complete HTTP answer) should be treated.
enum class TransportError {
  kTransient,  // refused, reset, timed out, cut mid-body: worth retrying
  kTls,        // handshake or certificate verification failed: not worth retrying as is
  kAborted,    // on_body or body_reader stopped the transfer
  kFatal,      // malformed URL, out of memory, ...
};

// The outcome of Do(): a response, or a transport error with its kind.
struct HttpResult {
  layerstore::Status status;  // OK when `response` holds an answer
  TransportError error = TransportError::kFatal;
  HttpResponse response;

  bool ok() const { return status.ok(); }
};

class HttpClient {
 public:
  HttpClient();
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Performs one exchange with `tls` settings. Any HTTP status is a successful exchange.
  HttpResult Do(const HttpRequest& request, const Endpoint& tls);

  static std::string UserAgent();

 private:
  struct Shared;
  std::unique_ptr<Shared> shared_;
};

}  // namespace registry
