#include <algorithm>
#include <chrono>
#include <ctime>
#include <iostream>
#include <map>

#include "commands.h"
#include "mounts.h"
#include "output.h"
#include "container_config.h"
#include "run_state.h"

namespace cli {
namespace {

using nlohmann::json;

struct PsOptions {
  bool all = false;
  bool quiet = false;
  bool no_trunc = false;
  std::string format;
};

// Go's strconv.Quote for the text we print: quotes, backslashes and control bytes escaped,
// UTF-8 kept as it is.
std::string GoQuote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\a':
        out += "\\a";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\v':
        out += "\\v";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

// Docker's formatter.Ellipsis: at most `width` code points, the last one "…" when cut.
std::string Ellipsis(const std::string& s, size_t width) {
  if (DisplayWidth(s) <= width) return s;
  std::string out;
  size_t points = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    bool lead = (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80;
    if (lead && ++points == width) break;
    out += s[i];
  }
  return out + "…";
}

// What the container runs: its image's entrypoint and command as the container's own settings
// override them (Docker's COMMAND column).
std::string CommandOf(layerstore::Store& store, const layerstore::ContainerRecord& c) {
  json image_config;
  if (auto text = store.ReadBlob(c.image_id); text.ok()) image_config = json::parse(*text, nullptr, false);
  std::vector<std::string> argv = runtime::CommandLine(runtime::ImageDefaults::FromImageConfig(image_config),
                                                       ContainerConfig::FromJson(c.config).run);
  std::string out;
  for (const std::string& a : argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

void RunPs(const PsOptions& opts, Context& ctx) {
  if (auto s = CheckFormat(opts.format); !s.ok()) return ctx.FailUsage(s);
  auto store = ctx.Store();
  if (!store.ok()) return ctx.Fail(store.status());
  auto containers = (*store)->ListContainers();
  if (!containers.ok()) return ctx.Fail(containers.status());
  auto leases = (*store)->ListMountLeases();
  if (!leases.ok()) return ctx.Fail(leases.status());
  // A mounted container without a process (strata mount --container) is listed as mounted.
  std::map<std::string, std::string> mounted_at;
  for (const auto& lease : *leases) {
    if (!lease.container_id.empty() && layerstore::ProcessAlive(lease.pid, lease.start_time)) {
      mounted_at.emplace(lease.container_id, lease.mountpoint);
    }
  }
  std::map<std::string, RunState> states;
  for (const auto& c : *containers) {
    auto state = ReadRunState((*store)->ContainerDir(c.id));
    if (state.ok()) states[c.id] = *state;
  }
  auto running = [&](const std::string& id) { return states.count(id) && states[id].Alive(); };
  std::vector<layerstore::ContainerRecord> shown;
  for (const auto& c : *containers) {
    if (opts.all || running(c.id) || mounted_at.count(c.id)) shown.push_back(c);
  }
  // Newest first, as Docker lists them.
  std::stable_sort(shown.begin(), shown.end(),
                   [](const auto& a, const auto& b) { return a.created_at > b.created_at; });

  auto id_text = [&](const std::string& id) { return opts.no_trunc ? id : id.substr(0, 12); };
  if (opts.quiet) {
    for (const auto& c : shown) std::cout << id_text(c.id) << "\n";
    return;
  }
  int64_t now = static_cast<int64_t>(::time(nullptr));
  std::vector<json> rows;
  for (const auto& c : shown) {
    // The image as it was named, while that name still means the same image; else its ID.
    std::string image = c.image;
    auto named = (*store)->ResolveImage(c.image);
    if (!named.ok() || named->record.id != c.image_id)
      image = opts.no_trunc ? c.image_id.str() : c.image_id.hex().substr(0, 12);
    std::string command = CommandOf(**store, c);
    auto where = mounted_at.find(c.id);
    const RunState& state = states[c.id];
    std::string state_name = "created";
    std::string status = "Created";
    if (running(c.id)) {
      state_name = "running";
      status = "Up " + HumanDuration(std::chrono::seconds(now - state.started_at));
    } else if (where != mounted_at.end()) {
      state_name = "mounted";
      status = "Mounted at " + where->second;
    } else if (state.finished_at > 0) {
      state_name = "exited";
      status = "Exited (" + std::to_string(state.exit_code) + ") " + CreatedSince(state.finished_at, now);
    }
    rows.push_back({{"Command", GoQuote(opts.no_trunc ? command : Ellipsis(command, 20))},
                    {"CreatedAt", FormatTimestamp(c.created_at, 0)},
                    {"ID", id_text(c.id)},
                    {"Image", image},
                    {"Labels", ""},
                    {"LocalVolumes", "0"},
                    {"Mounts", where == mounted_at.end() ? "" : where->second},
                    {"Names", c.name},
                    {"Networks", ""},
                    {"Ports", ""},
                    {"RunningFor", CreatedSince(c.created_at, now)},
                    {"Size", "0B"},
                    {"State", state_name},
                    {"Status", status}});
  }
  auto s = PrintRows(opts.format, rows,
                     {{"CONTAINER ID", "ID"},
                      {"IMAGE", "Image"},
                      {"COMMAND", "Command"},
                      {"CREATED", "RunningFor"},
                      {"STATUS", "Status"},
                      {"PORTS", "Ports"},
                      {"NAMES", "Names"}},
                     {{"CreatedAt", "CREATED AT"},
                      {"State", "STATE"},
                      {"Size", "SIZE"},
                      {"Labels", "LABELS"},
                      {"Mounts", "MOUNTS"},
                      {"Networks", "NETWORKS"},
                      {"LocalVolumes", "LOCAL VOLUMES"}});
  if (!s.ok()) ctx.FailUsage(s);
}

void AddPsOptions(CLI::App* cmd, std::shared_ptr<PsOptions> opts) {
  cmd->add_flag("-a,--all", opts->all, "Show all containers (default shows just running and mounted ones)");
  cmd->add_flag("-q,--quiet", opts->quiet, "Only display container IDs");
  cmd->add_flag("--no-trunc", opts->no_trunc, "Don't truncate output");
  cmd->add_option("--format", opts->format, "Format output: table, json, or a Go template");
}

}  // namespace

void RegisterPs(CLI::App& app, Context& ctx) {
  auto opts = std::make_shared<PsOptions>();
  CLI::App* ps = app.add_subcommand("ps", "List containers");
  CLI::App* ls = app.get_subcommand("container")->add_subcommand("ls", "List containers");
  ls->alias("ps");
  ls->alias("list");
  for (CLI::App* cmd : {ps, ls}) {
    AddPsOptions(cmd, opts);
    cmd->callback([opts, &ctx] { RunPs(*opts, ctx); });
  }
}

}  // namespace cli
