#include <iostream>

#include "commands.h"
#include "registry/endpoint.h"
#include "registry/search.h"
#include "registry_options.h"

namespace cli {
namespace {

using nlohmann::json;

struct SearchOptions {
  std::string term;
  uint32_t limit = 25;
  std::string registry;
  bool no_trunc = false;
  std::string format;
  RegistryFlags flags;
};

// Docker's stringutils.Ellipsis: at most `max` code points, the last one an ellipsis.
std::string Ellipsis(const std::string& s, size_t max) {
  size_t points = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) continue;
    if (++points == max) {
      // Is there more after this code point?
      size_t end = i + 1;
      while (end < s.size() && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) ++end;
      if (end < s.size()) return s.substr(0, i) + "\xE2\x80\xA6";
      return s;
    }
  }
  return s;
}

void RunSearch(const SearchOptions& opts, Context& ctx) {
  std::string term = opts.term;
  std::string domain = std::string(registry::kDockerHubDomain);
  if (!opts.registry.empty()) {
    domain = registry::NormalizeRegistry(opts.registry);
  } else if (size_t slash = term.find('/'); slash != std::string::npos) {
    // "localhost:5000/app" searches that registry for "app", as docker search does.
    std::string first = term.substr(0, slash);
    if (first.find('.') != std::string::npos || first.find(':') != std::string::npos || first == "localhost") {
      domain = registry::NormalizeRegistry(first);
      term = term.substr(slash + 1);
    }
  }
  if (opts.limit < 1 || opts.limit > 100) {
    return ctx.FailUsage(
        layerstore::Status::InvalidArgument("limit " + std::to_string(opts.limit) + " is outside the range of [1, 100]"));
  }
  if (auto s = CheckFormat(opts.format); !s.ok()) return ctx.FailUsage(s);
  auto config = ctx.Config();
  if (!config.ok()) return ctx.Fail(config.status());
  registry::Client client(domain, ClientOptionsFor(opts.flags, domain, **config));
  auto results = registry::Search(client, term, opts.limit);
  if (!results.ok()) return ctx.Fail(results.status());
  std::vector<json> rows;
  for (const auto& r : *results) {
    std::string desc = r.description;
    for (char& c : desc) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    if (!opts.no_trunc) desc = Ellipsis(desc, 45);
    rows.push_back({{"Name", r.name},
                    {"Description", desc},
                    {"StarCount", std::to_string(r.stars)},
                    {"IsOfficial", r.official ? "[OK]" : ""},
                    {"IsAutomated", r.automated ? "[OK]" : ""}});
  }
  auto s = PrintRows(opts.format, rows,
                     {{"NAME", "Name"}, {"DESCRIPTION", "Description"}, {"STARS", "StarCount"}, {"OFFICIAL", "IsOfficial"}});
  if (!s.ok()) ctx.FailUsage(s);
}

}  // namespace

void RegisterSearch(CLI::App& app, Context& ctx) {
  auto opts = std::make_shared<SearchOptions>();
  CLI::App* cmd = app.add_subcommand("search", "Search a registry for images");
  cmd->add_option("term", opts->term, "TERM, or REGISTRY/TERM")->required();
  cmd->add_option("--limit", opts->limit, "Max number of search results (default 25)");
  cmd->add_option("--registry", opts->registry, "Registry to search (default docker.io)");
  cmd->add_flag("--no-trunc", opts->no_trunc, "Don't truncate output");
  cmd->add_option("--format", opts->format, "Format output using a Go template ('table', 'json', or a template)");
  AddRegistryFlags(cmd, &opts->flags);
  cmd->callback([opts, &ctx] { RunSearch(*opts, ctx); });
}

}  // namespace cli
