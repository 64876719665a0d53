// Sha256: streaming SHA-256 over OpenSSL's SHA-256 functions (uses the CPU's SHA extensions).
// One object per stream; not thread-safe; movable, not copyable.
#pragma once

#include <memory>
#include <string_view>

#include "layerstore/digest.h"

struct SHA256state_st;

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

 private:
  struct CtxFree {
    void operator()(SHA256state_st* ctx) const noexcept;
  };
  std::unique_ptr<SHA256state_st, CtxFree> ctx_;
};

}  // namespace layerstore
