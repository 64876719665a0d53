// StoreConfig: the store-wide settings its owner writes by hand in <root>/config.json, in the
// manner of Docker's daemon.json (same key names; documented in strata-config(5)):
//
//   {
//     "keep-blobs": true,
//     "insecure-registries": ["registry.lan:5000", "10.0.0.0/8"]
//   }
//
// The settings belong to the store as daemon.json's belong to the daemon owning a data-root: a
// store used with --root brings its own. They are read by the commands that use them (load,
// pull, push, login, search, manifest inspect), not by Store::Open, so that a mount daemon or fsck
// never fails over a registry setting. Value type; ReadStoreConfig is a pure read.
#pragma once

#include <string>
#include <vector>

#include "layerstore/status.h"

namespace layerstore {

struct StoreConfig {
  // Keep each new layer's compressed blob as received (load, pull), so that a push sends the
  // exact bytes; a command's --keep-blobs=BOOL overrides it.
  bool keep_blobs = false;
  // Registries reached over plain HTTP or TLS without verification: "host[:port]" or an IP range
  // in CIDR notation, as written. Only their type is checked here; their syntax and meaning
  // belong to the registry client (registry::ValidateInsecureRegistry).
  std::vector<std::string> insecure_registries;
};

// "<root>/config.json".
std::string StoreConfigPath(const std::string& root);

// Reads the settings of the store at `root`. A missing, empty or blank file (or a missing root)
// gives the defaults. InvalidArgument, naming the file and the key, for a file that is not a JSON
// object, an unknown key, or a value of the wrong type; IOError when it cannot be read.
Result<StoreConfig> ReadStoreConfig(const std::string& root);

}  // namespace layerstore
