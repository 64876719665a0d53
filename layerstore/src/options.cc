#include "layerstore/options.h"

#include <unistd.h>

#include <cstdlib>

namespace layerstore {

std::string DefaultStoreRoot() {
  if (const char* env = std::getenv("STRATA_ROOT"); env && *env) return env;
  if (::geteuid() == 0) return "/var/lib/strata";
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg) return std::string(xdg) + "/strata";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.local/share/strata";
}

}  // namespace layerstore
