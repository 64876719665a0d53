// Authentication pieces of the distribution protocol: WWW-Authenticate challenges, Basic
// credentials, Bearer token requests and responses, scopes. Pure functions and value types; the
// request flow that uses them is in client.h.
//
// The token flow (distribution "Token Authentication Specification", as Docker Hub serves it):
// a request answered 401 carries `WWW-Authenticate: Bearer realm="...",service="...",scope="..."`;
// the client GETs realm?service=...&scope=... (with Basic credentials when it has them, else
// anonymously), receives {"token": "...", "expires_in": N}, and repeats the request with
// `Authorization: Bearer <token>`. A token is valid for the scopes it was issued for, so tokens are
// cached per scope set.
//
// Secrets: a Credentials value holds a password. Nothing here formats it into a message; callers
// must keep it out of logs and errors too (only the user name may be shown).
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "layerstore/status.h"

namespace registry {

struct Challenge {
  std::string scheme;                         // lower case: "basic", "bearer"
  std::map<std::string, std::string> params;  // keys lower case, values unquoted and unescaped

  std::string Param(const std::string& key) const {
    auto it = params.find(key);
    return it == params.end() ? "" : it->second;
  }
};

// Parses a WWW-Authenticate header value (RFC 7235 section 4.1): one or more challenges, each a
// scheme followed by comma-separated auth-params (token or quoted-string values) or a token68.
// Malformed parts are skipped; an empty result means nothing usable was offered.
std::vector<Challenge> ParseWwwAuthenticate(std::string_view header);

struct Credentials {
  std::string username;
  std::string password;        // never logged or printed
  std::string identity_token;  // an OAuth2 refresh token (config.json "identitytoken"); not supported yet

  bool empty() const { return username.empty() && password.empty() && identity_token.empty(); }
};

std::string Base64Encode(std::string_view data);
// Accepts padded or unpadded standard base64; fails with InvalidArgument (without echoing the
// input, which may be a secret) on other characters.
layerstore::Result<std::string> Base64Decode(std::string_view text);

// "Basic base64(user:password)".
std::string BasicAuthorization(const Credentials& credentials);

// "repository:<name>:<actions>", e.g. RepositoryScope("library/busybox", "pull,push").
std::string RepositoryScope(std::string_view repository, std::string_view actions);

// The URL of a token request: realm?service=<service>&scope=<s1>&scope=<s2>...
std::string TokenUrl(const Challenge& bearer, const std::vector<std::string>& scopes);

struct Token {
  std::string value;
  std::chrono::steady_clock::time_point expires;
};

// Reads a token server's JSON answer: "token" (or "access_token"), "expires_in" seconds
// (default 60, as the spec says). `now` is when the request was sent.
layerstore::Result<Token> ParseTokenResponse(std::string_view body, std::chrono::steady_clock::time_point now);

}  // namespace registry
