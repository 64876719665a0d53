#include <iostream>

#include "commands.h"
#include "output.h"

namespace cli {
namespace {

using nlohmann::json;

struct DfOptions {
  std::string format;
};

void RunDf(const DfOptions& opts, Context& ctx) {
  if (!opts.format.empty() && opts.format != "json" && opts.format != "table") {
    return ctx.FailUsage(layerstore::Status::InvalidArgument("unknown --format \"" + opts.format + "\": use table or json"));
  }
  auto store = ctx.Store();
  if (!store.ok()) return ctx.Fail(store.status());
  auto du = (*store)->GetDiskUsage();
  if (!du.ok()) return ctx.Fail(du.status());
  uint64_t saved = du->logical_bytes > du->disk_bytes ? du->logical_bytes - du->disk_bytes : 0;
  if (opts.format == "json") {
    json j = {{"Images", du->images},
              {"DanglingImages", du->dangling_images},
              {"Layers", du->layers},
              {"Objects", du->objects},
              {"LogicalSize", du->logical_bytes},
              {"LayersSize", du->layer_bytes},
              {"ObjectsSize", du->object_bytes},
              {"DiskSize", du->disk_bytes},
              {"Reclaimable", du->reclaimable_bytes},
              {"DedupSaved", saved}};
    std::cout << j.dump() << "\n";
    return;
  }
  Table table({"TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"});
  auto pct = [](uint64_t part, uint64_t whole) {
    return whole ? " (" + std::to_string(part * 100 / whole) + "%)" : std::string();
  };
  table.AddRow({"Images", std::to_string(du->images), std::to_string(du->images - du->dangling_images),
                HumanSize(static_cast<double>(du->logical_bytes)),
                HumanSize(static_cast<double>(du->reclaimable_bytes)) + pct(du->reclaimable_bytes, du->logical_bytes)});
  table.AddRow({"Layers", std::to_string(du->layers), std::to_string(du->layers),
                HumanSize(static_cast<double>(du->layer_bytes)), "0B"});
  table.AddRow({"File objects", std::to_string(du->objects), std::to_string(du->objects),
                HumanSize(static_cast<double>(du->object_bytes)), "0B"});
  table.Render(std::cout);
  std::cout << "\nLogical size (images as if stored apart): " << HumanSize(static_cast<double>(du->logical_bytes))
            << "\nOn disk (objects, blobs, tar-splits, metadata): " << HumanSize(static_cast<double>(du->disk_bytes))
            << "\nSaved by deduplication: " << HumanSize(static_cast<double>(saved)) << pct(saved, du->logical_bytes)
            << "\n";
}

}  // namespace

void RegisterSystem(CLI::App& app, Context& ctx) {
  auto opts = std::make_shared<DfOptions>();
  CLI::App* system = app.add_subcommand("system", "Manage the store");
  system->require_subcommand(1);
  CLI::App* df = system->add_subcommand("df", "Show disk usage, and what deduplication saves");
  df->add_option("--format", opts->format, "Format output: table or json");
  df->callback([opts, &ctx] { RunDf(*opts, ctx); });
}

}  // namespace cli
