// strata: Docker's image and container commands over a deduplicated layer store.
#include <spdlog/cfg/env.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "commands.h"
#include "layerstore/sha256.h"

namespace {

void InitLogging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("strata");
  logger->set_pattern("%^%l%$: %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::warn);
  spdlog::cfg::load_env_levels();  // SPDLOG_LEVEL
  if (!level.empty()) spdlog::set_level(spdlog::level::from_str(level));
  spdlog::flush_on(spdlog::level::warn);
}

}  // namespace

int main(int argc, char** argv) {
#ifdef STRATA_PRIVATE_LIBCRYPTO
  // Linked statically, this libcrypto only hashes: TLS goes through the shared one libcurl loads.
  layerstore::Sha256::InitForHashingOnly();
#endif
  cli::Context ctx;
  ctx.argv.assign(argv, argv + argc);
  CLI::App app{"strata: manage and mount container images kept in a deduplicated layer store", "strata"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("strata version ") + STRATA_VERSION);
  app.add_option("--root", ctx.store_options.root, "Store root (default $STRATA_ROOT, /var/lib/strata as root)");
  app.add_option("--log-level", ctx.log_level, "Logging level: trace, debug, info, warn, error, critical, off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  CLI::App* image = app.add_subcommand("image", "Manage images");
  image->require_subcommand(1);
  CLI::App* container = app.add_subcommand("container", "Manage containers");
  container->require_subcommand(1);

  cli::RegisterLoad(app, ctx);
  cli::RegisterSave(app, ctx);
  cli::RegisterImages(app, ctx);
  cli::RegisterTag(app, ctx);
  cli::RegisterRmi(app, ctx);
  cli::RegisterPrune(*image, ctx);
  cli::RegisterInspect(app, ctx);
  cli::RegisterHistory(app, ctx);
  cli::RegisterSystem(app, ctx);
  cli::RegisterFsck(app, ctx);
  cli::RegisterMount(app, ctx);
  cli::RegisterCreate(app, ctx);
  cli::RegisterPs(app, ctx);
  cli::RegisterRm(app, ctx);
  cli::RegisterDiff(app, ctx);
  cli::RegisterCommit(app, ctx);
  cli::RegisterExport(app, ctx);
  cli::RegisterRun(app, ctx);
  cli::RegisterVersion(app, ctx);
  cli::RegisterPull(app, ctx);
  cli::RegisterPush(app, ctx);
  cli::RegisterLogin(app, ctx);
  cli::RegisterLogout(app, ctx);
  cli::RegisterSearch(app, ctx);
  cli::RegisterManifest(app, ctx);

  app.parse_complete_callback([&] { InitLogging(ctx.log_level); });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? cli::kExitOk : cli::kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "Error: " << e.what() << "\n";
    return cli::kExitError;
  }
  if (!ctx.status.ok()) {
    if (!ctx.status.message().empty()) std::cerr << "Error: " << ctx.status.message() << "\n";
    return ctx.exit_code ? ctx.exit_code : cli::kExitError;
  }
  // run, start and exec exit with their process's status.
  return ctx.exit_code;
}
