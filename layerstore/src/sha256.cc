#include "layerstore/sha256.h"

// OpenSSL's SHA-256 functions, not its EVP interface. They run the same code (SHA extensions
// where the CPU has them), deprecated in OpenSSL 3 but kept; EVP would fetch the implementation
// from a provider at a process's first digest (0.2 ms) and, in the statically linked binaries,
// bring the whole provider machinery with it: 19,000 of the 23,750 relocations and most of the
// pages that every start of strata and of its mount daemon paid for (docs/ARCHITECTURE.md,
// "Start-up").
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include <cstdlib>

namespace layerstore {

namespace {

void InitOrAbort(SHA256_CTX* ctx) {
  if (SHA256_Init(ctx) != 1) std::abort();  // no digest, no honest content address
}

Digest FinalOrAbort(SHA256_CTX* ctx) {
  unsigned char out[SHA256_DIGEST_LENGTH];
  if (SHA256_Final(out, ctx) != 1) std::abort();
  return Digest::FromRaw(std::string_view(reinterpret_cast<const char*>(out), Digest::kSize));
}

}  // namespace

void Sha256::CtxFree::operator()(SHA256state_st* ctx) const noexcept { delete ctx; }

Sha256::Sha256() : ctx_(new SHA256_CTX) { InitOrAbort(ctx_.get()); }
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::Update(const void* data, size_t size) {
  if (size > 0 && SHA256_Update(ctx_.get(), data, size) != 1) std::abort();
}

Digest Sha256::Finish() {
  Digest d = FinalOrAbort(ctx_.get());
  InitOrAbort(ctx_.get());
  return d;
}

Digest Sha256::Of(std::string_view data) {
  SHA256_CTX ctx;
  InitOrAbort(&ctx);
  if (SHA256_Update(&ctx, data.data(), data.size()) != 1) std::abort();
  return FinalOrAbort(&ctx);
}

}  // namespace layerstore
