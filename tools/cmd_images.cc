#include <algorithm>
#include <ctime>
#include <iostream>
#include <set>

#include "commands.h"
#include "output.h"

namespace cli {
namespace {

using nlohmann::json;

struct ImagesOptions {
  bool all = false;
  bool quiet = false;
  bool digests = false;
  bool no_trunc = false;
  std::string format;
  std::string filter;  // REPOSITORY[:TAG]
};

struct Row {
  std::string repository = "<none>", tag = "<none>", digest = "<none>";
  layerstore::Digest id;
  int64_t created = 0;
  int32_t created_nanos = 0;
  uint64_t size = 0;
};

void RunImages(const ImagesOptions& opts, Context& ctx) {
  if (auto s = CheckFormat(opts.format); !s.ok()) return ctx.FailUsage(s);
  auto store = ctx.Store();
  if (!store.ok()) return ctx.Fail(store.status());
  auto images = (*store)->ListImages();
  if (!images.ok()) return ctx.Fail(images.status());

  std::optional<layerstore::Reference> filter;
  if (!opts.filter.empty()) {
    auto ref = layerstore::ParseReferenceNoDefaultTag(opts.filter);
    if (!ref.ok()) return ctx.Fail(ref.status());
    filter = *ref;
  }

  std::vector<Row> rows;
  for (const auto& view : *images) {
    Row base;
    base.id = view.record.id;
    base.size = view.record.size;
    auto config = (*store)->ReadBlob(view.record.id);
    if (config.ok()) {
      json j = json::parse(*config, nullptr, false);
      if (j.is_object() && j.contains("created") && j["created"].is_string()) {
        if (auto t = ParseRfc3339(j["created"].get<std::string>())) {
          base.created = t->first;
          base.created_nanos = t->second;
        }
      }
    }
    std::vector<Row> image_rows;
    for (const auto& tag : view.tags) {
      Row r = base;
      r.repository = tag.FamiliarName();
      r.tag = tag.tag;
      for (const auto& rd : view.record.repo_digests) {
        auto ref = layerstore::ParseReference(rd);
        if (ref.ok() && ref->Name() == tag.Name() && ref->digest) r.digest = ref->digest->str();
      }
      if (filter && (filter->Name() != tag.Name() || (!filter->tag.empty() && filter->tag != tag.tag))) continue;
      image_rows.push_back(r);
    }
    if (view.tags.empty() && !filter) image_rows.push_back(base);  // dangling: <none>:<none>
    rows.insert(rows.end(), image_rows.begin(), image_rows.end());
  }
  // Newest first, as Docker lists them.
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.created > b.created; });

  auto id_text = [&](const layerstore::Digest& id) { return opts.no_trunc ? id.str() : id.hex().substr(0, 12); };
  if (opts.quiet) {
    std::set<layerstore::Digest> printed;
    for (const Row& r : rows) {
      if (printed.insert(r.id).second) std::cout << id_text(r.id) << "\n";
    }
    return;
  }
  int64_t now = static_cast<int64_t>(::time(nullptr));
  std::vector<json> out;
  for (const Row& r : rows) {
    out.push_back({{"Containers", "N/A"},
                   {"CreatedAt", r.created ? FormatTimestamp(r.created, r.created_nanos) : "N/A"},
                   {"CreatedSince", r.created ? CreatedSince(r.created, now) : "N/A"},
                   {"Digest", r.digest},
                   {"ID", id_text(r.id)},
                   {"Repository", r.repository},
                   {"SharedSize", "N/A"},
                   {"Size", HumanSize(static_cast<double>(r.size))},
                   {"Tag", r.tag},
                   {"UniqueSize", "N/A"},
                   {"VirtualSize", HumanSize(static_cast<double>(r.size))}});
  }
  std::vector<std::pair<std::string, std::string>> columns = {{"REPOSITORY", "Repository"}, {"TAG", "Tag"}};
  if (opts.digests) columns.push_back({"DIGEST", "Digest"});
  columns.insert(columns.end(), {{"IMAGE ID", "ID"}, {"CREATED", "CreatedSince"}, {"SIZE", "Size"}});
  auto s = PrintRows(opts.format, out, columns);
  if (!s.ok()) ctx.FailUsage(s);
}

void AddImagesOptions(CLI::App* cmd, std::shared_ptr<ImagesOptions> opts) {
  cmd->add_flag("-a,--all", opts->all, "Show all images (strata keeps no intermediate images, so the same list)");
  cmd->add_flag("-q,--quiet", opts->quiet, "Only show image IDs");
  cmd->add_flag("--digests", opts->digests, "Show digests");
  cmd->add_flag("--no-trunc", opts->no_trunc, "Don't truncate output");
  cmd->add_option("--format", opts->format, "Format output: table, json, or a Go template");
  cmd->add_option("repository", opts->filter, "Only images of REPOSITORY[:TAG]");
}

}  // namespace

void RegisterImages(CLI::App& app, Context& ctx) {
  auto opts = std::make_shared<ImagesOptions>();
  CLI::App* images = app.add_subcommand("images", "List images");
  AddImagesOptions(images, opts);
  images->callback([opts, &ctx] { RunImages(*opts, ctx); });

  CLI::App* image = app.get_subcommand("image");
  CLI::App* ls = image->add_subcommand("ls", "List images");
  ls->alias("list");
  AddImagesOptions(ls, opts);
  ls->callback([opts, &ctx] { RunImages(*opts, ctx); });
}

}  // namespace cli
