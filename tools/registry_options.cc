#include "registry_options.h"

#include "context.h"

namespace cli {

void AddRegistryFlags(CLI::App* cmd, RegistryFlags* flags) {
  AddBoolFlag(cmd, "--tls-verify", &flags->tls_verify,
              "Require HTTPS and verify certificates (--tls-verify=false: allow plain HTTP and unverified TLS)");
}

registry::ClientOptions ClientOptionsFor(const RegistryFlags& flags, std::string_view domain,
                                         const layerstore::StoreConfig& config) {
  registry::ClientOptions options;
  options.tls_verify = BoolFlag(flags.tls_verify);
  if (!options.tls_verify && registry::IsInsecureRegistry(domain, config.insecure_registries)) {
    options.tls_verify = false;
  }
  return options;
}

}  // namespace cli
