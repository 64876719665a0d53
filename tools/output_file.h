// Command output that is a file: all of it or nothing.
#pragma once

#include <functional>
#include <string>

#include "layerstore/status.h"

namespace cli {

// Runs write(fd) into `path` atomically — a temp file beside it, fsynced and renamed over it
// only when complete, removed on any failure — or into stdout when `path` is empty.
layerstore::Status WriteOutput(const std::string& path, const std::function<layerstore::Status(int fd)>& write);

}  // namespace cli
