// core/encoding.hpp: the one hex and base64 encoder of the extension.
#include "core/encoding.hpp"

#include <gtest/gtest.h>

#include <string>

using privacy::core::base64_decode;
using privacy::core::base64_encode;
using privacy::core::hex_encode;

TEST(Encoding, HexIsLowercaseTwoCharactersAByte) {
  EXPECT_EQ(hex_encode(""), "");
  EXPECT_EQ(hex_encode(std::string("\x00\x0f\xa0\xff", 4)), "000fa0ff");
  const unsigned char digest[] = {0xde, 0xad, 0xbe, 0xef};
  EXPECT_EQ(hex_encode(digest, sizeof(digest)), "deadbeef");
}

TEST(Encoding, Base64MatchesRfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
}

TEST(Encoding, Base64HasNoLineBreaksAndRoundTrips) {
  std::string bytes;
  for (int i = 0; i < 1000; ++i) bytes += static_cast<char>(i * 7);
  std::string text = base64_encode(bytes);
  EXPECT_EQ(text.find('\n'), std::string::npos);
  EXPECT_EQ(base64_decode(text), bytes);
  EXPECT_EQ(base64_decode("Zm9vYg=="), std::string("foob"));
  EXPECT_FALSE(base64_decode("Zm9").has_value());
  EXPECT_FALSE(base64_decode("Zm9!").has_value());
}
