#include "core/cost_pacing.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <limits>

#include "core/error.hpp"

using namespace privacy::core;

namespace {

// The nap time (ms) a worker gets for `batches` batches of `cost_per_batch` each.
double total_nap(double cost_per_batch, int batches, const CostSettings& settings) {
  CostBalance balance;
  double napped = 0;
  for (int i = 0; i < batches; ++i) napped += charge(balance, cost_per_batch, settings);
  EXPECT_DOUBLE_EQ(napped, balance.napped_ms);
  return napped;
}

std::string sqlstate_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const Error& error) {
    return error.sqlstate();
  }
  return "no error";
}

}  // namespace

TEST(CostPacing, PageCostUsesTheVacuumWeights) {
  EXPECT_DOUBLE_EQ(page_cost(PageCounts{100, 10, 5}, PageWeights{1, 2, 20}), 100 + 20 + 100);
  EXPECT_DOUBLE_EQ(page_cost(PageCounts{100, 10, 5}, PageWeights{0, 10, 0}), 100);
  EXPECT_DOUBLE_EQ(page_cost(PageCounts{}, PageWeights{}), 0);
}

TEST(CostPacing, NegativeOrNonFiniteCountsCostNothing) {
  double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_DOUBLE_EQ(page_cost(PageCounts{-5, nan, 1}, PageWeights{1, 2, 20}), 20);
}

TEST(CostPacing, BadWeightsAreRefused) {
  EXPECT_EQ(sqlstate_of([] { page_cost(PageCounts{1, 1, 1}, PageWeights{-1, 2, 20}); }), "22023");
  EXPECT_EQ(sqlstate_of([] {
              page_cost(PageCounts{1, 1, 1}, PageWeights{1, std::nan(""), 20});
            }),
            "22023");
}

TEST(CostPacing, NoNapBelowTheLimit) {
  CostBalance balance;
  CostSettings settings{200, 2};
  EXPECT_EQ(charge(balance, 150, settings), 0);
  EXPECT_DOUBLE_EQ(balance.balance, 150);
  EXPECT_EQ(balance.naps, 0);
}

TEST(CostPacing, NapIsProportionalToTheBalanceOnceTheLimitIsReached) {
  CostBalance balance;
  CostSettings settings{200, 2};
  EXPECT_EQ(charge(balance, 150, settings), 0);
  // 150 + 250 = 400 units = twice the limit: twice the delay, and the balance starts over.
  EXPECT_DOUBLE_EQ(charge(balance, 250, settings), 4);
  EXPECT_DOUBLE_EQ(balance.balance, 0);
  EXPECT_EQ(balance.naps, 1);
  EXPECT_DOUBLE_EQ(balance.napped_ms, 4);
  // A batch far above the limit naps for all of it (VACUUM's cap of 4 x delay would let a
  // worker charged once per batch run unpaced).
  EXPECT_DOUBLE_EQ(charge(balance, 200000, settings), 2000);
  EXPECT_EQ(balance.naps, 2);
}

TEST(CostPacing, TheLongRunRestDoesNotDependOnTheBatchSize) {
  CostSettings settings{1000, 5};
  // 1,000,000 cost units in all: 1,000 limits, 5 s of naps, however it is cut into batches.
  EXPECT_NEAR(total_nap(100, 10000, settings), 5000, 1e-6);
  EXPECT_NEAR(total_nap(2500, 400, settings), 5000, 1e-6);
  EXPECT_NEAR(total_nap(1000000, 1, settings), 5000, 1e-6);
  // Batches that never reach the limit on their own still nap once they add up to it.
  CostBalance balance;
  int naps_seen = 0;
  for (int i = 0; i < 100; ++i) naps_seen += charge(balance, 99, settings) > 0;
  EXPECT_EQ(naps_seen, 9);
}

TEST(CostPacing, DelayZeroTurnsPacingOff) {
  CostBalance balance;
  balance.balance = 500;
  EXPECT_EQ(charge(balance, 1e9, CostSettings{1, 0}), 0);
  EXPECT_DOUBLE_EQ(balance.balance, 0);
  EXPECT_EQ(balance.naps, 0);
}

TEST(CostPacing, SettingsOutsideTheirRangesAreRefused) {
  CostBalance balance;
  EXPECT_EQ(sqlstate_of([&] { charge(balance, 1, CostSettings{0, 2}); }), "22023");
  EXPECT_EQ(sqlstate_of([&] { charge(balance, 1, CostSettings{kCostLimitMax + 1, 2}); }), "22023");
  EXPECT_EQ(sqlstate_of([&] { charge(balance, 1, CostSettings{200, -1}); }), "22023");
  EXPECT_EQ(sqlstate_of([&] {
              charge(balance, 1, CostSettings{200, kCostDelayMaxMs + 1});
            }),
            "22023");
  EXPECT_EQ(sqlstate_of([&] { charge(balance, -1, CostSettings{200, 2}); }), "22023");
  EXPECT_EQ(sqlstate_of([&] {
              charge(balance, std::numeric_limits<double>::infinity(), CostSettings{200, 2});
            }),
            "22023");
  EXPECT_EQ(balance.naps, 0);
}
