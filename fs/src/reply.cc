#include "reply.h"

#include <spdlog/spdlog.h>

namespace layerfs {

void LogInternalError(const std::exception& e) noexcept {
  try {
    spdlog::error("internal error: {}", e.what());
  } catch (...) {
    // The request still gets its EIO; a log line that cannot be written is not worth more.
  }
}

}  // namespace layerfs
