#include "core/error.hpp"

#include <gtest/gtest.h>

using privacy::core::Error;

TEST(Error, CarriesSqlstateMessageDetailAndHint) {
  Error error("55000", "job 7 is completed", "allowed from completed: nothing",
              "submit a new request");
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

// The throw site is where the Error is constructed, so the server log's LOCATION names the line
// that raised it and not the boundary that re-raised it in PostgreSQL.
Error error_made_here() { return Error("22023", "bad"); }

TEST(Error, RecordsWhereItWasMade) {
  int expected_line = __LINE__ - 3;
  Error error = error_made_here();
  EXPECT_EQ(error.site().line, expected_line);
  EXPECT_NE(std::string(error.site().file).find("error_test.cpp"), std::string::npos);
  EXPECT_NE(std::string(error.site().function).find("error_made_here"), std::string::npos);
}

TEST(Error, KeepsAGivenSite) {
  Error error("XX000", "from PostgreSQL", "", "",
              privacy::core::ThrowSite("heapam.c", 42, "heap_update"));
  EXPECT_STREQ(error.site().file, "heapam.c");
  EXPECT_EQ(error.site().line, 42);
  EXPECT_STREQ(error.site().function, "heap_update");
}
