#include "registry/retry.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>

namespace registry {

bool RetryPolicy::RetryableStatus(long http_status) {
  if (http_status == 408 || http_status == 429) return true;
  return http_status >= 500 && http_status <= 599 && http_status != 501 && http_status != 505;
}

std::chrono::milliseconds RetryPolicy::Delay(int attempt, double random01,
                                             std::optional<std::chrono::seconds> retry_after) const {
  if (retry_after) {
    return std::min<std::chrono::milliseconds>(std::chrono::duration_cast<std::chrono::milliseconds>(*retry_after),
                                               max_delay);
  }
  double base = static_cast<double>(initial_delay.count()) * std::pow(multiplier, std::max(0, attempt - 1));
  base = std::min(base, static_cast<double>(max_delay.count()));
  random01 = std::clamp(random01, 0.0, 1.0);
  return std::chrono::milliseconds(static_cast<int64_t>(base / 2 + base / 2 * random01));
}

std::chrono::milliseconds RetryPolicy::Delay(int attempt, std::optional<std::chrono::seconds> retry_after) const {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> dist(0.0, 1.0);
  return Delay(attempt, dist(rng), retry_after);
}

RetryPolicy RetryPolicy::FromEnvironment() {
  RetryPolicy p;
  if (const char* v = std::getenv("STRATA_REGISTRY_RETRIES"); v && *v) {
    int n = std::atoi(v);
    if (n >= 1) p.max_attempts = n;
  }
  if (const char* v = std::getenv("STRATA_REGISTRY_RETRY_DELAY_MS"); v && *v) {
    int ms = std::atoi(v);
    if (ms >= 0) p.initial_delay = std::chrono::milliseconds(ms);
  }
  return p;
}

std::optional<std::chrono::seconds> ParseRetryAfter(std::string_view value) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\r')) value.remove_suffix(1);
  if (value.empty() || value.size() > 9) return std::nullopt;
  int64_t secs = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return std::nullopt;
    secs = secs * 10 + (c - '0');
  }
  return std::chrono::seconds(secs);
}

}  // namespace registry
