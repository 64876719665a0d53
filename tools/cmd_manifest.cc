#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "registry/pull.h"
#include "registry_options.h"

namespace cli {
namespace {

struct ManifestInspectOptions {
  std::string reference;
  bool raw = false;
  bool insecure = false;
  std::string platform;
  RegistryFlags registry;
};

void RunManifestInspect(const ManifestInspectOptions& opts, Context& ctx) {
  auto ref = layerstore::ParseReference(opts.reference);
  if (!ref.ok()) return ctx.Fail(ref.status());
  std::optional<registry::Platform> platform;
  if (!opts.platform.empty()) {
    auto p = registry::ParsePlatform(opts.platform);
    if (!p.ok()) return ctx.FailUsage(p.status());
    platform = *p;
  }
  auto config = ctx.Config();
  if (!config.ok()) return ctx.Fail(config.status());
  registry::ClientOptions options = ClientOptionsFor(opts.registry, ref->domain, **config);
  if (opts.insecure) options.tls_verify = false;
  registry::Client client(ref->domain, options);
  auto resolved = registry::ResolveManifest(client, *ref, platform);
  if (!resolved.ok()) return ctx.Fail(resolved.status());
  const registry::FetchedManifest& m = resolved->image();
  if (opts.raw) {
    std::cout << m.body;  // the exact bytes the digest is computed over
    return;
  }
  // Pretty, keeping the registry's key order, indented as docker manifest inspect does.
  auto j = nlohmann::ordered_json::parse(m.body, nullptr, false);
  if (j.is_discarded()) return ctx.Fail(layerstore::Status::InvalidArgument("the manifest is not JSON"));
  std::cout << j.dump(3) << "\n";
}

}  // namespace

void RegisterManifest(CLI::App& app, Context& ctx) {
  CLI::App* manifest = app.add_subcommand("manifest", "Inspect manifests in a registry");
  manifest->require_subcommand(1);
  auto opts = std::make_shared<ManifestInspectOptions>();
  CLI::App* cmd = manifest->add_subcommand("inspect", "Display an image manifest or manifest list (index) from a registry");
  cmd->add_option("reference", opts->reference, "NAME[:TAG|@DIGEST]")->required();
  cmd->add_flag("--raw", opts->raw, "Print the manifest exactly as served (the bytes its digest covers)");
  cmd->add_flag("--insecure", opts->insecure, "Allow plain HTTP and unverified TLS (same as --tls-verify=false)");
  cmd->add_option("--platform", opts->platform, "Show the manifest a multi-platform image has for OS/ARCH[/VARIANT]");
  AddRegistryFlags(cmd, &opts->registry);
  cmd->callback([opts, &ctx] { RunManifestInspect(*opts, ctx); });
}

}  // namespace cli
