// A container's own settings, kept in its record (ContainerRecord::config) from `create` or
// `run` so that `start` runs the same thing again: the overrides of the image's config, the
// network mode, bind mounts and rootfs mode. Field names follow Docker's container config
// ("Cmd", "Entrypoint", "Env", "WorkingDir", "User", "Hostname", "Tty", "OpenStdin",
// "NetworkMode", "Binds", "ReadonlyRootfs").
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "layerstore/status.h"
#include "runtime/container.h"
#include "runtime/process.h"

namespace cli {

struct ContainerConfig {
  runtime::RunOverrides run;
  bool open_stdin = false;
  runtime::Network network = runtime::Network::kHost;
  std::vector<runtime::BindMount> binds;
  bool read_only_rootfs = false;

  nlohmann::json ToJson() const;
  // Tolerant of the older "{}" and {"Cmd": [...]} that `create` wrote before `run` existed.
  static ContainerConfig FromJson(const std::string& text);
};

// -v HOST:CONTAINER[:ro|rw]. Both paths absolute (named volumes do not exist here).
layerstore::Result<runtime::BindMount> ParseVolume(const std::string& spec);
layerstore::Result<runtime::Network> ParseNetwork(const std::string& mode);

}  // namespace cli
