#include "registry_options.h"

namespace cli {

void AddRegistryFlags(CLI::App* cmd, RegistryFlags* flags) {
  cmd->add_flag("--tls-verify{true}", flags->tls_verify,
                "Require HTTPS and verify certificates (--tls-verify=false: allow plain HTTP and unverified TLS)")
      ->check(CLI::IsMember({"true", "false", "1", "0"}));
}

registry::ClientOptions ClientOptionsFor(const RegistryFlags& flags) {
  registry::ClientOptions options;
  if (flags.tls_verify == "true" || flags.tls_verify == "1") options.tls_verify = true;
  if (flags.tls_verify == "false" || flags.tls_verify == "0") options.tls_verify = false;
  return options;
}

}  // namespace cli
