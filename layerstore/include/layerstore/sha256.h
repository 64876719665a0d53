// Sha256: streaming SHA-256 over OpenSSL's EVP interface (uses the CPU's SHA extensions).
// One object per stream; not thread-safe; movable, not copyable.
#pragma once

#include <memory>
#include <string_view>

#include "layerstore/digest.h"

struct evp_md_ctx_st;

namespace layerstore {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t size);
  void Update(std::string_view data) { Update(data.data(), data.size()); }
  // Returns the digest of everything fed so far and resets for a new stream.
  Digest Finish();

  static Digest Of(std::string_view data);

  // For a process whose libcrypto only hashes: OpenSSL starts without reading the system's
  // openssl.cnf and without the legacy tables of every cipher and digest, which the first fetch
  // of a digest otherwise fills (together 1-2 ms). Must come before any other use of OpenSSL in
  // the process, and not where the same libcrypto makes TLS connections: the system
  // configuration is where TLS policy is set.
  static void InitForHashingOnly();

 private:
  struct CtxFree {
    void operator()(evp_md_ctx_st* ctx) const noexcept;
  };
  std::unique_ptr<evp_md_ctx_st, CtxFree> ctx_;
};

}  // namespace layerstore
