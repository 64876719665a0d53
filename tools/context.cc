#include "context.h"

#include <unistd.h>

#include <ctime>
#include <iostream>

#include "output.h"
#include "registry/endpoint.h"

namespace cli {

const std::string& Context::StoreRoot() {
  if (store_options.root.empty()) store_options.root = layerstore::DefaultStoreRoot();
  return store_options.root;
}

layerstore::Result<layerstore::Store*> Context::Store() {
  if (!store_) {
    StoreRoot();
    LS_ASSIGN_OR_RETURN(store_, layerstore::Store::Open(store_options));
  }
  return store_.get();
}

layerstore::Result<const layerstore::StoreConfig*> Context::Config() {
  if (!config_) {
    LS_ASSIGN_OR_RETURN(layerstore::StoreConfig config, layerstore::ReadStoreConfig(StoreRoot()));
    for (const std::string& entry : config.insecure_registries) {
      layerstore::Status s = registry::ValidateInsecureRegistry(entry);
      if (!s.ok()) {
        return s.WithContext(layerstore::StoreConfigPath(store_options.root) + ": \"insecure-registries\"");
      }
    }
    config_ = std::move(config);
  }
  return &*config_;
}

CLI::Option* AddBoolFlag(CLI::App* cmd, const std::string& name, std::string* value, const std::string& help) {
  return cmd->add_flag(name + "{true}", *value, help)->check(CLI::IsMember({"true", "false", "1", "0"}));
}

std::optional<bool> BoolFlag(const std::string& value) {
  if (value.empty()) return std::nullopt;
  return value == "true" || value == "1";
}

layerstore::Status CheckFormat(const std::string& format) {
  std::string tmpl, error;
  if (format == "json" || (FormatIsTable(format, &tmpl) && tmpl.empty())) return {};
  TemplateHeader(tmpl, {}, &error);
  if (!error.empty()) return layerstore::Status::InvalidArgument("invalid --format: " + error);
  return {};
}

layerstore::Status PrintRows(const std::string& format, const std::vector<nlohmann::json>& rows,
                             const std::vector<std::pair<std::string, std::string>>& columns,
                             const std::map<std::string, std::string>& other_headers) {
  if (format == "json") {
    for (const auto& row : rows) std::cout << row.dump() << "\n";
    return {};
  }
  std::string tmpl;
  bool table = format.empty() || FormatIsTable(format, &tmpl);
  if (format.empty()) tmpl.clear();
  if (table && tmpl.empty()) {
    for (size_t i = 0; i < columns.size(); ++i) tmpl += (i ? "\t" : "") + std::string("{{.") + columns[i].second + "}}";
  }
  std::map<std::string, std::string> headers = other_headers;
  for (const auto& [header, field] : columns) headers[field] = header;
  std::string text, error;
  if (table) {
    text += TemplateHeader(tmpl, headers, &error) + "\n";
    if (!error.empty()) return layerstore::Status::InvalidArgument("invalid --format: " + error);
  }
  for (const auto& row : rows) {
    text += RenderTemplate(tmpl, row, &error) + "\n";
    if (!error.empty()) return layerstore::Status::InvalidArgument("invalid --format: " + error);
  }
  std::cout << (table ? TabWrite(text) : text);
  return {};
}

std::string SinceRfc3339(const std::string& rfc3339) {
  auto t = ParseRfc3339(rfc3339);
  if (!t) return "N/A";
  return CreatedSince(t->first, static_cast<int64_t>(::time(nullptr)));
}

bool StdoutIsTerminal() { return ::isatty(STDOUT_FILENO) == 1; }
bool StderrIsTerminal() { return ::isatty(STDERR_FILENO) == 1; }

}  // namespace cli
