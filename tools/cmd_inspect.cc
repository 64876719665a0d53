#include <iostream>

#include "commands.h"
#include "output.h"

namespace cli {
namespace {

using nlohmann::json;

struct InspectOptions {
  std::string format;
  std::vector<std::string> images;
};

void RunInspect(const InspectOptions& opts, Context& ctx) {
  if (!opts.format.empty() && opts.format != "json") {
    std::string error;
    TemplateHeader(opts.format, {}, &error);  // parses it: a bad template fails before any work
    if (!error.empty()) return ctx.FailUsage(layerstore::Status::InvalidArgument("invalid --format: " + error));
  }
  auto store = ctx.Store();
  if (!store.ok()) return ctx.Fail(store.status());
  json out = json::array();
  // Like Docker: print what was found, then fail naming what was not.
  layerstore::Status missing;
  for (const std::string& name : opts.images) {
    auto view = (*store)->ResolveImage(name);
    if (!view.ok()) {
      if (!missing.ok()) std::cerr << "Error: " << missing.message() << "\n";
      missing = view.status();
      continue;
    }
    auto config_text = (*store)->ReadBlob(view->record.id);
    if (!config_text.ok()) return ctx.Fail(config_text.status());
    json config = json::parse(*config_text, nullptr, false);
    if (!config.is_object()) config = json::object();

    json repo_tags = json::array(), repo_digests = json::array(), layers = json::array();
    for (const auto& tag : view->tags) repo_tags.push_back(tag.FamiliarString());
    for (const auto& rd : view->record.repo_digests) {
      auto ref = layerstore::ParseReference(rd);
      repo_digests.push_back(ref.ok() ? ref->FamiliarString() : rd);
    }
    for (const auto& l : view->record.layers) layers.push_back(l.str());
    json image = {
        {"Id", view->record.id.str()},
        {"RepoTags", repo_tags},
        {"RepoDigests", repo_digests},
        {"Parent", ""},
        {"Comment", config.value("comment", "")},
        {"Created", config.value("created", "")},
        {"DockerVersion", config.value("docker_version", "")},
        {"Author", config.value("author", "")},
        {"Config", config.value("config", json::object())},
        {"Architecture", config.value("architecture", "")},
        {"Os", config.value("os", "")},
        {"Size", view->record.size},
        {"GraphDriver", {{"Name", "stratafs"}, {"Data", nullptr}}},
        {"RootFS", {{"Type", "layers"}, {"Layers", layers}}},
        {"Metadata",
         {{"LastTagTime", view->record.tagged_at ? Rfc3339Nano(view->record.tagged_at, 0) : "0001-01-01T00:00:00Z"}}},
    };
    if (config.contains("variant")) image["Variant"] = config["variant"];
    out.push_back(image);
  }
  if (!missing.ok()) ctx.Fail(missing);
  if (opts.format.empty()) {
    std::cout << out.dump(4) << "\n";
    return;
  }
  for (const auto& image : out) {
    std::string error;
    std::string line = opts.format == "json" ? image.dump() : RenderTemplate(opts.format, image, &error);
    if (!error.empty()) return ctx.FailUsage(layerstore::Status::InvalidArgument("invalid --format: " + error));
    std::cout << line << "\n";
  }
}

}  // namespace

void RegisterInspect(CLI::App& app, Context& ctx) {
  auto opts = std::make_shared<InspectOptions>();
  for (CLI::App* parent : {&app, app.get_subcommand("image")}) {
    CLI::App* cmd = parent->add_subcommand("inspect", "Display detailed information on one or more images");
    cmd->add_option("-f,--format", opts->format, "Format output using a Go template, or json");
    cmd->add_option("images", opts->images, "Images to inspect")->required();
    cmd->callback([opts, &ctx] { RunInspect(*opts, ctx); });
  }
}

}  // namespace cli
