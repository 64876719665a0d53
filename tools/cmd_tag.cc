#include "commands.h"

namespace cli {
namespace {

struct TagOptions {
  std::string source, target;
};

void RunTag(const TagOptions& opts, Context& ctx) {
  auto store = ctx.Store();
  if (!store.ok()) return ctx.Fail(store.status());
  auto view = (*store)->ResolveImage(opts.source);
  if (!view.ok()) return ctx.Fail(view.status());
  auto ref = layerstore::ParseReference(opts.target);
  if (!ref.ok()) return ctx.Fail(ref.status());
  auto s = (*store)->Tag(view->record.id, *ref);
  if (!s.ok()) ctx.Fail(s);
}

}  // namespace

void RegisterTag(CLI::App& app, Context& ctx) {
  auto opts = std::make_shared<TagOptions>();
  for (CLI::App* parent : {&app, app.get_subcommand("image")}) {
    CLI::App* cmd = parent->add_subcommand("tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE");
    cmd->add_option("source", opts->source, "SOURCE_IMAGE[:TAG]")->required();
    cmd->add_option("target", opts->target, "TARGET_IMAGE[:TAG]")->required();
    cmd->callback([opts, &ctx] { RunTag(*opts, ctx); });
  }
}

}  // namespace cli
