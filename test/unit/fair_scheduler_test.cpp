#include "core/fair_scheduler.hpp"

#include <gtest/gtest.h>

using namespace privacy::core;

using Ids = std::vector<long long>;

namespace {

// Tenant A with ten jobs queued at t=1..10 (ids 1..10), tenant B with one job at t=20 (id 11).
std::vector<WaitingJob> busy_a_and_quiet_b() {
  std::vector<WaitingJob> waiting;
  for (int i = 1; i <= 10; ++i) waiting.push_back({i, "A", static_cast<double>(i)});
  waiting.push_back({11, "B", 20});
  return waiting;
}

}  // namespace

TEST(FairScheduler, OneJobPerTenantBeforeASecondForAnyone) {
  EXPECT_EQ(pick_jobs_to_start(busy_a_and_quiet_b(), {}, 2), (Ids{1, 11}));
}

TEST(FairScheduler, LeftoverSlotsGoRoundAgain) {
  EXPECT_EQ(pick_jobs_to_start(busy_a_and_quiet_b(), {}, 4), (Ids{1, 11, 2, 3}));
}

TEST(FairScheduler, LongestWaitingTenantGoesFirst) {
  std::vector<WaitingJob> waiting = {{5, "late", 50}, {6, "late", 51}, {7, "early", 10}};
  EXPECT_EQ(pick_jobs_to_start(waiting, {}, 1), (Ids{7}));
  EXPECT_EQ(pick_jobs_to_start(waiting, {}, 3), (Ids{7, 5, 6}));
}

TEST(FairScheduler, OldestJobFirstWithinATenantWhateverTheInputOrder) {
  std::vector<WaitingJob> waiting = {{3, "A", 30}, {1, "A", 10}, {2, "A", 20}};
  EXPECT_EQ(pick_jobs_to_start(waiting, {}, 3), (Ids{1, 2, 3}));
}

TEST(FairScheduler, TiesAreBrokenByJobId) {
  std::vector<WaitingJob> waiting = {{9, "A", 5}, {4, "A", 5}, {7, "B", 5}};
  // Tenant A's oldest is job 4 (tie at t=5, smaller id), B's is 7: A first, then B, then A.
  EXPECT_EQ(pick_jobs_to_start(waiting, {}, 3), (Ids{4, 7, 9}));
  std::vector<WaitingJob> tenants_tied = {{2, "B", 1}, {1, "A", 1}};
  EXPECT_EQ(pick_jobs_to_start(tenants_tied, {}, 1), (Ids{1}));
}

TEST(FairScheduler, TenantAtItsLimitIsSkipped) {
  std::map<std::string, TenantLoad> load = {{"A", {2, 2}}};
  EXPECT_EQ(pick_jobs_to_start(busy_a_and_quiet_b(), load, 5), (Ids{11}));
}

TEST(FairScheduler, TenantStopsWhenItReachesItsLimitDuringThePick) {
  std::map<std::string, TenantLoad> load = {{"A", {1, 3}}};
  EXPECT_EQ(pick_jobs_to_start(busy_a_and_quiet_b(), load, 10), (Ids{1, 11, 2}));
}

TEST(FairScheduler, ZeroOrNegativeLimitMeansNoLimit) {
  std::map<std::string, TenantLoad> load = {{"A", {7, 0}}, {"B", {3, -1}}};
  EXPECT_EQ(pick_jobs_to_start(busy_a_and_quiet_b(), load, 3), (Ids{1, 11, 2}));
}

TEST(FairScheduler, TenantOverItsLimitIsSkipped) {
  // A limit lowered below what already runs: nothing more starts, nothing breaks.
  std::map<std::string, TenantLoad> load = {{"A", {5, 2}}};
  EXPECT_EQ(pick_jobs_to_start(busy_a_and_quiet_b(), load, 3), (Ids{11}));
}

TEST(FairScheduler, ZeroOrNegativeSlotsStartNothing) {
  EXPECT_TRUE(pick_jobs_to_start(busy_a_and_quiet_b(), {}, 0).empty());
  EXPECT_TRUE(pick_jobs_to_start(busy_a_and_quiet_b(), {}, -1).empty());
}

TEST(FairScheduler, NothingWaitingStartsNothing) {
  EXPECT_TRUE(pick_jobs_to_start({}, {}, 5).empty());
}

TEST(FairScheduler, MoreSlotsThanJobsStartsThemAll) {
  EXPECT_EQ(pick_jobs_to_start(busy_a_and_quiet_b(), {}, 100).size(), 11u);
}

TEST(FairScheduler, EveryoneAtTheLimitStartsNothing) {
  std::map<std::string, TenantLoad> load = {{"A", {1, 1}}, {"B", {4, 4}}};
  EXPECT_TRUE(pick_jobs_to_start(busy_a_and_quiet_b(), load, 5).empty());
}

TEST(FairScheduler, LoadOfTenantsWithoutWaitingJobsIsIgnored) {
  std::map<std::string, TenantLoad> load = {{"C", {100, 1}}};
  EXPECT_EQ(pick_jobs_to_start(busy_a_and_quiet_b(), load, 2), (Ids{1, 11}));
}

TEST(FairScheduler, EmptyTenantIdIsATenantLikeAnyOther) {
  // Single-tenant installations may queue everything under "" (the platform).
  std::vector<WaitingJob> waiting = {{1, "", 1}, {2, "", 2}, {3, "X", 3}};
  EXPECT_EQ(pick_jobs_to_start(waiting, {}, 2), (Ids{1, 3}));
}
