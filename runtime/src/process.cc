#include "runtime/process.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "layerstore/unique_fd.h"

namespace runtime {

using layerstore::Result;
using layerstore::Status;
using nlohmann::json;

namespace {

std::vector<std::string> Strings(const json& j) {
  std::vector<std::string> out;
  if (!j.is_array()) return out;
  for (const json& v : j) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

std::string_view EnvKey(std::string_view entry) { return entry.substr(0, entry.find('=')); }

bool HasEnv(const std::vector<std::string>& env, std::string_view key) {
  for (const auto& e : env) {
    if (EnvKey(e) == key) return true;
  }
  return false;
}

std::optional<uint32_t> ParseId(std::string_view s) {
  uint32_t v = 0;
  if (s.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::vector<std::string> Split(std::string_view line, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t at = line.find(sep, start);
    out.emplace_back(line.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    if (at == std::string_view::npos) return out;
    start = at + 1;
  }
}

// The lines of a passwd-style file, split at ':'; none when the file is missing.
Result<std::vector<std::vector<std::string>>> ReadColonFile(const RootfsFileReader& files, const std::string& path) {
  LS_ASSIGN_OR_RETURN(std::optional<std::string> text, files(path));
  std::vector<std::vector<std::string>> rows;
  if (!text) return rows;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    rows.push_back(Split(line, ':'));
  }
  return rows;
}

}  // namespace

ImageDefaults ImageDefaults::FromImageConfig(const json& image_config) {
  const json* c = &image_config;
  if (image_config.is_object() && image_config.contains("config")) c = &image_config["config"];
  ImageDefaults d;
  if (!c->is_object()) return d;
  d.env = Strings(c->value("Env", json()));
  d.entrypoint = Strings(c->value("Entrypoint", json()));
  d.cmd = Strings(c->value("Cmd", json()));
  if (auto it = c->find("WorkingDir"); it != c->end() && it->is_string()) d.working_dir = *it;
  if (auto it = c->find("User"); it != c->end() && it->is_string()) d.user = *it;
  return d;
}

json RunOverrides::ToJson() const {
  json j = {{"Env", env}, {"WorkingDir", working_dir}, {"User", user}, {"Hostname", hostname}, {"Tty", tty}};
  // Absent, not empty, when not given: an empty Cmd would mean "run nothing" to a reader.
  if (!cmd.empty()) j["Cmd"] = cmd;
  if (entrypoint) j["Entrypoint"] = *entrypoint;
  return j;
}

RunOverrides RunOverrides::FromJson(const json& j) {
  RunOverrides r;
  if (!j.is_object()) return r;
  r.env = Strings(j.value("Env", json()));
  r.cmd = Strings(j.value("Cmd", json()));
  if (auto it = j.find("Entrypoint"); it != j.end() && it->is_string()) r.entrypoint = *it;
  r.working_dir = j.value("WorkingDir", "");
  r.user = j.value("User", "");
  r.hostname = j.value("Hostname", "");
  r.tty = j.value("Tty", false);
  return r;
}

Result<int> OpenInRoot(int root_fd, const std::string& path, int flags, mode_t mode) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  std::string relative = path;
  while (!relative.empty() && relative.front() == '/') relative.erase(0, 1);
  if (relative.empty()) relative = ".";
  for (;;) {
    long fd = ::syscall(SYS_openat2, root_fd, relative.c_str(), &how, sizeof how);
    if (fd >= 0) return static_cast<int>(fd);
    // A rename elsewhere in the tree makes the kernel give up rather than risk an escape.
    if (errno != EAGAIN && errno != EINTR) return Status::FromErrno(path, errno);
  }
}

std::vector<std::string> MergeEnv(const std::vector<std::string>& base, const std::vector<std::string>& over) {
  std::vector<std::string> out = base;
  for (const auto& e : over) {
    bool replaced = false;
    for (auto& b : out) {
      if (EnvKey(b) == EnvKey(e)) {
        b = e;
        replaced = true;
        break;
      }
    }
    if (!replaced) out.push_back(e);
  }
  return out;
}

std::vector<std::string> ExpandEnvArgs(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (const auto& a : args) {
    if (a.find('=') != std::string::npos) {
      out.push_back(a);
    } else if (const char* v = std::getenv(a.c_str())) {
      out.push_back(a + "=" + v);
    }
  }
  return out;
}

Result<std::vector<std::string>> ReadEnvFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::FromErrno("env file " + path, errno ? errno : ENOENT);
  std::vector<std::string> entries;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    line.erase(0, start);
    if (EnvKey(line).find_first_of(" \t") != std::string_view::npos) {
      return Status::InvalidArgument("env file " + path + " line " + std::to_string(number) +
                                     ": variable '" + std::string(EnvKey(line)) + "' contains whitespaces");
    }
    entries.push_back(line);
  }
  return ExpandEnvArgs(entries);
}

RootfsFileReader ReadThroughRootfs(const std::string& rootfs) {
  return [rootfs](const std::string& path) -> Result<std::optional<std::string>> {
    layerstore::UniqueFd root(::open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) return Status::FromErrno("opening the container's root " + rootfs, errno);
    auto fd = OpenInRoot(root.get(), path, O_RDONLY);
    if (!fd.ok()) {
      if (fd.status().IsNotFound()) return std::optional<std::string>();
      return fd.status();
    }
    layerstore::UniqueFd owned(*fd);
    std::string text;
    char buf[8192];
    for (;;) {
      ssize_t n = ::read(owned.get(), buf, sizeof buf);
      if (n < 0) return Status::FromErrno("reading " + path + " of the image", errno);
      if (n == 0) break;
      text.append(buf, static_cast<size_t>(n));
      if (text.size() > kMaxRootfsFile) return Status::InvalidArgument(path + " of the image is over 16 MiB");
    }
    return std::optional<std::string>(std::move(text));
  };
}

Result<User> ResolveUser(const std::string& spec, const RootfsFileReader& files) {
  std::string user_part = spec.substr(0, spec.find(':'));
  std::optional<std::string> group_part;
  if (spec.find(':') != std::string::npos) group_part = spec.substr(spec.find(':') + 1);
  // No user means root, still looked up for its home directory and groups.
  if (user_part.empty()) user_part = "0";

  LS_ASSIGN_OR_RETURN(auto passwd, ReadColonFile(files, "/etc/passwd"));
  LS_ASSIGN_OR_RETURN(auto groups, ReadColonFile(files, "/etc/group"));

  User user;
  std::string name;
  std::optional<uint32_t> uid = ParseId(user_part);
  bool found = false;
  {
    for (const auto& row : passwd) {
      if (row.size() < 7) continue;
      auto row_uid = ParseId(row[2]);
      auto row_gid = ParseId(row[3]);
      if (!row_uid || !row_gid) continue;
      if (uid ? *row_uid == *uid : row[0] == user_part) {
        name = row[0];
        user.uid = *row_uid;
        user.gid = *row_gid;
        user.home = row[5].empty() ? "/" : row[5];
        found = true;
        break;
      }
    }
    if (!found) {
      if (!uid) {
        return Status::InvalidArgument("unable to find user " + user_part + ": no matching entries in passwd file");
      }
      user.uid = *uid;
    }
  }

  if (group_part) {
    std::optional<uint32_t> gid = ParseId(*group_part);
    bool group_found = gid.has_value();
    if (gid) user.gid = *gid;
    for (const auto& row : groups) {
      if (gid || row.size() < 3 || row[0] != *group_part) continue;
      if (auto row_gid = ParseId(row[2])) {
        user.gid = *row_gid;
        group_found = true;
        break;
      }
    }
    if (!group_found) {
      return Status::InvalidArgument("unable to find group " + *group_part + ": no matching entries in group file");
    }
  }

  if (found) {
    for (const auto& row : groups) {
      if (row.size() < 4) continue;
      auto row_gid = ParseId(row[2]);
      if (!row_gid || *row_gid == user.gid) continue;
      for (const auto& member : Split(row[3], ',')) {
        if (member == name) {
          user.additional_gids.push_back(*row_gid);
          break;
        }
      }
    }
  }
  return user;
}

std::vector<std::string> CommandLine(const ImageDefaults& image, const RunOverrides& run) {
  std::vector<std::string> args;
  if (run.entrypoint) {
    if (!run.entrypoint->empty()) args.push_back(*run.entrypoint);
  } else {
    args = image.entrypoint;
  }
  const std::vector<std::string>& cmd = !run.cmd.empty() || run.entrypoint ? run.cmd : image.cmd;
  args.insert(args.end(), cmd.begin(), cmd.end());
  return args;
}

Result<Process> ResolveProcess(const ImageDefaults& image, const RunOverrides& run, const RootfsFileReader& files) {
  Process p;
  p.args = CommandLine(image, run);
  if (p.args.empty()) return Status::InvalidArgument("no command specified");

  p.cwd = !run.working_dir.empty() ? run.working_dir : (image.working_dir.empty() ? "/" : image.working_dir);
  if (p.cwd.front() != '/') {
    return Status::InvalidArgument("the working directory '" + p.cwd + "' is invalid: it needs to be an absolute path");
  }

  LS_ASSIGN_OR_RETURN(p.user, ResolveUser(!run.user.empty() ? run.user : image.user, files));

  std::vector<std::string> env;
  env.push_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  if (!run.hostname.empty()) env.push_back("HOSTNAME=" + run.hostname);
  env = MergeEnv(env, image.env);
  if (run.tty) env = MergeEnv(env, {"TERM=xterm"});
  env = MergeEnv(env, run.env);
  if (!HasEnv(env, "HOME")) env.push_back("HOME=" + p.user.home);
  p.env = std::move(env);
  p.tty = run.tty;
  return p;
}

}  // namespace runtime
