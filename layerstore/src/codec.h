// Little binary codec for LMDB records: varints, fixed-width integers and length-prefixed bytes.
// Every record starts with a version byte so records can be migrated (schema.h).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace layerstore {

class Encoder {
 public:
  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>(v | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void Svarint(int64_t v) { Varint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63)); }
  void Bytes(std::string_view s) {
    Varint(s.size());
    out_.append(s);
  }
  void Raw(std::string_view s) { out_.append(s); }
  std::string Take() { return std::move(out_); }
  const std::string& str() const { return out_; }

 private:
  std::string out_;
};

// Reads what Encoder wrote. Any overrun sets failed() and yields zeros/empties, so callers decode
// everything and check failed() once.
class Decoder {
 public:
  explicit Decoder(std::string_view in) : in_(in) {}
  uint8_t U8() {
    if (in_.empty()) return Fail(), 0;
    uint8_t v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return v;
  }
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (in_.empty()) return Fail(), 0;
      uint8_t b = static_cast<uint8_t>(in_[0]);
      in_.remove_prefix(1);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    return Fail(), 0;
  }
  int64_t Svarint() {
    uint64_t u = Varint();
    return static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
  }
  std::string_view Bytes() {
    uint64_t n = Varint();
    return Raw(n);
  }
  std::string_view Raw(uint64_t n) {
    if (n > in_.size()) return Fail(), std::string_view();
    std::string_view v = in_.substr(0, n);
    in_.remove_prefix(n);
    return v;
  }
  bool failed() const { return failed_; }
  bool done() const { return in_.empty(); }

 private:
  void Fail() { failed_ = true; in_ = {}; }
  std::string_view in_;
  bool failed_ = false;
};

inline std::string BigEndian32(uint32_t v) {
  char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
               static_cast<char>(v)};
  return std::string(b, 4);
}

}  // namespace layerstore
