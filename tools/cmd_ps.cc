#include <algorithm>
#include <ctime>
#include <iostream>
#include <map>

#include "commands.h"
#include "mounts.h"
#include "output.h"

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

std::vector<std::string> Strings(const json& j) {
  std::vector<std::string> out;
  if (!j.is_array()) return out;
  for (const json& v : j) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

// What the container would run: the image's entrypoint, then the container's command or else
// the image's (as Docker's COMMAND column shows it).
std::string CommandOf(layerstore::Store& store, const layerstore::ContainerRecord& c) {
  json image_config;
  if (auto text = store.ReadBlob(c.image_id); text.ok()) {
    json j = json::parse(*text, nullptr, false);
    if (j.is_object() && j.contains("config") && j["config"].is_object()) image_config = j["config"];
  }
  json own = json::parse(c.config, nullptr, false);
  std::vector<std::string> argv = Strings(image_config.value("Entrypoint", json()));
  std::vector<std::string> cmd =
      own.is_object() && own.contains("Cmd") ? Strings(own["Cmd"]) : Strings(image_config.value("Cmd", json()));
  argv.insert(argv.end(), cmd.begin(), cmd.end());
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
  // No process runs in a container yet: a mounted container is the closest to a running one.
  std::map<std::string, std::string> mounted_at;
  for (const auto& lease : *leases) {
    if (!lease.container_id.empty() && layerstore::ProcessAlive(lease.pid, lease.start_time)) {
      mounted_at.emplace(lease.container_id, lease.mountpoint);
    }
  }
  std::vector<layerstore::ContainerRecord> shown;
  for (const auto& c : *containers) {
    if (opts.all || mounted_at.count(c.id)) shown.push_back(c);
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
                    {"State", where == mounted_at.end() ? "created" : "mounted"},
                    {"Status", where == mounted_at.end() ? "Created" : "Mounted at " + where->second}});
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
  cmd->add_flag("-a,--all", opts->all, "Show all containers (default shows just mounted ones)");
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
