// Credential files: Docker's config.json and Podman's auth.json.
//
// Both hold {"auths": {"<registry>": {"auth": base64("user:password")}}}; Docker Hub's key is
// "https://index.docker.io/v1/", others are "host[:port]" (Podman also accepts "host/namespace"
// and scheme prefixes, matched here by their host). Writing keeps every other key of the file
// (credHelpers, proxies, psFormat, ...), replaces the file atomically and leaves it mode 0600 —
// it holds passwords in the clear, as Docker's does without a credential helper.
//
// Credential helpers (credsStore/credHelpers) are not run: an entry stored only in a helper is
// reported as not found, with a warning naming the helper.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "layerstore/status.h"
#include "registry/auth.h"

namespace registry {

struct AuthFiles {
  std::string docker_config;  // written by login/logout; read first
  std::string podman_auth;    // read only; empty when unknown
};

// docker_config: $DOCKER_CONFIG/config.json, else $HOME/.docker/config.json.
// podman_auth: $REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json (when set).
AuthFiles DefaultAuthFiles();

// Credentials stored for `domain` (a normalised registry, see NormalizeRegistry) in one file;
// nullopt when the file or the entry is missing. Fails on unreadable or malformed files.
layerstore::Result<std::optional<Credentials>> ReadCredentials(const std::string& path, std::string_view domain);

// The first of docker_config, podman_auth that has credentials for `domain`; *source (if
// non-null) receives that file's path.
layerstore::Result<std::optional<Credentials>> LookupCredentials(const AuthFiles& files, std::string_view domain,
                                                                 std::string* source = nullptr);

// Stores credentials for `domain` in `path`, creating the file (and its directory, 0700) when
// needed. The file is rewritten atomically with mode 0600.
layerstore::Status SaveCredentials(const std::string& path, std::string_view domain, const Credentials& credentials);

// Removes every entry for `domain` from `path`. Returns false when there was none.
layerstore::Result<bool> EraseCredentials(const std::string& path, std::string_view domain);

}  // namespace registry
