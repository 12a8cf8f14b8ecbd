#include "core/error.hpp"

#include <gtest/gtest.h>

using privacy::core::Error;

TEST(Error, CarriesSqlstateMessageDetailAndHint) {
  Error error("55000", "job 7 is completed", "allowed from completed: nothing", "submit a new request");
  EXPECT_EQ(error.sqlstate(), "55000");
  EXPECT_STREQ(error.what(), "job 7 is completed");
  EXPECT_EQ(error.detail(), "allowed from completed: nothing");
  EXPECT_EQ(error.hint(), "submit a new request");
}

TEST(Error, DetailAndHintDefaultToEmpty) {
  Error error("22023", "bad");
  EXPECT_TRUE(error.detail().empty());
  EXPECT_TRUE(error.hint().empty());
}
