#include "layerstore/config.h"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "fsutil.h"
#include "paths.h"

namespace layerstore {

std::string StoreConfigPath(const std::string& root) { return root + "/" + paths::kConfigFile; }

Result<StoreConfig> ReadStoreConfig(const std::string& root) {
  const std::string path = StoreConfigPath(root);
  StoreConfig config;
  auto text = fsutil::ReadFileAt(AT_FDCWD, path);
  if (!text.ok()) {
    if (text.status().IsNotFound()) return config;
    return text.status();
  }
  // An empty (or blank) file means no settings, as Docker takes an empty daemon.json; a UTF-8 BOM
  // is allowed.
  std::string_view body = *text;
  if (body.substr(0, 3) == "\xef\xbb\xbf") body.remove_prefix(3);
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return config;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(body);
  } catch (const nlohmann::json::parse_error& e) {
    // what() reads "[json.exception.parse_error.101] parse error at line 2, column 3: ...".
    std::string_view why = e.what();
    if (auto bracket = why.find("] "); why.substr(0, 1) == "[" && bracket != std::string_view::npos) {
      why.remove_prefix(bracket + 2);
    }
    return Status::InvalidArgument(path + ": not valid JSON: " + std::string(why));
  }
  if (!j.is_object()) return Status::InvalidArgument(path + ": must hold a JSON object ({...})");
  for (const auto& [key, value] : j.items()) {
    const std::string where = path + ": \"" + key + "\"";
    if (key == "keep-blobs") {
      if (!value.is_boolean()) return Status::InvalidArgument(where + " must be true or false, not " + value.dump());
      config.keep_blobs = value.get<bool>();
    } else if (key == "insecure-registries") {
      if (!value.is_array()) {
        return Status::InvalidArgument(where + " must be a list of registries ([\"host:port\", ...]), not " +
                                       value.dump());
      }
      for (const auto& entry : value) {
        if (!entry.is_string()) {
          return Status::InvalidArgument(where + ": " + entry.dump() + " is not a string (\"host:port\" or a CIDR)");
        }
        config.insecure_registries.push_back(entry.get<std::string>());
      }
    } else {
      return Status::InvalidArgument(path + ": unknown key \"" + key +
                                     "\" (strata knows \"insecure-registries\" and \"keep-blobs\")");
    }
  }
  return config;
}

}  // namespace layerstore
