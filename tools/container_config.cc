#include "container_config.h"

namespace cli {

using layerstore::Result;
using layerstore::Status;
using nlohmann::json;

json ContainerConfig::ToJson() const {
  json j = run.ToJson();
  j["OpenStdin"] = open_stdin;
  j["NetworkMode"] = network == runtime::Network::kNone ? "none" : "host";
  json bind_specs = json::array();
  for (const auto& b : binds) bind_specs.push_back(b.source + ":" + b.destination + (b.read_only ? ":ro" : ""));
  j["Binds"] = bind_specs;
  j["ReadonlyRootfs"] = read_only_rootfs;
  return j;
}

ContainerConfig ContainerConfig::FromJson(const std::string& text) {
  ContainerConfig c;
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return c;
  c.run = runtime::RunOverrides::FromJson(j);
  c.open_stdin = j.value("OpenStdin", false);
  c.network = j.value("NetworkMode", "host") == "none" ? runtime::Network::kNone : runtime::Network::kHost;
  if (auto it = j.find("Binds"); it != j.end() && it->is_array()) {
    for (const json& b : *it) {
      if (!b.is_string()) continue;
      if (auto m = ParseVolume(b.get<std::string>()); m.ok()) c.binds.push_back(*m);
    }
  }
  c.read_only_rootfs = j.value("ReadonlyRootfs", false);
  return c;
}

Result<runtime::BindMount> ParseVolume(const std::string& spec) {
  runtime::BindMount m;
  size_t first = spec.find(':');
  if (first == std::string::npos) {
    return Status::InvalidArgument("invalid volume specification '" + spec + "': expected HOST:CONTAINER[:ro|rw]");
  }
  m.source = spec.substr(0, first);
  std::string rest = spec.substr(first + 1);
  size_t second = rest.find(':');
  m.destination = rest.substr(0, second);
  if (second != std::string::npos) {
    std::string mode = rest.substr(second + 1);
    if (mode == "ro") {
      m.read_only = true;
    } else if (mode != "rw") {
      return Status::InvalidArgument("invalid volume specification '" + spec + "': invalid mode '" + mode +
                                     "' (ro or rw)");
    }
  }
  if (m.source.empty() || m.source[0] != '/') {
    return Status::InvalidArgument("invalid volume specification '" + spec +
                                   "': the host path must be absolute (strata has no named volumes)");
  }
  if (m.destination.empty() || m.destination[0] != '/') {
    return Status::InvalidArgument("invalid volume specification '" + spec +
                                   "': the container path must be absolute");
  }
  if (m.destination == "/") {
    return Status::InvalidArgument("invalid volume specification '" + spec + "': the destination cannot be /");
  }
  return m;
}

Result<runtime::Network> ParseNetwork(const std::string& mode) {
  if (mode == "host" || mode.empty()) return runtime::Network::kHost;
  if (mode == "none") return runtime::Network::kNone;
  return Status::InvalidArgument("invalid --network '" + mode + "': strata supports host and none");
}

}  // namespace cli
