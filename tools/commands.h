// One Register function per command, each in its own cmd_<name>.cc, wired in main.cc.
#pragma once

#include <CLI/CLI.hpp>

#include "context.h"

namespace cli {

void RegisterLoad(CLI::App& app, Context& ctx);
void RegisterSave(CLI::App& app, Context& ctx);
void RegisterImages(CLI::App& app, Context& ctx);  // `images` and `image ls`
void RegisterTag(CLI::App& app, Context& ctx);
void RegisterRmi(CLI::App& app, Context& ctx);      // `rmi` and `image rm`
void RegisterPrune(CLI::App& image_app, Context& ctx);  // `image prune`
void RegisterInspect(CLI::App& app, Context& ctx);
void RegisterHistory(CLI::App& app, Context& ctx);
void RegisterSystem(CLI::App& app, Context& ctx);   // `system df`
void RegisterFsck(CLI::App& app, Context& ctx);
void RegisterMount(CLI::App& app, Context& ctx);   // `mount` and `umount`
// Containers: each also under `container` (`container create`, `container ls`, ...).
void RegisterCreate(CLI::App& app, Context& ctx);
void RegisterPs(CLI::App& app, Context& ctx);      // `ps` and `container ls`
void RegisterRm(CLI::App& app, Context& ctx);
void RegisterDiff(CLI::App& app, Context& ctx);
void RegisterCommit(CLI::App& app, Context& ctx);
void RegisterExport(CLI::App& app, Context& ctx);
void RegisterRun(CLI::App& app, Context& ctx);  // run, start, exec, stop, bundle
void RegisterVersion(CLI::App& app, Context& ctx);
// Registries (tools/registry/): `pull`/`push` also as `image pull`/`image push`.
void RegisterPull(CLI::App& app, Context& ctx);
void RegisterPush(CLI::App& app, Context& ctx);
void RegisterLogin(CLI::App& app, Context& ctx);
void RegisterLogout(CLI::App& app, Context& ctx);
void RegisterSearch(CLI::App& app, Context& ctx);
void RegisterManifest(CLI::App& app, Context& ctx);  // `manifest inspect`

}  // namespace cli
