#include "registry/credentials.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "layerstore/unique_fd.h"
#include "registry/endpoint.h"

namespace registry {
namespace {

using json = nlohmann::json;
using layerstore::Result;
using layerstore::Status;
using layerstore::UniqueFd;

// nullopt when the file does not exist.
Result<std::optional<json>> LoadFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return std::optional<json>();
    return Status::FromErrno("opening " + path, errno);
  }
  std::string text;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("reading " + path, errno);
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > (16 << 20)) return Status::InvalidArgument(path + " is implausibly large");
  }
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) return std::optional<json>(json::object());
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::InvalidArgument(path + " is not a JSON object");
  return std::optional<json>(std::move(j));
}

// The auths keys of `config` that name `domain`.
std::vector<std::string> MatchingKeys(const json& config, std::string_view domain) {
  std::vector<std::string> keys;
  auto auths = config.find("auths");
  if (auths == config.end() || !auths->is_object()) return keys;
  for (auto it = auths->begin(); it != auths->end(); ++it) {
    if (NormalizeRegistry(it.key()) == domain) keys.push_back(it.key());
  }
  // The canonical key first, then the rest in file order.
  std::string canonical = ConfigKey(domain);
  std::stable_partition(keys.begin(), keys.end(), [&](const std::string& k) { return k == canonical; });
  return keys;
}

Result<std::optional<Credentials>> Decode(const json& entry, const std::string& path, const std::string& key) {
  if (!entry.is_object()) return Status::InvalidArgument(path + ": auths entry \"" + key + "\" is not an object");
  Credentials c;
  if (entry.contains("auth") && entry["auth"].is_string() && !entry["auth"].get<std::string>().empty()) {
    auto decoded = Base64Decode(entry["auth"].get<std::string>());
    if (!decoded.ok()) return Status::InvalidArgument(path + ": auths entry \"" + key + "\" has invalid base64 in \"auth\"");
    size_t colon = decoded->find(':');
    if (colon == std::string::npos) {
      return Status::InvalidArgument(path + ": auths entry \"" + key + "\" does not decode to user:password");
    }
    c.username = decoded->substr(0, colon);
    c.password = decoded->substr(colon + 1);
  } else {
    if (entry.contains("username") && entry["username"].is_string()) c.username = entry["username"].get<std::string>();
    if (entry.contains("password") && entry["password"].is_string()) c.password = entry["password"].get<std::string>();
  }
  if (entry.contains("identitytoken") && entry["identitytoken"].is_string()) {
    c.identity_token = entry["identitytoken"].get<std::string>();
  }
  if (c.empty()) return std::optional<Credentials>();
  return std::optional<Credentials>(std::move(c));
}

Status MkdirP(const std::string& dir) {
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos == dir.size() || dir[pos] == '/') {
      std::string prefix = dir.substr(0, pos);
      if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) return Status::FromErrno("creating " + prefix, errno);
    }
  }
  return {};
}

Status WriteAtomic(const std::string& path, const std::string& text) {
  // Write through a symlinked config.json rather than replacing the link.
  std::string target = path;
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) != nullptr) target = resolved;
  std::string dir = target.substr(0, target.rfind('/') == std::string::npos ? 0 : target.rfind('/'));
  if (dir.empty()) dir = ".";
  LS_RETURN_IF_ERROR(MkdirP(dir));
  std::string tmpl = target + ".tmp-XXXXXX";
  UniqueFd fd(::mkstemp(tmpl.data()));
  if (!fd) return Status::FromErrno("creating a temporary file beside " + target, errno);
  auto fail = [&](const std::string& what, int err) {
    ::unlink(tmpl.c_str());
    return Status::FromErrno(what + " " + tmpl, err);
  };
  // mkstemp makes 0600 files already; be explicit, the file holds passwords.
  if (::fchmod(fd.get(), 0600) != 0) return fail("chmod", errno);
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("writing", errno);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return fail("fsync", errno);
  if (::rename(tmpl.c_str(), target.c_str()) != 0) return fail("renaming", errno);
  UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd) ::fsync(dfd.get());
  return {};
}

}  // namespace

AuthFiles DefaultAuthFiles() {
  AuthFiles files;
  const char* docker_config = std::getenv("DOCKER_CONFIG");
  if (docker_config && *docker_config) {
    files.docker_config = std::string(docker_config) + "/config.json";
  } else {
    const char* home = std::getenv("HOME");
    files.docker_config = std::string(home && *home ? home : "/root") + "/.docker/config.json";
  }
  const char* registry_auth = std::getenv("REGISTRY_AUTH_FILE");
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  if (registry_auth && *registry_auth) {
    files.podman_auth = registry_auth;
  } else if (runtime && *runtime) {
    files.podman_auth = std::string(runtime) + "/containers/auth.json";
  }
  return files;
}

Result<std::optional<Credentials>> ReadCredentials(const std::string& path, std::string_view domain) {
  LS_ASSIGN_OR_RETURN(std::optional<json> config, LoadFile(path));
  if (!config) return std::optional<Credentials>();
  for (const std::string& key : MatchingKeys(*config, domain)) {
    LS_ASSIGN_OR_RETURN(auto creds, Decode((*config)["auths"][key], path, key));
    if (creds) return creds;
  }
  // Docker keeps an empty auths entry when the secret went to a credential helper.
  std::string key = ConfigKey(domain);
  std::string helper;
  if (config->contains("credHelpers") && (*config)["credHelpers"].is_object() &&
      (*config)["credHelpers"].contains(key) && (*config)["credHelpers"][key].is_string()) {
    helper = (*config)["credHelpers"][key].get<std::string>();
  } else if (config->contains("credsStore") && (*config)["credsStore"].is_string()) {
    helper = (*config)["credsStore"].get<std::string>();
  }
  if (!helper.empty()) {
    spdlog::warn("{} names credential helper docker-credential-{} for {}; strata does not run credential helpers",
                 path, helper, std::string(domain));
  }
  return std::optional<Credentials>();
}

Result<std::optional<Credentials>> LookupCredentials(const AuthFiles& files, std::string_view domain,
                                                     std::string* source) {
  for (const std::string& path : {files.docker_config, files.podman_auth}) {
    if (path.empty()) continue;
    LS_ASSIGN_OR_RETURN(auto creds, ReadCredentials(path, domain));
    if (creds) {
      if (source) *source = path;
      return creds;
    }
  }
  return std::optional<Credentials>();
}

Status SaveCredentials(const std::string& path, std::string_view domain, const Credentials& credentials) {
  LS_ASSIGN_OR_RETURN(std::optional<json> loaded, LoadFile(path));
  json config = loaded ? std::move(*loaded) : json::object();
  if (!config.contains("auths") || !config["auths"].is_object()) config["auths"] = json::object();
  // One entry per registry: drop aliases ("docker.io", "https://host") of the canonical key.
  for (const std::string& key : MatchingKeys(config, domain)) config["auths"].erase(key);
  config["auths"][ConfigKey(domain)] = {{"auth", Base64Encode(credentials.username + ":" + credentials.password)}};
  return WriteAtomic(path, config.dump(1, '\t') + "\n");
}

Result<bool> EraseCredentials(const std::string& path, std::string_view domain) {
  LS_ASSIGN_OR_RETURN(std::optional<json> config, LoadFile(path));
  if (!config) return false;
  std::vector<std::string> keys = MatchingKeys(*config, domain);
  if (keys.empty()) return false;
  for (const std::string& key : keys) (*config)["auths"].erase(key);
  LS_RETURN_IF_ERROR(WriteAtomic(path, config->dump(1, '\t') + "\n"));
  return true;
}

}  // namespace registry
