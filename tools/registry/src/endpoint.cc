#include "registry/endpoint.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <optional>

namespace registry {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

bool IsFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Splits "host:port" / "[v6]:port" into the host part.
std::string_view HostPart(std::string_view host_port) {
  if (!host_port.empty() && host_port[0] == '[') {
    size_t close = host_port.find(']');
    return close == std::string_view::npos ? host_port : host_port.substr(1, close - 1);
  }
  size_t colon = host_port.find(':');
  // More than one colon without brackets: a bare IPv6 address.
  if (colon != std::string_view::npos && host_port.find(':', colon + 1) != std::string_view::npos) return host_port;
  return host_port.substr(0, colon);
}

// An IPv4 or IPv6 address in numeric form.
struct IpAddress {
  int family = 0;  // AF_INET or AF_INET6
  unsigned char bytes[16] = {};
};

std::optional<IpAddress> ParseIp(std::string_view text) {
  std::string s(text);
  IpAddress ip;
  if (::inet_pton(AF_INET, s.c_str(), ip.bytes) == 1) {
    ip.family = AF_INET;
    return ip;
  }
  if (::inet_pton(AF_INET6, s.c_str(), ip.bytes) == 1) {
    ip.family = AF_INET6;
    return ip;
  }
  return std::nullopt;
}

struct Cidr {
  IpAddress network;
  int bits = 0;

  bool Contains(const IpAddress& ip) const {
    if (ip.family != network.family) return false;
    int whole = bits / 8, rest = bits % 8;
    if (std::memcmp(ip.bytes, network.bytes, static_cast<size_t>(whole)) != 0) return false;
    if (rest == 0) return true;
    unsigned char mask = static_cast<unsigned char>(0xff << (8 - rest));
    return (ip.bytes[whole] & mask) == (network.bytes[whole] & mask);
  }
};

// "addr/bits"; nullopt when `text` is not one.
std::optional<Cidr> ParseCidr(std::string_view text) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto ip = ParseIp(text.substr(0, slash));
  std::string_view bits = text.substr(slash + 1);
  if (!ip || bits.empty() || bits.size() > 3 ||
      !std::all_of(bits.begin(), bits.end(), [](unsigned char c) { return std::isdigit(c); })) {
    return std::nullopt;
  }
  Cidr cidr{*ip, std::atoi(std::string(bits).c_str())};
  if (cidr.bits > (ip->family == AF_INET ? 32 : 128)) return std::nullopt;
  return cidr;
}

// A DNS name: labels of letters, digits and inner hyphens, joined by dots.
bool IsHostName(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  while (start <= s.size()) {
    size_t dot = std::min(s.find('.', start), s.size());
    std::string_view label = s.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (unsigned char c : label) {
      if (!std::isalnum(c) && c != '-') return false;
    }
    start = dot + 1;
  }
  return true;
}

// An entry without Docker's tolerated scheme prefix, in lower case.
std::string InsecureEntry(std::string_view entry) {
  std::string s = Lower(entry);
  for (std::string_view scheme : {"http://", "https://"}) {
    if (s.rfind(scheme, 0) == 0) return s.substr(scheme.size());
  }
  return s;
}

}  // namespace

layerstore::Status ValidateInsecureRegistry(std::string_view entry) {
  using layerstore::Status;
  const std::string s = InsecureEntry(entry);
  const std::string shown = "\"" + std::string(entry) + "\"";
  if (s.empty()) return Status::InvalidArgument("an empty registry name");
  if (s.find("://") != std::string::npos) {
    return Status::InvalidArgument(shown + " has a scheme: give host[:port] (plain HTTP is tried by itself)");
  }
  if (s.find('/') != std::string::npos) {
    if (ParseCidr(s)) return {};
    return Status::InvalidArgument(shown + " is neither host[:port] nor an IP range such as 10.0.0.0/8");
  }
  if (ParseIp(s)) return {};  // IPv4, or IPv6 without brackets (so without a port)
  std::string_view rest = s;
  std::optional<std::string_view> port;
  if (rest[0] == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos || !ParseIp(rest.substr(1, close - 1)) ||
        (close + 1 < rest.size() && rest[close + 1] != ':')) {
      return Status::InvalidArgument(shown + " is not a valid [IPv6 address]:port");
    }
    if (close + 1 < rest.size()) port = rest.substr(close + 2);
  } else {
    size_t colon = rest.find(':');
    std::string_view host = rest.substr(0, colon);
    if (!IsHostName(host) && !ParseIp(host)) {
      return Status::InvalidArgument(shown + " is not a host name, IP address or IP range");
    }
    if (colon != std::string_view::npos) port = rest.substr(colon + 1);
  }
  if (port) {
    bool digits = !port->empty() && port->size() <= 5 &&
                  std::all_of(port->begin(), port->end(), [](unsigned char c) { return std::isdigit(c); });
    if (!digits || std::atoi(std::string(*port).c_str()) > 65535) {
      return Status::InvalidArgument(shown + ": \"" + std::string(*port) + "\" is not a port number");
    }
  }
  return {};
}

std::vector<std::string> ResolveHost(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::vector<std::string> out;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0) return out;
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    char buf[INET6_ADDRSTRLEN] = {};
    const void* addr = ai->ai_family == AF_INET
                           ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr)
                           : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr);
    if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) && ::inet_ntop(ai->ai_family, addr, buf, sizeof buf)) {
      out.emplace_back(buf);
    }
  }
  ::freeaddrinfo(res);
  return out;
}

bool IsInsecureRegistry(std::string_view domain, const std::vector<std::string>& insecure, const Resolver& resolve) {
  const std::string name = Lower(domain);
  std::vector<Cidr> ranges;
  for (const std::string& raw : insecure) {
    if (!ValidateInsecureRegistry(raw).ok()) continue;
    std::string entry = InsecureEntry(raw);
    if (auto cidr = ParseCidr(entry)) {
      ranges.push_back(*cidr);
    } else if (entry == name) {
      return true;
    }
  }
  if (ranges.empty()) return false;
  std::string host(HostPart(name));
  std::vector<std::string> addresses;
  if (ParseIp(host)) {
    addresses.push_back(host);
  } else {
    addresses = resolve(host);
  }
  for (const std::string& a : addresses) {
    auto ip = ParseIp(a);
    if (!ip) continue;
    for (const Cidr& range : ranges) {
      if (range.Contains(*ip)) return true;
    }
  }
  return false;
}

std::string NormalizeRegistry(std::string_view input) {
  std::string_view s = input;
  for (std::string_view scheme : {"https://", "http://"}) {
    if (s.size() >= scheme.size() && Lower(s.substr(0, scheme.size())) == scheme) s.remove_prefix(scheme.size());
  }
  s = s.substr(0, s.find('/'));
  std::string host = Lower(s);
  if (host == "docker.io" || host == "index.docker.io" || host == "registry-1.docker.io" ||
      host == "registry.hub.docker.com") {
    return std::string(kDockerHubDomain);
  }
  return host;
}

std::string ApiHost(std::string_view domain) {
  return domain == kDockerHubDomain ? std::string(kDockerHubHost) : std::string(domain);
}

std::string ConfigKey(std::string_view domain) {
  return domain == kDockerHubDomain ? std::string(kDockerHubConfigKey) : std::string(domain);
}

bool IsLoopback(std::string_view host_port) {
  std::string host = Lower(HostPart(host_port));
  if (host == "localhost" || host == "::1") return true;
  // 127.0.0.0/8 as a dotted quad.
  if (host.rfind("127.", 0) != 0) return false;
  int dots = 0;
  for (char c : host) {
    if (c == '.') {
      ++dots;
    } else if (!std::isdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return dots == 3;
}

CertFiles FindCertFiles(const std::string& certs_dir, std::string_view host) {
  CertFiles files;
  if (certs_dir.empty()) return files;
  std::string dir = certs_dir + "/" + std::string(host);
  if (IsFile(dir + "/ca.crt")) files.ca_file = dir + "/ca.crt";
  if (IsFile(dir + "/client.cert") && IsFile(dir + "/client.key")) {
    files.client_cert = dir + "/client.cert";
    files.client_key = dir + "/client.key";
  }
  return files;
}

std::string DefaultCertsDir() {
  const char* env = std::getenv("STRATA_CERTS_DIR");
  return env && *env ? env : "/etc/strata/certs.d";
}

std::vector<Endpoint> EndpointCandidates(std::string_view host, std::optional<bool> tls_verify,
                                         const CertFiles& certs) {
  Endpoint https;
  https.ca_file = certs.ca_file;
  https.client_cert = certs.client_cert;
  https.client_key = certs.client_key;
  Endpoint http;
  http.scheme = "http";
  http.verify_tls = false;
  if (tls_verify == true) return {https};
  if (tls_verify == false) {
    https.verify_tls = false;
    return {https, http};
  }
  if (IsLoopback(host)) {
    // Docker's insecure default for loopback; a CA configured for it says the user wants it checked.
    https.verify_tls = !certs.ca_file.empty();
    return {https, http};
  }
  return {https};
}

std::string UrlEncode(std::string_view text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string ManifestPath(std::string_view repository, std::string_view tag_or_digest) {
  return "/v2/" + std::string(repository) + "/manifests/" + std::string(tag_or_digest);
}

std::string BlobPath(std::string_view repository, std::string_view digest) {
  return "/v2/" + std::string(repository) + "/blobs/" + std::string(digest);
}

std::string UploadPath(std::string_view repository) { return "/v2/" + std::string(repository) + "/blobs/uploads/"; }

std::string MountPath(std::string_view repository, std::string_view digest, std::string_view from) {
  return AddQuery(AddQuery(UploadPath(repository), "mount", digest), "from", from);
}

std::string CatalogPath(uint32_t page_size) { return "/v2/_catalog?n=" + std::to_string(page_size); }

std::string ResolveUrl(std::string_view base, std::string_view target) {
  if (target.find("://") != std::string_view::npos) return std::string(target);
  size_t scheme_end = base.find("://");
  size_t authority_end = scheme_end == std::string_view::npos ? std::string_view::npos : base.find('/', scheme_end + 3);
  std::string origin(base.substr(0, authority_end));
  if (!target.empty() && target[0] == '/') return origin + std::string(target);
  // A relative path: resolve against the base's directory (rare; registries send absolute paths).
  std::string_view path = authority_end == std::string_view::npos ? "/" : base.substr(authority_end);
  path = path.substr(0, path.find('?'));
  return origin + std::string(path.substr(0, path.rfind('/') + 1)) + std::string(target);
}

std::string AddQuery(std::string_view url, std::string_view key, std::string_view value) {
  std::string out(url);
  out += out.find('?') == std::string::npos ? '?' : '&';
  out += std::string(key) + "=" + UrlEncode(value);
  return out;
}

std::string NextLink(std::string_view header) {
  // link-value = "<" URI-Reference ">" *( OWS ";" OWS link-param ), values separated by commas;
  // rel's value may be quoted and may list several relation types separated by spaces.
  size_t pos = 0;
  while (pos < header.size()) {
    size_t open = header.find('<', pos);
    if (open == std::string_view::npos) return "";
    size_t close = header.find('>', open);
    if (close == std::string_view::npos) return "";
    std::string_view target = header.substr(open + 1, close - open - 1);
    std::vector<std::string> params(1);
    bool quoted = false;
    size_t end = close + 1;
    for (; end < header.size(); ++end) {
      char c = header[end];
      if (c == '"') quoted = !quoted;
      if (!quoted && c == ',') break;
      if (!quoted && c == ';') {
        params.emplace_back();
      } else {
        params.back().push_back(c);
      }
    }
    for (const std::string& param : params) {
      size_t eq = param.find('=');
      if (eq == std::string::npos) continue;
      std::string key = Lower(param.substr(0, eq));
      key.erase(std::remove_if(key.begin(), key.end(), [](char c) { return c == ' ' || c == '\t'; }), key.end());
      if (key != "rel") continue;
      std::string value = Lower(param.substr(eq + 1));
      value.erase(std::remove(value.begin(), value.end(), '"'), value.end());
      size_t i = 0;
      while (i < value.size()) {
        size_t j = value.find_first_of(" \t", i);
        if (j == std::string::npos) j = value.size();
        if (value.substr(i, j - i) == "next") return std::string(target);
        i = j + 1;
      }
    }
    pos = end + 1;
  }
  return "";
}

}  // namespace registry
