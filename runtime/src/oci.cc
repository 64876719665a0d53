#include "runtime/oci.h"

namespace runtime {

using nlohmann::json;

json OciConfig(const ContainerSpec& spec) {
  const Process& p = spec.process;
  json caps = DefaultCapabilities();
  json user = {{"uid", p.user.uid}, {"gid", p.user.gid}};
  if (!p.user.additional_gids.empty()) user["additionalGids"] = p.user.additional_gids;
  json process = {{"terminal", p.tty},
                  {"user", user},
                  {"args", p.args},
                  {"env", p.env},
                  {"cwd", p.cwd},
                  {"capabilities",
                   {{"bounding", caps}, {"effective", caps}, {"permitted", caps}, {"inheritable", caps}}},
                  {"noNewPrivileges", p.user.uid != 0}};

  json mounts = json::array({
      {{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}, {"options", {"nosuid", "noexec", "nodev"}}},
      {{"destination", "/dev"},
       {"type", "tmpfs"},
       {"source", "tmpfs"},
       {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
      {{"destination", "/dev/pts"},
       {"type", "devpts"},
       {"source", "devpts"},
       {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}}},
      {{"destination", "/dev/shm"},
       {"type", "tmpfs"},
       {"source", "shm"},
       {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}},
      {{"destination", "/sys"},
       {"type", "sysfs"},
       {"source", "sysfs"},
       {"options", {"nosuid", "noexec", "nodev", "ro"}}},
  });
  for (const BindMount& m : spec.mounts) {
    json options = {"rbind", "rprivate"};
    if (m.read_only) options.push_back("ro");
    mounts.push_back({{"destination", m.destination}, {"type", "bind"}, {"source", m.source}, {"options", options}});
  }

  json namespaces = json::array({{{"type", "pid"}}, {{"type", "ipc"}}, {{"type", "uts"}}, {{"type", "mount"}}});
  if (spec.network == Network::kNone) namespaces.push_back({{"type", "network"}});

  json config = {{"ociVersion", "1.0.2"},
                 {"process", process},
                 {"root", {{"path", spec.rootfs}, {"readonly", spec.read_only_rootfs}}},
                 {"mounts", mounts},
                 {"linux", {{"namespaces", namespaces}}}};
  if (!spec.hostname.empty()) config["hostname"] = spec.hostname;
  return config;
}

}  // namespace runtime
