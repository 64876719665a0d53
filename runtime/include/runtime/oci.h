// An OCI runtime bundle's config.json (runtime-spec 1.0) for a container spec, so that runc or
// another OCI runtime can run what `strata run` would, over the same mounted rootfs.
#pragma once

#include <nlohmann/json.hpp>

#include "runtime/container.h"

namespace runtime {

// The same namespaces, mounts, hostname, process (args, env, cwd, user, capabilities,
// no_new_privs, terminal) that StartContainer sets up. root.path is spec.rootfs.
nlohmann::json OciConfig(const ContainerSpec& spec);

}  // namespace runtime
