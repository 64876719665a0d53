// Retry classification and backoff (registry/retry.h).
#include "registry/retry.h"

#include <gtest/gtest.h>
#include <stdlib.h>

namespace registry {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(Retry, RetryableStatuses) {
  for (long s : {408L, 429L, 500L, 502L, 503L, 504L, 599L}) EXPECT_TRUE(RetryPolicy::RetryableStatus(s)) << s;
  for (long s : {200L, 201L, 206L, 301L, 400L, 401L, 403L, 404L, 416L, 501L, 505L}) {
    EXPECT_FALSE(RetryPolicy::RetryableStatus(s)) << s;
  }
}

TEST(Retry, ExponentialWithEqualJitter) {
  RetryPolicy p;
  p.initial_delay = milliseconds(100);
  p.max_delay = milliseconds(1000);
  p.multiplier = 2;
  // random 0: half the base; random 1: the whole base.
  EXPECT_EQ(p.Delay(1, 0.0), milliseconds(50));
  EXPECT_EQ(p.Delay(1, 1.0), milliseconds(100));
  EXPECT_EQ(p.Delay(2, 1.0), milliseconds(200));
  EXPECT_EQ(p.Delay(3, 0.5), milliseconds(300));  // base 400: 200 + 100
  EXPECT_EQ(p.Delay(4, 1.0), milliseconds(800));
  EXPECT_EQ(p.Delay(5, 1.0), milliseconds(1000));  // capped
  EXPECT_EQ(p.Delay(30, 1.0), milliseconds(1000));
  EXPECT_EQ(p.Delay(30, 0.0), milliseconds(500));
  // Out-of-range draws are clamped.
  EXPECT_EQ(p.Delay(1, -3.0), milliseconds(50));
  EXPECT_EQ(p.Delay(1, 7.0), milliseconds(100));
  for (int i = 0; i < 100; ++i) {
    auto d = p.Delay(3);
    EXPECT_GE(d, milliseconds(200));
    EXPECT_LE(d, milliseconds(400));
  }
}

TEST(Retry, RetryAfterWinsButIsCapped) {
  RetryPolicy p;
  p.max_delay = milliseconds(5000);
  EXPECT_EQ(p.Delay(1, 0.0, seconds(2)), milliseconds(2000));
  EXPECT_EQ(p.Delay(1, 0.0, seconds(3600)), milliseconds(5000));
  EXPECT_EQ(ParseRetryAfter("120"), seconds(120));
  EXPECT_EQ(ParseRetryAfter(" 7\r"), seconds(7));
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT"), std::nullopt);
  EXPECT_EQ(ParseRetryAfter(""), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("-1"), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("99999999999"), std::nullopt);
}

TEST(Retry, AttemptsAndEnvironment) {
  RetryPolicy p;
  p.max_attempts = 3;
  EXPECT_TRUE(p.ShouldRetry(1));
  EXPECT_TRUE(p.ShouldRetry(2));
  EXPECT_FALSE(p.ShouldRetry(3));
  ::setenv("STRATA_REGISTRY_RETRIES", "7", 1);
  ::setenv("STRATA_REGISTRY_RETRY_DELAY_MS", "10", 1);
  RetryPolicy e = RetryPolicy::FromEnvironment();
  EXPECT_EQ(e.max_attempts, 7);
  EXPECT_EQ(e.initial_delay, milliseconds(10));
  ::setenv("STRATA_REGISTRY_RETRIES", "zero", 1);
  EXPECT_EQ(RetryPolicy::FromEnvironment().max_attempts, RetryPolicy().max_attempts);
  ::unsetenv("STRATA_REGISTRY_RETRIES");
  ::unsetenv("STRATA_REGISTRY_RETRY_DELAY_MS");
}

}  // namespace
}  // namespace registry
