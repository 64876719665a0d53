// libcurl, loaded when the first HTTP client is made rather than at every strata start: its
// library tree (TLS, HTTP/2, Kerberos, LDAP, IDN...) takes about 7 ms of CPU to map and relocate,
// which every command, `strata run` above all, would pay though only registry commands use it.
// The headers are libcurl's own; only the linking is deferred.
#pragma once

#include <curl/curl.h>

#include <string>

namespace registry {

struct CurlApi {
  CURLcode (*global_init)(long flags);
  void (*global_cleanup)();
  CURL* (*easy_init)();
  void (*easy_cleanup)(CURL* handle);
  void (*easy_reset)(CURL* handle);
  CURLcode (*easy_setopt)(CURL* handle, CURLoption option, ...);
  CURLcode (*easy_getinfo)(CURL* handle, CURLINFO info, ...);
  CURLcode (*easy_perform)(CURL* handle);
  const char* (*easy_strerror)(CURLcode code);
  CURLSH* (*share_init)();
  CURLSHcode (*share_setopt)(CURLSH* share, CURLSHoption option, ...);
  CURLSHcode (*share_cleanup)(CURLSH* share);
  curl_slist* (*slist_append)(curl_slist* list, const char* text);
  void (*slist_free_all)(curl_slist* list);
};

// libcurl's functions, loaded (and curl_global_init run) on the first call; nullptr when the
// library cannot be loaded, and CurlLoadError() then says why.
const CurlApi* Curl();
const std::string& CurlLoadError();

}  // namespace registry
