// strata: Docker's image and container commands over a deduplicated layer store.
#include <spdlog/cfg/env.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "commands.h"

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

using Registrar = void (*)(CLI::App&, cli::Context&);

void RegisterImagePrune(CLI::App& app, cli::Context& ctx) { cli::RegisterPrune(*app.get_subcommand("image"), ctx); }

// What registers each command, with the top-level names it registers (all of them also register
// their `image` and `container` forms), in the order `strata --help` lists them.
struct Command {
  std::string_view names;  // separated by spaces
  Registrar registrar;
};
constexpr Command kCommands[] = {
    {"load", cli::RegisterLoad},
    {"save", cli::RegisterSave},
    {"images", cli::RegisterImages},
    {"tag", cli::RegisterTag},
    {"rmi", cli::RegisterRmi},
    {"", RegisterImagePrune},
    {"inspect", cli::RegisterInspect},
    {"history", cli::RegisterHistory},
    {"system", cli::RegisterSystem},
    {"fsck", cli::RegisterFsck},
    {"mount umount unmount", cli::RegisterMount},
    {"create", cli::RegisterCreate},
    {"ps", cli::RegisterPs},
    {"rm", cli::RegisterRm},
    {"diff", cli::RegisterDiff},
    {"commit", cli::RegisterCommit},
    {"export", cli::RegisterExport},
    {"run start exec stop bundle", cli::RegisterRun},
    {"version", cli::RegisterVersion},
    {"pull", cli::RegisterPull},
    {"push", cli::RegisterPush},
    {"login", cli::RegisterLogin},
    {"logout", cli::RegisterLogout},
    {"search", cli::RegisterSearch},
    {"manifest", cli::RegisterManifest},
};

// The `image` and `container` forms named otherwise than their top-level command; the others
// (`image load`, `container diff`, ...) share the top-level name and its registrar.
struct GroupAlias {
  std::string_view group;
  std::string_view names;
  Registrar registrar;
};
constexpr GroupAlias kGroupAliases[] = {
    {"image", "ls list", cli::RegisterImages},      {"image", "rm remove", cli::RegisterRmi},
    {"image", "prune", RegisterImagePrune},          {"container", "ls list ps", cli::RegisterPs},
    {"container", "rm remove", cli::RegisterRm},
};

bool Names(std::string_view names, std::string_view name) {
  while (!names.empty()) {
    size_t end = names.find(' ');
    if (names.substr(0, end) == name) return true;
    if (end == std::string_view::npos) break;
    names.remove_prefix(end + 1);
  }
  return false;
}

// What registers the one command a command line names, or null when it names none strata knows
// (help, --version, a typo, a bare `image` or `container`): then every command is
// registered, for CLI11's listings and errors. Building all of them costs about a millisecond
// at every start, `strata mount` and `strata run` included, and half as much again to free.
Registrar CommandRegistrar(const CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.starts_with("-")) {
      // A global option with its value goes by; help, --version or a stray option: the whole tree.
      const size_t eq = arg.find('=');
      const CLI::Option* opt = app.get_option_no_throw(std::string(arg.substr(0, eq)));
      if (opt == nullptr || opt->get_expected_max() == 0) return nullptr;
      if (eq == std::string_view::npos) ++i;  // the value is the next argument
      continue;
    }
    if (arg == "image" || arg == "container") {
      if (i + 1 == argc) return nullptr;
      std::string_view sub = argv[i + 1];
      for (const auto& alias : kGroupAliases) {
        if (alias.group == arg && Names(alias.names, sub)) return alias.registrar;
      }
      arg = sub;
    }
    for (const auto& command : kCommands) {
      if (Names(command.names, arg)) return command.registrar;
    }
    return nullptr;
  }
  return nullptr;
}

// Docker's parser takes `-X=VALUE` for a short option (`-H=false`, `-e=K=V`); CLI11 takes
// `--human=false`, and reads `-e=K=V` as the value "=K=V". Each `-X=VALUE` whose X is an option of
// the command being parsed is spelled `--LONG=VALUE` (or `-X VALUE` without a long name), up to
// `--` and, in a command whose first positional is followed by the container's own command line
// (run, exec, create), up to that positional.
void SpellShortOptionValuesLong(CLI::App& app, std::vector<std::string>& args) {
  CLI::App* current = &app;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string arg = args[i];
    if (arg == "--") return;
    if (arg.size() < 2 || arg[0] != '-') {
      auto subs = current->get_subcommands([&arg](CLI::App* sub) { return sub->check_name(arg); });
      if (!subs.empty()) {
        current = subs.front();
      } else if (current->get_prefix_command()) {
        return;
      }
      continue;
    }
    const bool long_form = arg[1] == '-';
    const size_t eq = arg.find('=');
    const CLI::Option* opt = current->get_option_no_throw(long_form ? arg.substr(0, eq) : arg.substr(0, 2));
    if (opt == nullptr) continue;
    if (!long_form && eq == 2) {
      if (!opt->get_lnames().empty()) {
        args[i] = "--" + opt->get_lnames().front() + arg.substr(2);
      } else if (opt->get_expected_max() != 0) {
        args[i] = arg.substr(0, 2);
        args.insert(args.begin() + static_cast<std::ptrdiff_t>(++i), arg.substr(3));
      }
    } else if (opt->get_expected_max() != 0 && eq == std::string::npos && (long_form || arg.size() == 2)) {
      ++i;  // the option's value, whatever it looks like
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  cli::Context ctx;
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

  if (auto only = CommandRegistrar(app, argc, argv)) {
    only(app, ctx);
  } else {
    for (const auto& command : kCommands) command.registrar(app, ctx);
  }

  ctx.argv.assign(argv, argv + argc);
  SpellShortOptionValuesLong(app, ctx.argv);
  std::vector<char*> args;
  for (std::string& arg : ctx.argv) args.push_back(arg.data());

  app.parse_complete_callback([&] { InitLogging(ctx.log_level); });
  try {
    app.parse(static_cast<int>(args.size()), args.data());
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
