// Image reference parsing, mirroring distribution/reference's ParseNormalizedNamed so that a name
// typed at strata means exactly what it means to `docker`. The grammar is scanned by hand rather
// than with std::regex: it is small, the scanners can say which part was wrong, and std::regex is
// both slow and prone to deep recursion on long inputs.
#include "layerstore/reference.h"

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

namespace layerstore {
namespace {

constexpr std::string_view kDefaultDomain = "docker.io";
// Docker Hub's old "index" name; references using it mean the same repositories as docker.io.
constexpr std::string_view kLegacyDefaultDomain = "index.docker.io";
constexpr std::string_view kLocalhost = "localhost";
constexpr std::string_view kOfficialRepoPrefix = "library/";
constexpr std::string_view kDefaultTag = "latest";
constexpr size_t kMaxPathLength = 255;
constexpr size_t kMaxTagLength = 128;
// A bare 64-hex string is an image id; Docker refuses it as a name so ids and names never collide.
constexpr size_t kIdentifierLength = 64;
// digestPat demands at least 128 bits of hex before the algorithm is even looked at.
constexpr size_t kMinDigestHexLength = 32;

// Character classes are ASCII-only on purpose: the grammar is, and <cctype> depends on the locale.
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }
bool IsAlpha(char c) { return IsLower(c) || IsUpper(c); }
bool IsAlnum(char c) { return IsAlpha(c) || IsDigit(c); }
bool IsLowerAlnum(char c) { return IsLower(c) || IsDigit(c); }
bool IsWordChar(char c) { return IsAlnum(c) || c == '_'; }  // regexp \w
bool IsXDigit(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool IsLowerHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f'); }

bool HasUpper(std::string_view s) {
  for (char c : s) {
    if (IsUpper(c)) return true;
  }
  return false;
}

bool IsImageId(std::string_view s) {
  if (s.size() != kIdentifierLength) return false;
  for (char c : s) {
    if (!IsLowerHex(c)) return false;
  }
  return true;
}

std::string Quoted(std::string_view s) {
  std::string out = "\"";
  out += s;
  out += '"';
  return out;
}

// Every error names the whole text the user typed, since a bad tag or digest is easier to spot in
// context than on its own.
Status Invalid(std::string_view text, std::string_view reason) {
  std::string msg = "invalid reference ";
  msg += Quoted(text);
  msg += ": ";
  msg += reason;
  return Status::InvalidArgument(std::move(msg));
}

std::string FormatError(std::string_view detail) {
  std::string msg = "invalid reference format: ";
  msg += detail;
  return msg;
}

// [a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*
bool IsValidPathComponent(std::string_view component) {
  const size_t n = component.size();
  size_t i = 0;
  while (true) {
    const size_t run_start = i;
    while (i < n && IsLowerAlnum(component[i])) ++i;
    // Also rejects a leading separator and two separators in a row ("a._b", "a___b").
    if (i == run_start) return false;
    if (i == n) return true;
    if (component[i] == '.') {
      ++i;
    } else if (component[i] == '_') {
      ++i;
      if (i < n && component[i] == '_') ++i;
    } else if (component[i] == '-') {
      while (i < n && component[i] == '-') ++i;
    } else {
      return false;
    }
  }
}

// [a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
bool IsValidDomainComponent(std::string_view component) {
  if (component.empty() || !IsAlnum(component.front()) || !IsAlnum(component.back())) return false;
  for (char c : component) {
    if (!IsAlnum(c) && c != '-') return false;
  }
  return true;
}

// (domain-name | "[" ipv6 "]") (":" [0-9]+)?. Unlike path components, uppercase is allowed here,
// as in Docker: hostnames are case-insensitive.
bool IsValidDomain(std::string_view domain) {
  std::string_view port;
  bool has_port = false;
  if (!domain.empty() && domain.front() == '[') {
    // Deliberately loose, as Docker's: hex digits and colons, no zone id, no embedded IPv4.
    const size_t close = domain.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    for (char c : domain.substr(1, close - 1)) {
      if (!IsXDigit(c) && c != ':') return false;
    }
    std::string_view rest = domain.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      has_port = true;
      port = rest.substr(1);
    }
  } else {
    std::string_view host = domain;
    if (const size_t colon = domain.find(':'); colon != std::string_view::npos) {
      has_port = true;
      host = domain.substr(0, colon);
      port = domain.substr(colon + 1);
    }
    size_t start = 0;
    while (true) {
      const size_t dot = host.find('.', start);
      const size_t len = dot == std::string_view::npos ? std::string_view::npos : dot - start;
      if (!IsValidDomainComponent(host.substr(start, len))) return false;
      if (dot == std::string_view::npos) break;
      start = dot + 1;
    }
  }
  if (has_port) {
    if (port.empty()) return false;
    for (char c : port) {
      if (!IsDigit(c)) return false;
    }
  }
  return true;
}

// [\w][\w.-]{0,127}. Returns an empty string when valid, else what is wrong.
std::string TagProblem(std::string_view tag) {
  if (tag.empty()) return FormatError("empty tag");
  if (tag.size() > kMaxTagLength) {
    return FormatError("tag is longer than " + std::to_string(kMaxTagLength) + " characters");
  }
  bool ok = IsWordChar(tag.front());
  for (size_t i = 1; ok && i < tag.size(); ++i) {
    ok = IsWordChar(tag[i]) || tag[i] == '.' || tag[i] == '-';
  }
  if (!ok) return FormatError("invalid tag " + Quoted(tag));
  return {};
}

// digestPat: [A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}. Only the shape is
// checked here; Digest::Parse then decides whether we support the algorithm and length.
bool IsWellFormedDigest(std::string_view text) {
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) return false;
  bool at_component_start = true;
  for (char c : text.substr(0, colon)) {
    if (at_component_start) {
      if (!IsAlpha(c)) return false;
      at_component_start = false;
    } else if (c == '-' || c == '_' || c == '+' || c == '.') {
      at_component_start = true;
    } else if (!IsAlnum(c)) {
      return false;
    }
  }
  if (at_component_start) return false;  // empty algorithm or a trailing separator
  std::string_view hex = text.substr(colon + 1);
  if (hex.size() < kMinDigestHexLength) return false;
  for (char c : hex) {
    if (!IsXDigit(c)) return false;
  }
  return true;
}

struct DomainSplit {
  std::string_view domain;
  std::string_view remainder;   // path[:tag][@digest], as typed
  bool official_prefix = false;  // the path needs "library/" in front
};

// splitDockerDomain: the first '/'-separated component names a registry only when it cannot be a
// Docker Hub namespace: it has '.' or ':' (a hostname or port), is "localhost", or has uppercase
// (namespaces are lowercase). A name without any '/' is always a Docker Hub repository, so
// "localhost:5000" alone is library/localhost tagged "5000", exactly as in Docker.
DomainSplit SplitDockerDomain(std::string_view text) {
  DomainSplit split;
  const size_t slash = text.find('/');
  std::string_view first = slash == std::string_view::npos ? std::string_view() : text.substr(0, slash);
  if (slash != std::string_view::npos &&
      (first == kLocalhost || first.find_first_of(".:") != std::string_view::npos || HasUpper(first))) {
    split.domain = first == kLegacyDefaultDomain ? kDefaultDomain : first;
    split.remainder = text.substr(slash + 1);
  } else {
    split.domain = kDefaultDomain;
    split.remainder = text;
  }
  // Official images live under library/, but only on Docker Hub and only when no namespace was
  // given; other registries keep single-component paths as they are.
  split.official_prefix =
      split.domain == kDefaultDomain && split.remainder.find('/') == std::string_view::npos;
  return split;
}

Result<Reference> Parse(std::string_view text, bool add_default_tag) {
  if (text.empty()) return Invalid(text, FormatError("empty reference"));
  if (IsImageId(text)) {
    return Invalid(text, "invalid repository name, cannot specify 64-byte hexadecimal strings");
  }

  const DomainSplit split = SplitDockerDomain(text);
  // A path never contains ':' or '@', so the first of either ends it.
  const size_t path_end = split.remainder.find_first_of(":@");
  std::string_view typed_path = split.remainder.substr(0, path_end);
  // Checked before the rest of the grammar, as Docker does: it is the most common mistake and the
  // generic "invalid reference format" would not tell the user what to fix.
  if (HasUpper(typed_path)) return Invalid(text, "repository name must be lowercase");

  if (!IsValidDomain(split.domain)) {
    return Invalid(text, FormatError("invalid registry host " + Quoted(split.domain)));
  }

  if (typed_path.empty()) return Invalid(text, FormatError("missing repository name"));
  for (size_t start = 0;;) {
    const size_t slash = typed_path.find('/', start);
    const size_t len = slash == std::string_view::npos ? std::string_view::npos : slash - start;
    std::string_view component = typed_path.substr(start, len);
    if (component.empty()) return Invalid(text, FormatError("empty repository name component"));
    if (!IsValidPathComponent(component)) {
      return Invalid(text, FormatError("invalid repository name component " + Quoted(component)));
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }

  std::string_view rest = split.remainder.substr(typed_path.size());
  std::string_view tag;
  bool has_tag = false;
  if (!rest.empty() && rest.front() == ':') {
    has_tag = true;
    const size_t at = rest.find('@');
    tag = rest.substr(1, at == std::string_view::npos ? std::string_view::npos : at - 1);
    rest = at == std::string_view::npos ? std::string_view() : rest.substr(at);
    if (std::string problem = TagProblem(tag); !problem.empty()) return Invalid(text, problem);
  }

  std::string_view digest_text;
  const bool has_digest = !rest.empty();  // what is left can only start with '@'
  if (has_digest) {
    digest_text = rest.substr(1);
    if (digest_text.empty()) return Invalid(text, FormatError("empty digest"));
    if (!IsWellFormedDigest(digest_text)) {
      return Invalid(text, FormatError("invalid digest " + Quoted(digest_text)));
    }
  }

  std::string path;
  if (split.official_prefix) path = kOfficialRepoPrefix;
  path += typed_path;
  // Docker limits the path (with any library/ prefix) but not the registry host.
  if (path.size() > kMaxPathLength) {
    return Invalid(text,
                   "repository name must not be more than " + std::to_string(kMaxPathLength) + " characters");
  }

  Reference ref;
  if (has_digest) {
    Result<Digest> digest = Digest::Parse(digest_text);
    // Digest::Parse reports other algorithms as Unsupported; to the user it is still bad input.
    if (!digest.ok()) return Invalid(text, digest.status().message());
    ref.digest = *digest;
  }
  ref.domain = split.domain;
  ref.path = std::move(path);
  if (has_tag) {
    ref.tag = tag;
  } else if (add_default_tag && !has_digest) {
    // TagNameOnly: a digest already pins the image, so "latest" would only add a second, possibly
    // contradictory, selector.
    ref.tag = kDefaultTag;
  }
  return ref;
}

}  // namespace

std::string Reference::Name() const {
  if (domain.empty()) return path;
  return domain + "/" + path;
}

std::string Reference::String() const {
  std::string out = Name();
  if (!tag.empty()) out += ":" + tag;
  if (digest) out += "@" + digest->str();
  return out;
}

std::string Reference::FamiliarName() const {
  if (domain != kDefaultDomain) return Name();
  std::string_view familiar = path;
  // Only a direct child of library/ is an official image; "library/a/b" must keep its prefix or
  // it would parse back as docker.io/a/b.
  if (familiar.starts_with(kOfficialRepoPrefix) &&
      familiar.find('/', kOfficialRepoPrefix.size()) == std::string_view::npos) {
    familiar.remove_prefix(kOfficialRepoPrefix.size());
  }
  return std::string(familiar);
}

std::string Reference::FamiliarString() const {
  std::string out = FamiliarName();
  if (!tag.empty()) out += ":" + tag;
  if (digest) out += "@" + digest->str();
  return out;
}

Result<Reference> ParseReference(std::string_view text) { return Parse(text, /*add_default_tag=*/true); }

Result<Reference> ParseReferenceNoDefaultTag(std::string_view text) {
  return Parse(text, /*add_default_tag=*/false);
}

}  // namespace layerstore
