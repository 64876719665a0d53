#include "curl_api.h"

#include <dlfcn.h>

namespace registry {
namespace {

struct Loaded {
  CurlApi api{};
  bool ok = false;
  std::string error;

  Loaded() {
    // The soname of libcurl4-openssl-dev's library; RTLD_LOCAL keeps its symbols to us.
    void* lib = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* why = ::dlerror();
      error = std::string("cannot load libcurl (libcurl.so.4): ") + (why ? why : "unknown error");
      return;
    }
    ok = Bind(lib, "curl_global_init", &api.global_init) && Bind(lib, "curl_global_cleanup", &api.global_cleanup) &&
         Bind(lib, "curl_easy_init", &api.easy_init) && Bind(lib, "curl_easy_cleanup", &api.easy_cleanup) &&
         Bind(lib, "curl_easy_reset", &api.easy_reset) && Bind(lib, "curl_easy_setopt", &api.easy_setopt) &&
         Bind(lib, "curl_easy_getinfo", &api.easy_getinfo) && Bind(lib, "curl_easy_perform", &api.easy_perform) &&
         Bind(lib, "curl_easy_strerror", &api.easy_strerror) && Bind(lib, "curl_share_init", &api.share_init) &&
         Bind(lib, "curl_share_setopt", &api.share_setopt) &&
         Bind(lib, "curl_share_cleanup", &api.share_cleanup) &&
         Bind(lib, "curl_slist_append", &api.slist_append) && Bind(lib, "curl_slist_free_all", &api.slist_free_all);
    // Never dlclose'd: handles and the global state live until exit.
    if (ok) api.global_init(CURL_GLOBAL_DEFAULT);
  }
  ~Loaded() {
    if (ok) api.global_cleanup();
  }

  template <class F>
  bool Bind(void* lib, const char* name, F* slot) {
    void* sym = ::dlsym(lib, name);
    if (!sym) {
      error = std::string("libcurl.so.4 lacks ") + name;
      return false;
    }
    *slot = reinterpret_cast<F>(sym);
    return true;
  }
};

const Loaded& Instance() {
  static const Loaded loaded;  // thread-safe initialisation (C++11 magic statics)
  return loaded;
}

}  // namespace

const CurlApi* Curl() { return Instance().ok ? &Instance().api : nullptr; }

const std::string& CurlLoadError() { return Instance().error; }

}  // namespace registry
