// Flags shared by the commands that talk to a registry (pull, push, login, logout, search,
// manifest inspect), and the client options they turn into.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "layerstore/status.h"
#include "registry/client.h"

namespace cli {

struct RegistryFlags {
  std::string tls_verify;  // "", "true"/"1", "false"/"0" (--tls-verify[=BOOL])
};

// --tls-verify[=true|false]: require (or skip) TLS verification; unset means verified HTTPS,
// except for loopback registries, which may answer plain HTTP (as Docker treats them).
void AddRegistryFlags(CLI::App* cmd, RegistryFlags* flags);

registry::ClientOptions ClientOptionsFor(const RegistryFlags& flags);

}  // namespace cli
