#include "core/progress.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.hpp"

using namespace privacy::core;

TEST(Throughput, FirstBatchIsTakenAsIs) {
  EXPECT_DOUBLE_EQ(next_throughput(std::nullopt, 1000, 2), 500);
}

TEST(Throughput, LaterBatchesAreAWeightedAverage) {
  EXPECT_DOUBLE_EQ(next_throughput(500.0, 1000, 1), 0.3 * 1000 + 0.7 * 500);
  EXPECT_DOUBLE_EQ(next_throughput(500.0, 1000, 1, 1.0), 1000);  // weight 1: no memory
  EXPECT_DOUBLE_EQ(next_throughput(500.0, 1000, 1, 0.5), 750);
}

TEST(Throughput, ConvergesToASteadyRate) {
  std::optional<double> rate;
  rate = next_throughput(rate, 10, 1);  // a slow start
  for (int i = 0; i < 50; ++i) rate = next_throughput(rate, 200, 1);
  EXPECT_NEAR(*rate, 200, 0.01);
}

TEST(Throughput, OneSlowBatchMovesTheAverageOnlyALittle) {
  double rate = next_throughput(1000.0, 10, 1);  // a batch stuck on a lock
  EXPECT_GT(rate, 600);
}

TEST(Throughput, ZeroOrNegativeDurationKeepsThePrevious) {
  EXPECT_EQ(next_throughput(123.0, 100, 0), 123);
  EXPECT_EQ(next_throughput(123.0, 100, -1), 123);
  EXPECT_EQ(next_throughput(std::nullopt, 100, 0), 0);
}

TEST(Throughput, RefusesABadWeightOrNegativeRows) {
  EXPECT_THROW(next_throughput(1.0, 1, 1, 0), Error);
  EXPECT_THROW(next_throughput(1.0, 1, 1, 1.5), Error);
  EXPECT_THROW(next_throughput(1.0, 1, 1, std::nan("")), Error);
  EXPECT_THROW(next_throughput(1.0, -1, 1), Error);
  try {
    next_throughput(1.0, 1, 1, -0.1);
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
