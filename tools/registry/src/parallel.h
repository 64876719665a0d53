// RunParallel: runs jobs on a fixed number of threads; the first failure cancels the rest.
// Threads are std::jthread (joined on scope exit, whatever happens). Internal to registry/.
#pragma once

#include <algorithm>
#include <atomic>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "layerstore/status.h"

namespace registry {

// Calls fn(i) for i in [0, count) on up to `parallel` threads. After a failure no new job
// starts and *cancel is set, so running jobs can stop early; returns the first failure.
inline layerstore::Status RunParallel(size_t count, int parallel, std::atomic<bool>* cancel,
                                      const std::function<layerstore::Status(size_t)>& fn) {
  std::atomic<size_t> next{0};
  std::mutex mu;
  layerstore::Status first;
  auto worker = [&] {
    for (;;) {
      size_t i = next.fetch_add(1);
      if (i >= count || cancel->load()) return;
      layerstore::Status s;
      try {
        s = fn(i);
      } catch (const std::exception& e) {  // an exception must not escape a thread (terminate)
        s = layerstore::Status::IOError(std::string("internal error: ") + e.what());
      }
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first.ok()) first = s;
        cancel->store(true);
      }
    }
  };
  {
    std::vector<std::jthread> threads;
    size_t n = std::min<size_t>(count, static_cast<size_t>(std::max(parallel, 1)));
    for (size_t t = 0; t < n; ++t) threads.emplace_back(worker);
  }  // joined here
  return first;
}

}  // namespace registry
