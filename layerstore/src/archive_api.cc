#include "archive_api.h"

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace layerstore {
namespace {

// The soname of libarchive-dev's library (libarchive13); RTLD_LOCAL keeps its symbols to us.
constexpr char kLibrary[] = "libarchive.so.13";

struct Loaded {
  ArchiveApi api{};
  std::string error;

  Loaded() {
    void* lib = ::dlopen(kLibrary, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* why = ::dlerror();
      error = std::string("cannot load libarchive (") + kLibrary + "): " + (why ? why : "unknown error");
      return;
    }
    // Never dlclose'd: handles may live until exit.
#define LAYERSTORE_ARCHIVE_BIND(name) Bind(lib, #name, &api.name);
    LAYERSTORE_ARCHIVE_FUNCTIONS(LAYERSTORE_ARCHIVE_BIND)
#undef LAYERSTORE_ARCHIVE_BIND
  }

  template <class F>
  void Bind(void* lib, const char* name, F* slot) {
    void* sym = ::dlsym(lib, name);
    if (!sym && error.empty()) error = std::string(kLibrary) + " lacks " + name;
    *slot = reinterpret_cast<F>(sym);
  }
};

const Loaded& Instance() {
  static const Loaded loaded;  // thread-safe initialisation (C++11 magic statics)
  return loaded;
}

}  // namespace

Status LoadArchive() {
  const Loaded& l = Instance();
  return l.error.empty() ? Status() : Status::Unavailable(l.error);
}

const ArchiveApi& Archive() {
  const Loaded& l = Instance();
  if (!l.error.empty()) {
    // A way into libarchive that skipped LoadArchive(): a bug, and a null call otherwise.
    std::fprintf(stderr, "strata: %s\n", l.error.c_str());
    std::abort();
  }
  return l.api;
}

}  // namespace layerstore
