#include <ctime>
#include <iostream>

#include "commands.h"
#include "output.h"

namespace cli {
namespace {

using nlohmann::json;

struct HistoryOptions {
  bool no_trunc = false;
  bool human = true;
  bool quiet = false;
  std::string format;
  std::string image;
};

void RunHistory(const HistoryOptions& opts, Context& ctx) {
  if (auto s = CheckFormat(opts.format); !s.ok()) return ctx.FailUsage(s);
  auto store = ctx.Store();
  if (!store.ok()) return ctx.Fail(store.status());
  auto view = (*store)->ResolveImage(opts.image);
  if (!view.ok()) return ctx.Fail(view.status());
  auto config_text = (*store)->ReadBlob(view->record.id);
  if (!config_text.ok()) return ctx.Fail(config_text.status());
  json config = json::parse(*config_text, nullptr, false);
  json history = config.is_object() ? config.value("history", json::array()) : json::array();

  // Pair history entries with layers in order; empty_layer entries have none.
  struct Item {
    json entry;
    uint64_t size = 0;
  };
  std::vector<Item> items;
  size_t layer = 0;
  for (const json& h : history) {
    Item item{h};
    if (!h.value("empty_layer", false) && layer < view->record.layers.size()) {
      auto info = (*store)->FindLayer(view->record.layers[layer++]);
      if (info.ok() && *info) item.size = (*info)->content_size;
    }
    items.push_back(item);
  }
  // Images without history (docker import, some tools): one row per layer.
  if (history.empty()) {
    for (const auto& diff_id : view->record.layers) {
      auto info = (*store)->FindLayer(diff_id);
      items.push_back({json::object(), info.ok() && *info ? (*info)->content_size : 0});
    }
  }

  int64_t now = static_cast<int64_t>(::time(nullptr));
  std::vector<json> rows;
  for (size_t i = items.size(); i-- > 0;) {
    const json& h = items[i].entry;
    bool top = i + 1 == items.size();
    std::string id = top ? (opts.no_trunc ? view->record.id.str() : view->record.id.hex().substr(0, 12)) : "<missing>";
    std::string created = h.value("created", "");
    auto t = ParseRfc3339(created);
    std::string created_by = h.value("created_by", "");
    for (char& c : created_by) {
      if (c == '\t' || c == '\n') c = ' ';
    }
    if (!opts.no_trunc && created_by.size() > 45) created_by = created_by.substr(0, 44) + "…";
    rows.push_back({{"ID", id},
                    {"CreatedSince", t ? (opts.human ? CreatedSince(t->first, now) : created) : "N/A"},
                    {"CreatedAt", t ? (opts.human ? FormatTimestamp(t->first, t->second) : created) : "N/A"},
                    {"CreatedBy", created_by},
                    {"Size", opts.human ? HumanSize(static_cast<double>(items[i].size)) : std::to_string(items[i].size)},
                    {"Comment", h.value("comment", "")}});
  }
  if (opts.quiet) {
    for (const auto& r : rows) std::cout << r["ID"].get<std::string>() << "\n";
    return;
  }
  auto s = PrintRows(opts.format, rows,
                     {{"IMAGE", "ID"}, {"CREATED", "CreatedSince"}, {"CREATED BY", "CreatedBy"}, {"SIZE", "Size"},
                      {"COMMENT", "Comment"}});
  if (!s.ok()) ctx.FailUsage(s);
}

}  // namespace

void RegisterHistory(CLI::App& app, Context& ctx) {
  auto opts = std::make_shared<HistoryOptions>();
  for (CLI::App* parent : {&app, app.get_subcommand("image")}) {
    CLI::App* cmd = parent->add_subcommand("history", "Show the history of an image");
    cmd->add_flag("--no-trunc", opts->no_trunc, "Don't truncate output");
    cmd->add_flag("-H,--human", opts->human, "Print sizes and dates in human readable format (default true; --human=false)");
    cmd->add_flag("-q,--quiet", opts->quiet, "Only show image IDs");
    cmd->add_option("--format", opts->format, "Format output: table, json, or a Go template");
    cmd->add_option("image", opts->image, "Image")->required();
    cmd->callback([opts, &ctx] { RunHistory(*opts, ctx); });
  }
}

}  // namespace cli
