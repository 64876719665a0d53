#include "layerstore/sha256.h"

#define OPENSSL_SUPPRESS_DEPRECATED  // SHA256_Init and friends: see Sha256::Of
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cstdlib>

namespace layerstore {

namespace {

// Fetched once: handing EVP_sha256() to every init makes OpenSSL 3 look the implementation up
// again each time (an "implicit fetch"), which an import of 50,000 small files pays 50,000 times.
const EVP_MD* Sha256Md() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
  if (md == nullptr) std::abort();  // no digest, no honest content address
  return md;
}

}  // namespace

void Sha256::InitForHashingOnly() {
  // NO_ATEXIT: freeing OpenSSL's tables one by one at exit costs a short command as much as
  // its first hash did; the process's end frees them at once.
  OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_ADD_ALL_CIPHERS |
                          OPENSSL_INIT_NO_ADD_ALL_DIGESTS | OPENSSL_INIT_NO_ATEXIT,
                      nullptr);
}

void Sha256::CtxFree::operator()(evp_md_ctx_st* ctx) const noexcept { EVP_MD_CTX_free(ctx); }

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  // Allocation or init failure leaves no way to report a digest honestly: treat as fatal.
  if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), Sha256Md(), nullptr) != 1) std::abort();
}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::Update(const void* data, size_t size) {
  if (size > 0) EVP_DigestUpdate(ctx_.get(), data, size);
}

Digest Sha256::Finish() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_.get(), out, &len);
  EVP_DigestInit_ex(ctx_.get(), Sha256Md(), nullptr);
  return Digest::FromRaw(std::string_view(reinterpret_cast<const char*>(out), Digest::kSize));
}

Digest Sha256::Of(std::string_view data) {
  // OpenSSL's low-level SHA-256, not EVP: a process's first EVP digest fetches its implementation
  // from the provider (0.2 ms here), which a mount's daemon paid in its start-up for one chain ID.
  // The low-level functions, deprecated in OpenSSL 3 but kept, run the same code without a fetch.
  SHA256_CTX ctx;
  unsigned char out[SHA256_DIGEST_LENGTH];
  if (SHA256_Init(&ctx) != 1 || SHA256_Update(&ctx, data.data(), data.size()) != 1 || SHA256_Final(out, &ctx) != 1) {
    std::abort();  // no digest, no honest content address
  }
  return Digest::FromRaw(std::string_view(reinterpret_cast<const char*>(out), Digest::kSize));
}

}  // namespace layerstore
