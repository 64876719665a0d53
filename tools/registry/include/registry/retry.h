// RetryPolicy: which failures of a registry request are worth repeating, and how long to wait.
//
// Transient failures are retried: connection errors (refused, reset, timed out, cut mid-body),
// HTTP 408, 429 and 5xx other than 501/505 (which will not change). Everything else — 4xx, TLS
// certificate problems, a digest that does not match — is an answer, not an accident, and is
// returned at once. Delays grow exponentially with "equal jitter" (half fixed, half random), so
// parallel transfers hitting the same failure do not retry in lockstep; a Retry-After header,
// when the server sends one, is honoured up to max_delay.
// Value type; Delay is pure given the random draw, so tests pass it explicitly.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace registry {

struct RetryPolicy {
  int max_attempts = 5;  // total tries of one request, the first included
  std::chrono::milliseconds initial_delay{250};
  std::chrono::milliseconds max_delay{8000};
  double multiplier = 2.0;

  // Whether an HTTP status is transient.
  static bool RetryableStatus(long http_status);

  // The wait before try `attempt` + 1, after `attempt` (1-based) tries failed: base =
  // min(max_delay, initial_delay * multiplier^(attempt-1)); result = base/2 + base/2 * random01.
  // A Retry-After (seconds) replaces it, capped at max_delay.
  std::chrono::milliseconds Delay(int attempt, double random01,
                                   std::optional<std::chrono::seconds> retry_after = std::nullopt) const;
  // As above with a random draw.
  std::chrono::milliseconds Delay(int attempt, std::optional<std::chrono::seconds> retry_after = std::nullopt) const;

  bool ShouldRetry(int attempt) const { return attempt < max_attempts; }

  // The default, with max_attempts and delays overridable by $STRATA_REGISTRY_RETRIES and
  // $STRATA_REGISTRY_RETRY_DELAY_MS (initial delay), for tests and flaky links.
  static RetryPolicy FromEnvironment();
};

// Parses a Retry-After value given in seconds ("120"); HTTP dates are ignored (nullopt).
std::optional<std::chrono::seconds> ParseRetryAfter(std::string_view value);

}  // namespace registry
