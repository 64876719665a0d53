#include "registry/auth.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "registry/endpoint.h"

namespace registry {
namespace {

using layerstore::Result;
using layerstore::Status;

bool IsTokenChar(char c) {
  // RFC 7230 tchar.
  return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}
  bool done() const { return i_ >= s_.size(); }
  char peek() const { return done() ? '\0' : s_[i_]; }
  void SkipSpace() {
    while (!done() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
  }
  void SkipSpaceAndCommas() {
    while (!done() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == ',')) ++i_;
  }
  std::string Token() {
    size_t start = i_;
    while (!done() && IsTokenChar(s_[i_])) ++i_;
    return std::string(s_.substr(start, i_ - start));
  }
  // After a token: token68 characters ("/" and trailing "=") that a token cannot hold.
  std::string Token68Rest() {
    size_t start = i_;
    while (!done() && (s_[i_] == '/' || s_[i_] == '+' || IsTokenChar(s_[i_]))) ++i_;
    while (!done() && s_[i_] == '=') ++i_;
    return std::string(s_.substr(start, i_ - start));
  }
  std::string Quoted() {
    std::string out;
    ++i_;  // opening quote
    while (!done() && s_[i_] != '"') {
      if (s_[i_] == '\\' && i_ + 1 < s_.size()) ++i_;
      out.push_back(s_[i_++]);
    }
    if (!done()) ++i_;  // closing quote
    return out;
  }
  size_t pos() const { return i_; }
  void set_pos(size_t p) { i_ = p; }

 private:
  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace

std::vector<Challenge> ParseWwwAuthenticate(std::string_view header) {
  std::vector<Challenge> out;
  Scanner sc(header);
  sc.SkipSpaceAndCommas();
  while (!sc.done()) {
    std::string scheme = sc.Token();
    if (scheme.empty()) {
      // Garbage: skip to the next comma and try again.
      while (!sc.done() && sc.peek() != ',') sc.set_pos(sc.pos() + 1);
      sc.SkipSpaceAndCommas();
      continue;
    }
    Challenge c;
    c.scheme = Lower(scheme);
    sc.SkipSpace();
    // Auth-params until the next token that is not followed by '=' (which starts a new challenge).
    for (;;) {
      sc.SkipSpaceAndCommas();
      if (sc.done()) break;
      size_t mark = sc.pos();
      std::string key = sc.Token();
      if (key.empty()) {
        // Not a parameter: a token68 or junk; consume up to the next comma.
        std::string rest = sc.Token68Rest();
        if (rest.empty()) sc.set_pos(sc.pos() + 1);
        continue;
      }
      sc.SkipSpace();
      if (sc.peek() != '=') {
        // A bare token: the next challenge's scheme (or a token68 for this one).
        sc.set_pos(mark);
        break;
      }
      sc.set_pos(sc.pos() + 1);
      sc.SkipSpace();
      if (sc.peek() == '=' || sc.peek() == ',' || sc.done()) {
        // "key=" / "key==": a token68 ending in padding, e.g. "Basic YWxhZGRpbjpvcGVu=".
        while (sc.peek() == '=') sc.set_pos(sc.pos() + 1);
        continue;
      }
      std::string value = sc.peek() == '"' ? sc.Quoted() : sc.Token68Rest();
      c.params[Lower(key)] = value;
    }
    out.push_back(std::move(c));
  }
  return out;
}

std::string Base64Encode(std::string_view data) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    uint32_t v = (uint32_t(uint8_t(data[i])) << 16) | (uint32_t(uint8_t(data[i + 1])) << 8) | uint8_t(data[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == data.size()) {
    uint32_t v = uint32_t(uint8_t(data[i])) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == data.size()) {
    uint32_t v = (uint32_t(uint8_t(data[i])) << 16) | (uint32_t(uint8_t(data[i + 1])) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = value(c);
    if (v < 0) return Status::InvalidArgument("invalid base64 data");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if (bits >= 6) return Status::InvalidArgument("invalid base64 data");  // a lone trailing character
  return out;
}

std::string BasicAuthorization(const Credentials& credentials) {
  return "Basic " + Base64Encode(credentials.username + ":" + credentials.password);
}

std::string RepositoryScope(std::string_view repository, std::string_view actions) {
  return "repository:" + std::string(repository) + ":" + std::string(actions);
}

std::string TokenUrl(const Challenge& bearer, const std::vector<std::string>& scopes) {
  std::string url = bearer.Param("realm");
  std::string service = bearer.Param("service");
  if (!service.empty()) url = AddQuery(url, "service", service);
  for (const std::string& scope : scopes) url = AddQuery(url, "scope", scope);
  return url;
}

Result<Token> ParseTokenResponse(std::string_view body, std::chrono::steady_clock::time_point now) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::InvalidArgument("token server answered with invalid JSON");
  Token t;
  for (const char* key : {"token", "access_token"}) {
    if (j.contains(key) && j[key].is_string() && !j[key].get<std::string>().empty()) {
      t.value = j[key].get<std::string>();
      break;
    }
  }
  if (t.value.empty()) return Status::InvalidArgument("token server answered without a token");
  int64_t expires_in = 60;
  if (j.contains("expires_in") && j["expires_in"].is_number_integer()) expires_in = j["expires_in"].get<int64_t>();
  // The spec's minimum is 60 s; a server saying less gets 60 - our own margin below.
  expires_in = std::max<int64_t>(expires_in, 60);
  // Renew 10 s early so a token never expires between the check and the request.
  t.expires = now + std::chrono::seconds(expires_in - 10);
  return t;
}

}  // namespace registry
