// Flags shared by the commands that talk to a registry (pull, push, login, logout, search,
// manifest inspect), and the client options they turn into together with the store's settings.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "layerstore/config.h"
#include "layerstore/status.h"
#include "registry/client.h"

namespace cli {

struct RegistryFlags {
  std::string tls_verify;  // "", "true"/"1", "false"/"0" (--tls-verify[=BOOL])
};

// --tls-verify[=true|false]: require (or skip) TLS verification; unset means verified HTTPS,
// except for loopback registries, which may answer plain HTTP (as Docker treats them), and for
// those the store lists in insecure-registries.
void AddRegistryFlags(CLI::App* cmd, RegistryFlags* flags);

// The client options for the registry `domain`: --tls-verify when given; else, when `config`
// lists the domain in insecure-registries, the same as --tls-verify=false (HTTPS without
// verification, then plain HTTP, as Docker treats its insecure registries); else endpoint.h's
// defaults.
registry::ClientOptions ClientOptionsFor(const RegistryFlags& flags, std::string_view domain,
                                         const layerstore::StoreConfig& config);

}  // namespace cli
