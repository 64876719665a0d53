#include "layerstore/digest.h"

namespace layerstore {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // uppercase is rejected: OCI digests are lowercase hex
}

}  // namespace

bool IsHexString(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (HexValue(c) < 0) return false;
  }
  return true;
}

Result<Digest> Digest::FromHex(std::string_view hex) {
  if (hex.size() != 2 * kSize || !IsHexString(hex)) {
    return Status::InvalidArgument("invalid digest \"" + std::string(hex) +
                                   "\": want 64 lowercase hex characters");
  }
  Digest d;
  for (size_t i = 0; i < kSize; ++i) {
    d.bytes_[i] = static_cast<uint8_t>(HexValue(hex[2 * i]) << 4 | HexValue(hex[2 * i + 1]));
  }
  return d;
}

Result<Digest> Digest::Parse(std::string_view text) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos) {
    return Status::InvalidArgument("invalid digest \"" + std::string(text) + "\": missing algorithm");
  }
  std::string_view algorithm = text.substr(0, colon);
  if (algorithm != "sha256") {
    return Status::Unsupported("unsupported digest algorithm \"" + std::string(algorithm) + "\" in \"" +
                               std::string(text) + "\": only sha256 is supported");
  }
  auto parsed = FromHex(text.substr(colon + 1));
  if (!parsed.ok()) {
    return Status::InvalidArgument("invalid digest \"" + std::string(text) +
                                   "\": want sha256:<64 lowercase hex characters>");
  }
  return parsed;
}

Digest Digest::FromRaw(std::string_view raw) {
  Digest d;
  std::memcpy(d.bytes_.data(), raw.data(), kSize);
  return d;
}

std::string Digest::hex() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(2 * kSize, '0');
  for (size_t i = 0; i < kSize; ++i) {
    out[2 * i] = kHex[bytes_[i] >> 4];
    out[2 * i + 1] = kHex[bytes_[i] & 0xf];
  }
  return out;
}

bool Digest::empty() const {
  for (uint8_t b : bytes_) {
    if (b != 0) return false;
  }
  return true;
}

}  // namespace layerstore
