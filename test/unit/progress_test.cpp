#include "core/progress.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.hpp"

using namespace privacy::core;

TEST(ExpectedRate, WhatTheRunAchievedOverWallClockTime) {
  EXPECT_DOUBLE_EQ(*expected_rate(1000, 2, 0), 500);
  EXPECT_DOUBLE_EQ(*expected_rate(1000, 2, -1), 500);  // no limit
}

TEST(ExpectedRate, NeverMoreThanTheTenantsLimit) {
  // The burst of a token bucket: 2,000 rows in 0.01 s at a limit of 2,000 rows/s.
  EXPECT_DOUBLE_EQ(*expected_rate(2000, 0.01, 2000), 2000);
  EXPECT_DOUBLE_EQ(*expected_rate(100, 1, 2000), 100);  // slower than the limit: what it achieves
}

TEST(ExpectedRate, BeforeAnythingIsDoneOnlyTheLimitTells) {
  EXPECT_DOUBLE_EQ(*expected_rate(0, 5, 300), 300);
  EXPECT_DOUBLE_EQ(*expected_rate(10, 0, 300), 300);
  EXPECT_EQ(expected_rate(0, 5, 0), std::nullopt);
  EXPECT_EQ(expected_rate(10, 0, 0), std::nullopt);
}

TEST(ExpectedRate, TheIssuesExampleIsNoLongerOptimistic) {
  // 12,009 rows at 2,000 rows/s: after 4,000 rows in 1.05 s of wall-clock time the ETA of the
  // remaining 8,009 rows is about 4 s, not 0.27 s.
  double rate = *expected_rate(4000, 1.05, 2000);
  EXPECT_GE(*eta_seconds(8009, rate), 4.0);
}

TEST(ExpectedRate, RefusesNegativeRows) {
  EXPECT_THROW(expected_rate(-1, 1, 0), Error);
  try {
    expected_rate(-1, 1, 0);
  } catch (const Error& error) {
    EXPECT_EQ(error.sqlstate(), "22023");
  }
}

TEST(Eta, RemainingOverRate) {
  EXPECT_EQ(eta_seconds(1000, 250), 4.0);
  EXPECT_EQ(eta_seconds(1, 4), 0.25);
}

TEST(Eta, NothingRemainingIsZeroEvenWithoutARate) {
  EXPECT_EQ(eta_seconds(0, 100), 0.0);
  EXPECT_EQ(eta_seconds(0, 0), 0.0);
  EXPECT_EQ(eta_seconds(-5, 0), 0.0);
}

TEST(Eta, UnknownRateGivesNoEta) {
  EXPECT_EQ(eta_seconds(10, 0), std::nullopt);
  EXPECT_EQ(eta_seconds(10, -3), std::nullopt);
  EXPECT_EQ(eta_seconds(10, std::nan("")), std::nullopt);
}

TEST(ProgressPct, Ratio) {
  EXPECT_DOUBLE_EQ(progress_pct(0, 200), 0);
  EXPECT_DOUBLE_EQ(progress_pct(50, 200), 25);
  EXPECT_DOUBLE_EQ(progress_pct(200, 200), 100);
  EXPECT_NEAR(progress_pct(1, 3), 33.3333, 1e-3);
}

TEST(ProgressPct, NothingToDoIsDone) {
  EXPECT_EQ(progress_pct(0, 0), 100);
  EXPECT_EQ(progress_pct(5, -1), 100);
}

TEST(ProgressPct, ClampedToZeroToHundred) {
  EXPECT_EQ(progress_pct(300, 200), 100);
  EXPECT_EQ(progress_pct(-4, 200), 0);
}

TEST(ProgressPct, LargeCountsDoNotOverflow) {
  long long billions = 9'000'000'000'000'000'000LL;
  EXPECT_DOUBLE_EQ(progress_pct(billions / 2, billions), 50);
}
