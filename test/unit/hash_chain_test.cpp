#include "core/hash_chain.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "core/error.hpp"

using namespace privacy::core;

namespace {

// The row of the known-answer test; every field set, client_addr NULL, application_name empty,
// and a multi-byte character in detail so the length is counted in bytes.
AuditRecord full_record() {
  AuditRecord r;
  r.id = 1;
  r.chain = "acme";
  r.at = "2024-01-02T03:04:05.123456Z";
  r.session_user = "alice";
  r.current_user = "privacy_admin";
  r.client_addr = std::nullopt;
  r.application_name = "";
  r.action = "approved";
  r.tenant_id = "acme";
  r.job_id = 7;
  r.target = "subject:42";
  r.outcome = "ok";
  r.detail = "{\"note\": \"h\xc3\xa9llo\"}";  // {"note": "héllo"}, 18 bytes in UTF-8
  return r;
}

}  // namespace

TEST(Sha256, KnownAnswers) {
  // FIPS 180-2 examples.
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, HashesEmbeddedNulBytes) {
  EXPECT_NE(sha256_hex(std::string_view("a\0b", 3)), sha256_hex("a"));
}

TEST(HmacSha256, Rfc4231TestCase2) {
  EXPECT_EQ(hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HmacSha256, KeyMatters) {
  EXPECT_NE(hmac_sha256_hex("k1", "alice@example.com"), hmac_sha256_hex("k2", "alice@example.com"));
  EXPECT_EQ(hmac_sha256_hex("k1", "alice@example.com"), hmac_sha256_hex("k1", "alice@example.com"));
}

TEST(HashChain, GenesisIs64Zeros) {
  EXPECT_EQ(kGenesisHash, std::string(64, '0'));
  EXPECT_TRUE(is_hash_hex(kGenesisHash));
}

TEST(HashChain, IsHashHex) {
  EXPECT_TRUE(is_hash_hex(sha256_hex("x")));
  EXPECT_FALSE(is_hash_hex(std::string(63, '0')));
  EXPECT_FALSE(is_hash_hex(std::string(65, '0')));
  EXPECT_FALSE(is_hash_hex(std::string(64, 'A')));  // upper case is not the canonical form
  EXPECT_FALSE(is_hash_hex(std::string(64, 'g')));
}

TEST(HashChain, CanonicalEncodingOfTheHeaderExample) {
  AuditRecord r;
  r.id = 1;
  r.chain = "platform";
  r.at = "2024-01-02T03:04:05.000000Z";
  r.action = "approved";
  r.job_id = 7;
  EXPECT_EQ(canonical_encoding(r),
            "1:1;8:platform;27:2024-01-02T03:04:05.000000Z;~;~;~;~;8:approved;~;1:7;~;~;~;");
}

TEST(HashChain, CanonicalEncodingOfAFullRecord) {
  EXPECT_EQ(canonical_encoding(full_record()),
            "1:1;4:acme;27:2024-01-02T03:04:05.123456Z;5:alice;13:privacy_admin;~;0:;"
            "8:approved;4:acme;1:7;10:subject:42;2:ok;18:{\"note\": \"h\xc3\xa9llo\"};");
}

TEST(HashChain, NegativeAndLargeNumbersAreDecimal) {
  AuditRecord r;
  r.id = 9223372036854775807LL;
  r.job_id = -3;
  std::string encoding = canonical_encoding(r);
  EXPECT_EQ(encoding.rfind("19:9223372036854775807;", 0), 0u);
  EXPECT_NE(encoding.find(";2:-3;"), std::string::npos);
}

// Known answers computed once outside this code with the shell re-implementation given in
// hash_chain.hpp (bash, OpenSSL 3.0):
//   enc() { printf '%d:%s;' "$(printf %s "$1" | LC_ALL=C wc -c)" "$1"; }; null() { printf '~;'; }
//   { printf %s 000...000; enc 1; enc acme; enc 2024-01-02T03:04:05.123456Z; enc alice;
//     enc privacy_admin; null; enc ""; enc approved; enc acme; enc 7; enc subject:42; enc ok;
//     enc '{"note": "héllo"}'; } | openssl dgst -sha256
// and for the second row, prefixed by the first row's hash:
//   { printf %s 477fa7...3303; enc 2; enc acme; enc 2024-01-02T03:04:06.000000Z; enc alice;
//     enc alice; null; null; enc started; enc acme; enc 7; null; null; null; } | openssl dgst
//     -sha256
TEST(HashChain, KnownAnswer) {
  std::string first = chain_hash(kGenesisHash, full_record());
  EXPECT_EQ(first, "477fa735b3d61821cd9287802270cbe60199b113f306a72cba2734ebee5e3303");

  AuditRecord second;
  second.id = 2;
  second.chain = "acme";
  second.at = "2024-01-02T03:04:06.000000Z";
  second.session_user = "alice";
  second.current_user = "alice";
  second.action = "started";
  second.tenant_id = "acme";
  second.job_id = 7;
  EXPECT_EQ(chain_hash(first, second),
            "242569975cbcda68fcf3256aa6d1a976a2df8b65c1e0b38df76390d642813f2e");
}

TEST(HashChain, KnownAnswerOfTheHeaderExample) {
  AuditRecord r;
  r.id = 1;
  r.chain = "platform";
  r.at = "2024-01-02T03:04:05.000000Z";
  r.action = "approved";
  r.job_id = 7;
  // printf '%s' "$(printf '0%.0s' {1..64})1:1;8:platform;...;~;~;~;" | openssl dgst -sha256
  EXPECT_EQ(chain_hash(kGenesisHash, r),
            "77f8e651f3e76f8d08df18d6d54b26a48c700c350c44eb6ecac78996a6b7e4d2");
}

TEST(HashChain, NullDiffersFromEmpty) {
  AuditRecord with_null = full_record();
  AuditRecord with_empty = full_record();
  with_null.outcome = std::nullopt;
  with_empty.outcome = "";
  EXPECT_NE(canonical_encoding(with_null), canonical_encoding(with_empty));
  EXPECT_NE(chain_hash(kGenesisHash, with_null), chain_hash(kGenesisHash, with_empty));
}

TEST(HashChain, EveryFieldChangesTheHash) {
  const std::string base = chain_hash(kGenesisHash, full_record());
  std::vector<std::function<void(AuditRecord&)>> edits = {
      [](AuditRecord& r) { r.id = 2; },
      [](AuditRecord& r) { r.chain = "acme2"; },
      [](AuditRecord& r) { r.at = "2024-01-02T03:04:05.123457Z"; },
      [](AuditRecord& r) { r.session_user = "mallory"; },
      [](AuditRecord& r) { r.session_user = std::nullopt; },
      [](AuditRecord& r) { r.current_user = "privacy_admin2"; },
      [](AuditRecord& r) { r.client_addr = "10.0.0.1"; },
      [](AuditRecord& r) { r.application_name = std::nullopt; },
      [](AuditRecord& r) { r.application_name = "psql"; },
      [](AuditRecord& r) { r.action = "rejected"; },
      [](AuditRecord& r) { r.tenant_id = std::nullopt; },
      [](AuditRecord& r) { r.job_id = 8; },
      [](AuditRecord& r) { r.job_id = std::nullopt; },
      [](AuditRecord& r) { r.target = "subject:43"; },
      [](AuditRecord& r) { r.outcome = "failed"; },
      [](AuditRecord& r) { r.detail = "{\"note\": \"hello\"}"; },
      [](AuditRecord& r) { r.detail = std::nullopt; },
  };
  for (size_t i = 0; i < edits.size(); ++i) {
    AuditRecord edited = full_record();
    edits[i](edited);
    EXPECT_NE(chain_hash(kGenesisHash, edited), base) << "edit #" << i;
  }
}

TEST(HashChain, PreviousHashChangesTheHash) {
  EXPECT_NE(chain_hash(kGenesisHash, full_record()),
            chain_hash(sha256_hex("another row"), full_record()));
}

TEST(HashChain, FieldOrderMatters) {
  // The same values in swapped fields must not collide.
  AuditRecord a = full_record();
  AuditRecord b = full_record();
  a.session_user = "alice";
  a.current_user = "bob";
  b.session_user = "bob";
  b.current_user = "alice";
  EXPECT_NE(chain_hash(kGenesisHash, a), chain_hash(kGenesisHash, b));

  AuditRecord c = full_record();
  AuditRecord d = full_record();
  c.target = "x";
  c.outcome = std::nullopt;
  d.target = std::nullopt;
  d.outcome = "x";
  EXPECT_NE(chain_hash(kGenesisHash, c), chain_hash(kGenesisHash, d));
}

TEST(HashChain, SeparatorsInsideValuesAreUnambiguous) {
  // Without length prefixes these two would concatenate to the same bytes.
  AuditRecord a = full_record();
  AuditRecord b = full_record();
  a.target = "x;~;";
  a.outcome = std::nullopt;
  b.target = "x";
  b.outcome = ";~;";
  EXPECT_NE(canonical_encoding(a), canonical_encoding(b));
}

TEST(HashChain, RefusesAMalformedPreviousHash) {
  for (std::string bad :
       {std::string(), std::string(63, 'a'), std::string(64, 'A'), std::string(32, '\x01')}) {
    try {
      chain_hash(bad, full_record());
      ADD_FAILURE() << "accepted a previous hash of " << bad.size() << " bytes";
    } catch (const Error& error) {
      EXPECT_EQ(error.sqlstate(), "22023");
    }
  }
}
