#include "core/erasure_ledger.hpp"

#include <gtest/gtest.h>

#include "cert_fixtures.hpp"
#include "core/error.hpp"
#include "core/hash_chain.hpp"

using privacy::core::ledger_entry_hash;
using privacy::core::LedgerEntry;

namespace {

const std::string kGenesis(privacy::core::kGenesisHash);

LedgerEntry entry() {
  LedgerEntry e;
  e.seq = 1;
  e.kind = "erase";
  e.tenant_id = "acme";
  e.target_type = "subject";
  e.target_id = "17";
  e.job_id = 42;
  e.regulation = "gdpr";
  e.tables = {"app.orders", "app.users"};
  e.requested_at = "2024-01-31T10:00:00.000000Z";
  e.erased_at = "2024-03-02T09:00:05.000000Z";
  return e;
}

}  // namespace

// The hash is the one docs/compliance.md spells out, computed here with the shell and openssl.
TEST(ErasureLedger, HashIsTheDocumentedEncoding) {
  privacy::test::ScratchDir dir;
  std::string tables = "10:app.orders;9:app.users;";
  std::string input = kGenesis + "1:1;5:erase;4:acme;7:subject;2:17;~;2:42;4:gdpr;" +
                      std::to_string(tables.size()) + ":" + tables +
                      ";27:2024-01-31T10:00:00.000000Z;27:2024-03-02T09:00:05.000000Z;~;";
  dir.write("input", input);
  ASSERT_EQ(privacy::test::run("openssl dgst -sha256 -r " + dir.file("input") + " | cut -c1-64 > " +
                               dir.file("hash")),
            0);
  EXPECT_EQ(ledger_entry_hash(kGenesis, entry()) + "\n", dir.read("hash"));
}

TEST(ErasureLedger, EveryFieldAndTheLinkCount) {
  std::string original = ledger_entry_hash(kGenesis, entry());
  std::vector<LedgerEntry> changed(11, entry());
  changed[0].seq = 2;
  changed[1].kind = "purge";
  changed[2].tenant_id = "acme2";
  changed[3].target_type = "tenant";
  changed[4].target_id = "18";
  changed[5].job_id = 43;
  changed[6].regulation = "ccpa";
  changed[7].tables = {"app.orders"};
  changed[8].erased_at = "2024-03-02T09:00:05.000001Z";
  changed[9].replay_of = std::string(64, 'a');
  changed[10].sealed_by = std::string(64, 'b');
  for (const LedgerEntry& e : changed) EXPECT_NE(ledger_entry_hash(kGenesis, e), original);
  // Table names cannot be shifted from one to the next without changing the hash.
  LedgerEntry shifted = entry();
  shifted.tables = {"app.ordersapp.users"};
  EXPECT_NE(ledger_entry_hash(kGenesis, shifted), original);
  EXPECT_NE(ledger_entry_hash(std::string(64, '1'), entry()), original);
  EXPECT_THROW(ledger_entry_hash("00", entry()), privacy::core::Error);
}

TEST(ErasureLedger, LinesAreJson) {
  std::string hash = ledger_entry_hash(kGenesis, entry());
  EXPECT_EQ(
      privacy::core::ledger_entry_line(entry(), kGenesis, hash),
      "{\"seq\": 1, \"kind\": \"erase\", \"tenant\": \"acme\", \"target_type\": \"subject\", \"target\": \"17\", "
      "\"sealed_by\": null, \"job\": 42, \"regulation\": \"gdpr\", \"tables\": [\"app.orders\", \"app.users\"], "
      "\"requested_at\": \"2024-01-31T10:00:00.000000Z\", \"erased_at\": \"2024-03-02T09:00:05.000000Z\", "
      "\"replay_of\": null, \"prev\": \"" +
          kGenesis + "\", \"hash\": \"" + hash + "\"}");
  privacy::core::LedgerHead head{"6f1c0d2e-0000-4000-8000-000000000001", 1, hash,
                                 "2024-03-03T00:00:00.000000Z"};
  std::string text = privacy::core::ledger_head_text(head);
  EXPECT_EQ(
      text,
      "{\"format\": \"pg_privacy.erasure_ledger/1\", \"installation\": \"6f1c0d2e-0000-4000-8000-000000000001\", "
      "\"entries\": 1, \"last_hash\": \"" +
          hash + "\", \"at\": \"2024-03-03T00:00:00.000000Z\"}");
  EXPECT_EQ(privacy::core::ledger_head_line(head, std::string("TUlJ")),
            "{\"head\": " + text + ", \"signature\": \"TUlJ\"}");
  EXPECT_EQ(privacy::core::ledger_head_line(head, std::nullopt),
            "{\"head\": " + text + ", \"signature\": null}");
}
