// Test helpers shared by the store and filesystem tests: an in-memory byte source and a minimal
// ustar writer for layers built in the tests.
#pragma once

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "layerstore/io.h"
#include "layerstore/status.h"

namespace layerstore {

class StringSource final : public ByteSource {
 public:
  explicit StringSource(std::string data, std::string name = "test.tar")
      : data_(std::move(data)), name_(std::move(name)) {}
  Result<size_t> Read(void* buf, size_t size) override {
    size_t n = std::min(size, data_.size() - pos_);
    std::memcpy(buf, data_.data() + pos_, n);
    pos_ += n;
    return n;
  }
  std::string Name() const override { return name_; }

 private:
  std::string data_;
  size_t pos_ = 0;
  std::string name_;
};

class TarBuilder {
 public:
  TarBuilder& File(const std::string& name, std::string_view data, uint32_t mode = 0644) {
    Header(name, '0', data.size(), mode, "");
    out_.append(data);
    Pad();
    return *this;
  }
  TarBuilder& Dir(const std::string& name) {
    Header(name, '5', 0, 0755, "");
    return *this;
  }
  TarBuilder& Hardlink(const std::string& name, const std::string& target) {
    Header(name, '1', 0, 0644, target);
    return *this;
  }
  TarBuilder& Symlink(const std::string& name, const std::string& target) {
    Header(name, '2', 0, 0777, target);
    return *this;
  }
  // A pax extended header ('x') with `records` (key, value), for the entry that follows.
  TarBuilder& Pax(const std::vector<std::pair<std::string, std::string>>& records) {
    std::string body;
    for (const auto& [key, value] : records) {
      // "LEN KEY=VALUE\n", where LEN counts its own digits too.
      size_t rest = 1 + key.size() + 1 + value.size() + 1;
      size_t len = rest + 1;
      while (std::to_string(len).size() + rest != len) ++len;
      body += std::to_string(len) + " " + key + "=" + value + "\n";
    }
    Header("PaxHeader", 'x', body.size(), 0644, "");
    out_.append(body);
    Pad();
    return *this;
  }
  std::string Finish() const { return out_ + std::string(1024, '\0'); }

 private:
  static void Octal(std::string& h, size_t off, size_t width, uint64_t v) {
    char field[32];
    std::snprintf(field, sizeof field, "%0*llo", static_cast<int>(width - 1), static_cast<unsigned long long>(v));
    std::memcpy(&h[off], field, width - 1);
  }
  void Header(const std::string& name, char type, uint64_t size, uint32_t mode, const std::string& link) {
    std::string h(512, '\0');
    std::memcpy(&h[0], name.data(), std::min<size_t>(name.size(), 100));
    Octal(h, 100, 8, mode);
    Octal(h, 108, 8, 0);
    Octal(h, 116, 8, 0);
    Octal(h, 124, 12, size);
    Octal(h, 136, 12, 1700000000);
    std::memset(&h[148], ' ', 8);
    h[156] = type;
    std::memcpy(&h[157], link.data(), std::min<size_t>(link.size(), 100));
    std::memcpy(&h[257], "ustar\0" "00", 8);
    unsigned sum = 0;
    for (unsigned char c : h) sum += c;
    std::snprintf(&h[148], 7, "%06o", sum);
    h[155] = ' ';
    out_ += h;
  }
  void Pad() { out_.append((512 - out_.size() % 512) % 512, '\0'); }
  std::string out_;
};

}  // namespace layerstore
