#include <iostream>

#include "commands.h"

namespace cli {

void RegisterVersion(CLI::App& app, Context&) {
  CLI::App* cmd = app.add_subcommand("version", "Show the strata version");
  cmd->callback([] { std::cout << "strata version " << STRATA_VERSION << "\n"; });
}

}  // namespace cli
