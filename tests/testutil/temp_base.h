// Where test stores live: tmpfs when available, since every import ends in syncfs() and every
// store open in fsync()s, which cost a second on a busy disk; else $TMPDIR or /tmp.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <string>

namespace layerstore {

inline std::string TempBase() {
  if (const char* env = std::getenv("STRATA_TEST_TMPDIR"); env && *env) return env;
  if (::access("/dev/shm", W_OK | X_OK) == 0) return "/dev/shm";
  if (const char* env = std::getenv("TMPDIR"); env && *env) return env;
  return "/tmp";
}

}  // namespace layerstore
