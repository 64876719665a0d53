#include <time.h>

#include <iostream>
#include <thread>

#include "commands.h"
#include "layerstore/changes.h"
#include "mounts.h"
#include "output.h"
#include "run_state.h"
#include "registry/pipe.h"

namespace cli {
namespace {

using nlohmann::json;

struct CommitOptions {
  std::string message;
  std::string author;
  std::string container;
  std::string reference;  // IMAGE[:TAG], optional
};

// The tar writer's side of the pipe that ImportLayer reads.
class PipeSink final : public layerstore::ByteSink {
 public:
  explicit PipeSink(registry::BlobPipe& pipe) : pipe_(pipe) {}
  layerstore::Status Write(const void* data, size_t size) override {
    if (!pipe_.Write(static_cast<const char*>(data), size))
      return layerstore::Status::Unavailable("the import stopped");
    return {};
  }

 private:
  registry::BlobPipe& pipe_;
};

// The new image's config: the parent's, with the layer appended to rootfs.diff_ids, a history
// entry for it, a new creation time, the author, and the container's command (as Docker's
// commit keeps the container's Cmd).
layerstore::Result<std::string> CommitConfig(const std::string& parent, const layerstore::ContainerRecord& c,
                                             const layerstore::Digest& diff_id, const CommitOptions& opts) {
  json cfg = json::parse(parent, nullptr, false);
  if (!cfg.is_object())
    return layerstore::Status::Corruption("the config of image " + c.image_id.str() + " is not a JSON object");
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  const std::string now = Rfc3339Nano(ts.tv_sec, static_cast<int32_t>(ts.tv_nsec));
  const std::string parent_created = cfg.value("created", "");
  cfg["created"] = now;
  // Docker's NewChildImage: the author and comment are the commit's, not the parent's.
  for (const auto& [key, value] : {std::pair<const char*, const std::string&>{"author", opts.author},
                                   std::pair<const char*, const std::string&>{"comment", opts.message}}) {
    if (value.empty()) {
      cfg.erase(key);
    } else {
      cfg[key] = value;
    }
  }
  // Describes the container the parent was built in, not this one.
  cfg.erase("container");
  cfg.erase("container_config");
  json own = json::parse(c.config, nullptr, false);
  if (own.is_object() && own.contains("Cmd") && own["Cmd"].is_array()) {
    if (!cfg.contains("config") || !cfg["config"].is_object()) cfg["config"] = json::object();
    cfg["config"]["Cmd"] = own["Cmd"];
  }
  if (!cfg.contains("rootfs") || !cfg["rootfs"].is_object()) cfg["rootfs"] = {{"type", "layers"}};
  json& diff_ids = cfg["rootfs"]["diff_ids"];
  if (!diff_ids.is_array()) diff_ids = json::array();
  const size_t parent_layers = diff_ids.size();
  diff_ids.push_back(diff_id.str());
  json history = cfg.value("history", json::array());
  if (!history.is_array()) history = json::array();
  if (history.empty()) {
    // Keep history aligned with the layers (one entry per non-empty layer) for `strata history`.
    for (size_t i = 0; i < parent_layers; ++i) {
      json entry = json::object();
      if (!parent_created.empty()) entry["created"] = parent_created;
      history.push_back(entry);
    }
  }
  json entry = {{"created", now}, {"created_by", "strata commit"}};
  if (!opts.author.empty()) entry["author"] = opts.author;
  if (!opts.message.empty()) entry["comment"] = opts.message;
  history.push_back(entry);
  cfg["history"] = history;
  return cfg.dump();
}

void RunCommit(const CommitOptions& opts, Context& ctx) {
  auto store = ctx.Store();
  if (!store.ok()) return ctx.Fail(store.status());
  layerstore::Store& s = **store;
  std::vector<layerstore::Reference> tags;
  if (!opts.reference.empty()) {
    auto ref = layerstore::ParseReference(opts.reference);
    if (!ref.ok()) return ctx.Fail(ref.status());
    if (ref->digest) {
      return ctx.Fail(layerstore::Status::InvalidArgument("refusing to create a tag with a digest reference"));
    }
    tags.push_back(*ref);
  }
  auto c = s.ResolveContainer(opts.container);
  if (!c.ok()) return ctx.Fail(c.status());
  auto image = s.ResolveImage(c->image_id.str());
  if (!image.ok()) return ctx.Fail(image.status().WithContext("image of container " + c->name));
  auto parent = s.ReadBlob(c->image_id);
  if (!parent.ok()) return ctx.Fail(parent.status());
  auto index = s.OpenRootfs(image->record.layers, false);
  if (!index.ok()) return ctx.Fail(index.status());
  auto init = ReadInitPaths(s.ContainerDir(c->id));
  if (!init.ok()) return ctx.Fail(init.status());

  // Which paths changed comes from the upper directory, what they hold from the merged view.
  auto view = ContainerView::Open(s, ctx.store_options.root, *c);
  if (!view.ok()) return ctx.Fail(view.status());
  auto lease = s.AcquireWriteLease();  // until the image names the layer
  if (!lease.ok()) return ctx.Fail(lease.status());
  const std::string upper = s.ContainerDir(c->id) + "/upper";
  registry::BlobPipe pipe("the layer of container " + c->name);
  std::thread writer([&] {
    PipeSink sink(pipe);
    pipe.Close(layerstore::WriteContainerLayer(**index, upper, *init, (*view)->dir(), sink));
  });
  auto layer = s.ImportLayer(pipe, {}, nullptr);
  if (!layer.ok()) pipe.Cancel();
  writer.join();
  if (!layer.ok()) return ctx.Fail(layer.status().WithContext("committing container " + c->name));

  auto config = CommitConfig(*parent, *c, layer->diff_id, opts);
  if (!config.ok()) return ctx.Fail(config.status());
  layerstore::NewImage new_image;
  new_image.config = *config;
  new_image.tags = tags;
  auto record = s.CreateImage(new_image);
  if (!record.ok()) return ctx.Fail(record.status());
  std::cout << record->id.str() << "\n";
}

}  // namespace

void RegisterCommit(CLI::App& app, Context& ctx) {
  auto opts = std::make_shared<CommitOptions>();
  for (CLI::App* parent : {&app, app.get_subcommand("container")}) {
    CLI::App* cmd = parent->add_subcommand("commit", "Create a new image from a container's changes");
    cmd->add_option("-m,--message", opts->message, "Commit message");
    cmd->add_option("-a,--author", opts->author, "Author (e.g., \"John Hannibal Smith <hannibal@a-team.com>\")");
    cmd->add_option("container", opts->container, "Container")->required();
    cmd->add_option("repository", opts->reference, "REPOSITORY[:TAG] to tag the new image with");
    cmd->callback([opts, &ctx] { RunCommit(*opts, ctx); });
  }
}

}  // namespace cli
