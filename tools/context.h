// Context: what every command shares: the store (opened lazily, once), the global options, and
// the outcome of the command that ran. Commands report failure by setting `status`; main()
// turns it into the exit code, so no exception leaves a command.
#pragma once

#include <CLI/CLI.hpp>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "layerstore/config.h"
#include "layerstore/options.h"
#include "layerstore/status.h"
#include "layerstore/store.h"

namespace cli {

// Process exit codes (documented in strata(1)).
enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,  // the command failed; stderr says why
  kExitUsage = 2,  // bad command line
};

struct Context {
  std::vector<std::string> argv;  // the command line as parsed (main.cc), for checks CLI11 cannot make
  layerstore::StoreOptions store_options;
  std::string log_level;
  layerstore::Status status;  // the command's outcome
  int exit_code = kExitOk;    // set when a command wants a specific code

  // Opens the store on first use.
  layerstore::Result<layerstore::Store*> Store();
  // The store's root: --root, else $STRATA_ROOT or the default (recorded in store_options).
  const std::string& StoreRoot();
  // The store's settings (<root>/config.json), read and checked on first use, insecure-registries
  // entries included; does not create the store. Errors name the file and the key.
  layerstore::Result<const layerstore::StoreConfig*> Config();
  void Fail(const layerstore::Status& s) {
    status = s;
    exit_code = kExitError;
  }
  // A bad command line that only the command could see (a flag's value, a combination of flags):
  // exits 2 like CLI11's parse errors, with the same hint.
  void FailUsage(const layerstore::Status& s) {
    status = layerstore::Status::InvalidArgument(s.message() + "\nRun with --help for more information.");
    exit_code = kExitUsage;
  }

 private:
  std::unique_ptr<layerstore::Store> store_;
  std::optional<layerstore::StoreConfig> config_;
};

// Prints `rows` per Docker's --format: "" or "table" (the default table of `columns`, each a
// pair of header and field), "table TEMPLATE", "json" (one object per line), or a template.
// `other_headers` names the headers of fields outside the default columns (field -> header, as
// Docker's "CreatedAt" -> "CREATED AT"); others head their column with the field in upper case.
layerstore::Status PrintRows(const std::string& format, const std::vector<nlohmann::json>& rows,
                             const std::vector<std::pair<std::string, std::string>>& columns,
                             const std::map<std::string, std::string>& other_headers = {});

// A --format value of the commands that print rows: OK when PrintRows can use it; else the
// template error, for FailUsage, before any work is done.
layerstore::Status CheckFormat(const std::string& format);

// --NAME[=true|false]: a flag that can also be turned off, for one that overrides a store setting
// or a default. *value is "" when the flag is absent, else "true", "false", "1" or "0".
CLI::Option* AddBoolFlag(CLI::App* cmd, const std::string& name, std::string* value, const std::string& help);
// What such a flag says: nullopt when it was not given.
std::optional<bool> BoolFlag(const std::string& value);

// Human time since an RFC 3339 timestamp ("2 weeks ago"), "N/A" when it does not parse.
std::string SinceRfc3339(const std::string& rfc3339);

bool StdoutIsTerminal();
bool StderrIsTerminal();

}  // namespace cli
