#include "core/json.hpp"

#include <gtest/gtest.h>

using privacy::core::json_object;
using privacy::core::json_string;

TEST(Json, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(json_string("plain"), "\"plain\"");
  EXPECT_EQ(json_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(json_string("line\nnext\ttab"), "\"line\\nnext\\ttab\"");
  EXPECT_EQ(json_string(std::string("\x01", 1)), "\"\\u0001\"");
}

TEST(Json, KeepsUtf8AsIs) { EXPECT_EQ(json_string("Zoë"), "\"Zoë\""); }

TEST(Json, WritesObjectsWithNulls) {
  EXPECT_EQ(json_object({}), "{}");
  EXPECT_EQ(json_object({{"reason", std::string("gdpr")}, {"note", std::nullopt}}),
            "{\"reason\": \"gdpr\", \"note\": null}");
}

TEST(Json, WritesValuesThatAreJsonAlready) {
  EXPECT_EQ(privacy::core::json_object_of_values(
                {{"job", std::string("42")},
                 {"tenant", json_string("acme")},
                 {"rows", privacy::core::json_array_of_values({"1", "{}"})},
                 {"finalized_at", std::nullopt}}),
            "{\"job\": 42, \"tenant\": \"acme\", \"rows\": [1, {}], \"finalized_at\": null}");
  EXPECT_EQ(privacy::core::json_array_of_values({}), "[]");
}
