#include "core/backoff.hpp"

#include <gtest/gtest.h>

#include <climits>

using privacy::core::retry_delay_seconds;

TEST(Backoff, NoFailureNoWait) {
  EXPECT_EQ(retry_delay_seconds(0), 0);
  EXPECT_EQ(retry_delay_seconds(-3), 0);
}

TEST(Backoff, DoublesFromTheBase) {
  EXPECT_EQ(retry_delay_seconds(1), 30);
  EXPECT_EQ(retry_delay_seconds(2), 60);
  EXPECT_EQ(retry_delay_seconds(3), 120);
  EXPECT_EQ(retry_delay_seconds(7), 1920);
}

TEST(Backoff, CappedAtTheCap) {
  EXPECT_EQ(retry_delay_seconds(8), 3600);  // 3840 would exceed the cap
  EXPECT_EQ(retry_delay_seconds(100), 3600);
  EXPECT_EQ(retry_delay_seconds(INT_MAX), 3600);
}

TEST(Backoff, CustomBaseAndCap) {
  EXPECT_EQ(retry_delay_seconds(1, 5, 100), 5);
  EXPECT_EQ(retry_delay_seconds(4, 5, 100), 40);
  EXPECT_EQ(retry_delay_seconds(6, 5, 100), 100);
  EXPECT_EQ(retry_delay_seconds(3, 0.5, 10), 2);
}
