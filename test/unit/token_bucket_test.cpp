#include "core/token_bucket.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/error.hpp"

using namespace privacy::core;

namespace {

TokenBucket fresh() { return TokenBucket{}; }  // zero-filled, as in new shared memory

// Simulates one worker with a fake clock: reserve a batch, wait what it says, do the work
// (taking work_s), repeat until `duration_s` has passed. Returns the rows done.
double simulate(TokenBucket& bucket, double batch, double work_s, double duration_s) {
  double now = 0;
  double rows = 0;
  while (true) {
    double start = now + reserve(bucket, batch, now);
    if (start + work_s > duration_s) break;
    now = start + work_s;
    rows += batch;
  }
  return rows;
}

}  // namespace

TEST(TokenBucket, IsAPlainSharedMemoryStruct) {
  EXPECT_TRUE(std::is_trivially_copyable_v<TokenBucket>);
}

TEST(TokenBucket, ZeroFilledBucketIsUnlimited) {
  TokenBucket bucket = fresh();
  EXPECT_EQ(reserve(bucket, 1e9, 0), 0);
  EXPECT_EQ(bucket.tokens, 0);  // unchanged
}

TEST(TokenBucket, RateZeroIsUnlimitedAndLeavesStateAlone) {
  TokenBucket bucket = fresh();
  configure(bucket, 0, 10);
  TokenBucket before = bucket;
  for (int i = 0; i < 100; ++i) EXPECT_EQ(reserve(bucket, 1e6, 10 + i), 0);
  EXPECT_EQ(bucket.tokens, before.tokens);
  EXPECT_EQ(bucket.last_refill_s, before.last_refill_s);
}

TEST(TokenBucket, StartsFullWithOneSecondOfBurst) {
  TokenBucket bucket = fresh();
  configure(bucket, 500, 0);
  EXPECT_EQ(bucket.burst, 500);
  EXPECT_EQ(bucket.tokens, 500);
  EXPECT_EQ(reserve(bucket, 500, 0), 0);
  EXPECT_DOUBLE_EQ(reserve(bucket, 250, 0), 0.5);  // 250 rows of debt at 500 rows/s
}

TEST(TokenBucket, BurstIsAtLeastOneRow) {
  TokenBucket bucket = fresh();
  configure(bucket, 0.1, 0);
  EXPECT_EQ(bucket.burst, 1);
  EXPECT_EQ(reserve(bucket, 1, 0), 0);
  EXPECT_DOUBLE_EQ(reserve(bucket, 1, 0), 10);  // one row at 0.1 rows/s
}

TEST(TokenBucket, LongRunRateIsExactWithSmallBatches) {
  TokenBucket bucket = fresh();
  configure(bucket, 1000, 0);
  double rows = simulate(bucket, 100, 0.0, 30);
  // The initial full bucket is a one-off; what remains must be the configured rate.
  double achieved = (rows - bucket.burst) / 30;
  EXPECT_NEAR(achieved, 1000, 10);
}

TEST(TokenBucket, LongRunRateIsExactWithBatchesLargerThanTheBurst) {
  TokenBucket bucket = fresh();
  configure(bucket, 1000, 0);
  double rows = simulate(bucket, 5000, 0.01, 300);
  EXPECT_NEAR((rows - bucket.burst) / 300, 1000, 10);
}

TEST(TokenBucket, SlowWorkIsNotThrottledFurther) {
  TokenBucket bucket = fresh();
  configure(bucket, 1000, 0);
  // Each 100-row batch takes 0.5 s: 200 rows/s, well under the limit, so never a wait.
  double now = 0;
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(reserve(bucket, 100, now), 0);
    now += 0.5;
  }
}

TEST(TokenBucket, TwoWorkersShareTheRate) {
  TokenBucket bucket = fresh();
  configure(bucket, 1000, 0);
  double next_a = 0, next_b = 0, rows = 0;
  while (true) {  // always advance the worker whose turn comes first
    double& next = next_a <= next_b ? next_a : next_b;
    double start = next + reserve(bucket, 100, next);
    if (start > 60) break;
    next = start;
    rows += 100;
  }
  EXPECT_NEAR((rows - bucket.burst) / 60, 1000, 10);
}

TEST(TokenBucket, IdleTimeRefillsOnlyUpToTheBurst) {
  TokenBucket bucket = fresh();
  configure(bucket, 100, 0);
  EXPECT_EQ(reserve(bucket, 100, 0), 0);   // empty now
  EXPECT_EQ(reserve(bucket, 0, 3600), 0);  // an hour idle
  EXPECT_EQ(bucket.tokens, 100);           // capped at one second's worth
  EXPECT_EQ(reserve(bucket, 100, 3600), 0);
  EXPECT_DOUBLE_EQ(reserve(bucket, 100, 3600), 1.0);
}

TEST(TokenBucket, DebtIsPaidOffByTime) {
  TokenBucket bucket = fresh();
  configure(bucket, 100, 0);
  EXPECT_DOUBLE_EQ(reserve(bucket, 300, 0), 2.0);  // 200 rows of debt
  EXPECT_DOUBLE_EQ(reserve(bucket, 0, 1.0), 1.0);  // half of it paid off
  EXPECT_EQ(reserve(bucket, 0, 2.0), 0);           // all of it
}

TEST(TokenBucket, LoweringTheRateClampsTokensToTheNewBurst) {
  TokenBucket bucket = fresh();
  configure(bucket, 1000, 0);
  configure(bucket, 10, 0);
  EXPECT_EQ(bucket.burst, 10);
  EXPECT_EQ(bucket.tokens, 10);
  EXPECT_EQ(reserve(bucket, 10, 0), 0);
  EXPECT_DOUBLE_EQ(reserve(bucket, 10, 0), 1.0);  // now at 10 rows/s
}

TEST(TokenBucket, RaisingTheRateKeepsTokensAndDebt) {
  TokenBucket bucket = fresh();
  configure(bucket, 10, 0);
  EXPECT_DOUBLE_EQ(reserve(bucket, 30, 0), 2.0);  // 20 rows of debt
  configure(bucket, 100, 0);
  EXPECT_EQ(bucket.tokens, -20);                 // the debt is not forgiven
  EXPECT_DOUBLE_EQ(reserve(bucket, 0, 0), 0.2);  // but is paid off at the new rate
}

TEST(TokenBucket, RateChangeCreditsElapsedTimeAtTheOldRate) {
  TokenBucket bucket = fresh();
  configure(bucket, 10, 0);
  reserve(bucket, 10, 0);        // empty
  configure(bucket, 1000, 0.5);  // 0.5 s at 10 rows/s = 5 tokens
  EXPECT_DOUBLE_EQ(bucket.tokens, 5);
}

TEST(TokenBucket, ReconfiguringWithTheSameRateChangesNothingButTime) {
  TokenBucket bucket = fresh();
  configure(bucket, 100, 0);
  reserve(bucket, 100, 0);
  configure(bucket, 100, 0.25);
  EXPECT_DOUBLE_EQ(bucket.tokens, 25);
  EXPECT_DOUBLE_EQ(reserve(bucket, 50, 0.25), 0.25);
}

TEST(TokenBucket, UnlimitedToLimitedStartsFull) {
  TokenBucket bucket = fresh();
  configure(bucket, 0, 0);
  configure(bucket, 50, 7);
  EXPECT_EQ(bucket.tokens, 50);
  EXPECT_EQ(bucket.last_refill_s, 7);
}

TEST(TokenBucket, ClockGoingBackwardsAddsNoTokens) {
  TokenBucket bucket = fresh();
  configure(bucket, 100, 10);
  reserve(bucket, 100, 10);                       // empty at t=10
  EXPECT_DOUBLE_EQ(reserve(bucket, 50, 5), 0.5);  // t=5: nothing added, 50 rows of debt
  EXPECT_EQ(bucket.last_refill_s, 10);            // the later time is kept
  EXPECT_DOUBLE_EQ(reserve(bucket, 0, 10.5), 0);  // 0.5 s after t=10 pays the debt
  EXPECT_DOUBLE_EQ(bucket.tokens, 0);
}

TEST(TokenBucket, RefusesNegativeOrNonFiniteNumbers) {
  TokenBucket bucket = fresh();
  auto sqlstate_of = [](auto&& call) -> std::string {
    try {
      call();
    } catch (const Error& error) {
      return error.sqlstate();
    }
    return "no error";
  };
  double nan = std::numeric_limits<double>::quiet_NaN();
  double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(sqlstate_of([&] { configure(bucket, -1, 0); }), "22023");
  EXPECT_EQ(sqlstate_of([&] { configure(bucket, nan, 0); }), "22023");
  EXPECT_EQ(sqlstate_of([&] { configure(bucket, inf, 0); }), "22023");
  configure(bucket, 10, 0);
  EXPECT_EQ(sqlstate_of([&] { reserve(bucket, -5, 0); }), "22023");
  EXPECT_EQ(sqlstate_of([&] { reserve(bucket, nan, 0); }), "22023");
  EXPECT_EQ(bucket.tokens, 10);  // a refused call changes nothing
}
