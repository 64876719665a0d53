#include <iostream>

#include "commands.h"
#include "registry/credentials.h"
#include "registry/endpoint.h"

namespace cli {
namespace {

struct LogoutOptions {
  std::string server;
};

void RunLogout(const LogoutOptions& opts, Context& ctx) {
  const std::string domain = registry::NormalizeRegistry(opts.server.empty() ? "docker.io" : opts.server);
  const std::string shown = registry::ConfigKey(domain);
  registry::AuthFiles files = registry::DefaultAuthFiles();
  auto erased = registry::EraseCredentials(files.docker_config, domain);
  if (!erased.ok()) return ctx.Fail(erased.status());
  if (*erased) {
    std::cout << "Removing login credentials for " << shown << "\n";
    return;
  }
  std::cout << "Not logged in to " << shown << "\n";
  // Podman's file is read for credentials but is Podman's to change.
  if (!files.podman_auth.empty()) {
    auto podman = registry::ReadCredentials(files.podman_auth, domain);
    if (podman.ok() && podman->has_value()) {
      std::cerr << "Note: " << files.podman_auth << " still holds credentials for " << shown
                << " (use podman logout to remove them)\n";
    }
  }
}

}  // namespace

void RegisterLogout(CLI::App& app, Context& ctx) {
  auto opts = std::make_shared<LogoutOptions>();
  CLI::App* cmd = app.add_subcommand("logout", "Log out from a registry (Docker Hub by default)");
  cmd->add_option("server", opts->server, "Registry (HOST[:PORT]); default docker.io");
  cmd->callback([opts, &ctx] { RunLogout(*opts, ctx); });
}

}  // namespace cli
