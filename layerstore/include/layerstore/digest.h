// Digest: a sha256 content digest, the identity of every blob, layer and file object in the store.
//
// Only sha256 is accepted (what Docker and the OCI image-spec use by default); other algorithms are
// a clear InvalidArgument. Value type, 32 raw bytes; cheap to copy and compare, usable as a map key.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>

#include "layerstore/status.h"

namespace layerstore {

class Digest {
 public:
  static constexpr size_t kSize = 32;

  Digest() = default;  // all zero: "no digest"
  // Parses "sha256:<64 lowercase hex>".
  static Result<Digest> Parse(std::string_view text);
  // Parses 64 hex characters without the algorithm prefix.
  static Result<Digest> FromHex(std::string_view hex);
  // REQUIRES: raw.size() == kSize.
  static Digest FromRaw(std::string_view raw);

  std::string hex() const;
  std::string str() const { return "sha256:" + hex(); }  // "sha256:<hex>"
  std::string_view raw() const { return {reinterpret_cast<const char*>(bytes_.data()), kSize}; }
  bool empty() const;

  friend bool operator==(const Digest& a, const Digest& b) { return a.bytes_ == b.bytes_; }
  friend auto operator<=>(const Digest& a, const Digest& b) { return a.bytes_ <=> b.bytes_; }

 private:
  std::array<uint8_t, kSize> bytes_{};
};

// Whether `text` looks like a digest or a hex id prefix a user may type ("sha256:abc", "abc123").
bool IsHexString(std::string_view text);

}  // namespace layerstore

template <>
struct std::hash<layerstore::Digest> {
  size_t operator()(const layerstore::Digest& d) const noexcept {
    size_t h;
    std::memcpy(&h, d.raw().data(), sizeof h);
    return h;
  }
};
