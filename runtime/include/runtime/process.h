// What a container runs, worked out as Docker works it out: the image's config (Env, Entrypoint,
// Cmd, WorkingDir, User) combined with the command line's overrides, and the user resolved
// through the image's own /etc/passwd and /etc/group.
//
// Pure functions over values and a read-only look into the rootfs; no process is started here.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "layerstore/status.h"

namespace runtime {

// The fields of an image config's "config" object that decide what runs.
struct ImageDefaults {
  std::vector<std::string> env;
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string working_dir;
  std::string user;

  // From the image config document (the whole JSON, or its "config" object).
  static ImageDefaults FromImageConfig(const nlohmann::json& image_config);
};

// The command line's say, as `docker run` takes it.
struct RunOverrides {
  std::vector<std::string> env;             // K=V, already merged from --env-file and -e
  std::optional<std::string> entrypoint;    // --entrypoint; "" resets the image's
  std::vector<std::string> cmd;             // after IMAGE; empty keeps the image's
  std::string working_dir;                  // -w
  std::string user;                         // -u USER[:GROUP]
  std::string hostname;                     // becomes $HOSTNAME
  bool tty = false;                         // -t: $TERM defaults to xterm

  nlohmann::json ToJson() const;
  static RunOverrides FromJson(const nlohmann::json& j);
};

struct User {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> additional_gids;  // the groups of /etc/group that list the user by name
  std::string home = "/";
};

struct Process {
  std::vector<std::string> args;  // args[0] looked up in the container's $PATH
  std::vector<std::string> env;   // K=V
  std::string cwd = "/";
  User user;
  bool tty = false;
};

// Entrypoint and Cmd combined per Docker's rules: --entrypoint replaces the image's entrypoint and
// drops its Cmd; a command given after IMAGE replaces Cmd.
std::vector<std::string> CommandLine(const ImageDefaults& image, const RunOverrides& run);

// Reads a file of the container's root filesystem (an absolute path in it): its bytes, or nullopt
// when it does not exist.
using RootfsFileReader = std::function<layerstore::Result<std::optional<std::string>>(const std::string& path)>;

// Files larger than this are refused: /etc/passwd and /etc/group are read whole.
inline constexpr size_t kMaxRootfsFile = 16u << 20;

// The reader of the mounted `rootfs`, every path confined to it.
RootfsFileReader ReadThroughRootfs(const std::string& rootfs);

// The command line as above, the environment merged, the user resolved against the container's
// /etc/passwd and /etc/group, read with `files` (ReadThroughRootfs: the mounted union). InvalidArgument
// names the offending option; "no command specified" when nothing is left to run.
layerstore::Result<Process> ResolveProcess(const ImageDefaults& image, const RunOverrides& run,
                                           const RootfsFileReader& files);

// `spec` is "", NAME, UID, NAME:GROUP, UID:GID (and mixes), as runc's user lookup takes it: a
// numeric user need not exist in /etc/passwd (gid 0 then), a named one must.
layerstore::Result<User> ResolveUser(const std::string& spec, const RootfsFileReader& files);

// `over` replaces entries of `base` with the same key, else is appended, order kept.
std::vector<std::string> MergeEnv(const std::vector<std::string>& base, const std::vector<std::string>& over);

// -e / --env-file entries as Docker reads them: "K=V" kept; a bare "K" takes K from strata's own
// environment and is dropped when that has none. Env files: one entry a line, blank lines and
// lines starting with # skipped.
std::vector<std::string> ExpandEnvArgs(const std::vector<std::string>& args);
layerstore::Result<std::vector<std::string>> ReadEnvFile(const std::string& path);

// Opens `path` inside `root` as if `root` were / (symlinks and .. cannot leave it).
layerstore::Result<int> OpenInRoot(int root_fd, const std::string& path, int flags, mode_t mode = 0);

}  // namespace runtime
