#include "core/receipt.hpp"

#include <gtest/gtest.h>

#include "cert_fixtures.hpp"
#include "core/hash_chain.hpp"

using privacy::core::receipt_json;
using privacy::core::ReceiptFacts;

namespace {

ReceiptFacts erase_receipt() {
  ReceiptFacts facts;
  facts.installation = "6f1c0d2e-0000-4000-8000-000000000001";
  facts.job_id = 42;
  facts.kind = "erase";
  facts.tenant_id = "acme";
  facts.target_type = "subject";
  facts.subject_salt = "00112233445566778899aabbccddeeff";
  facts.subject_sha256 = privacy::core::subject_digest(*facts.subject_salt, "17");
  facts.regulation = "gdpr";
  facts.status = "completed";
  facts.requested_at = "2024-01-31T10:00:00.000000Z";
  facts.decided_at = "2024-02-01T09:00:00.000000Z";
  facts.due_at = "2024-02-29T10:00:00.000000Z";
  facts.completed_at = "2024-02-01T09:00:05.000000Z";
  facts.finalized_at = "2024-03-02T09:00:05.000000Z";
  facts.answered_on_time = true;
  facts.processed_items = 3;
  facts.tables = {{"app.orders", 2}, {"app.users", 1}};
  facts.ledger_seq = 7;
  facts.ledger_hash = std::string(64, 'a');
  facts.audit_chain = "acme";
  facts.audit_rows = {{11, std::string(64, 'b')}, {12, std::string(64, 'c')}};
  facts.chain_head = {12, std::string(64, 'c')};
  facts.issued_at = "2024-03-02T09:00:05.100000Z";
  return facts;
}

}  // namespace

TEST(Receipt, IsOneLineOfJsonWithFixedKeys) {
  std::string json = receipt_json(erase_receipt());
  std::string salt = "00112233445566778899aabbccddeeff";
  std::string expected =
      "{\"format\": \"pg_privacy.receipt/1\", \"installation\": \"6f1c0d2e-0000-4000-8000-000000000001\", "
      "\"job\": 42, \"kind\": \"erase\", \"tenant\": \"acme\", \"target_type\": \"subject\", "
      "\"subject\": {\"sha256\": \"" +
      privacy::core::sha256_hex(salt + "17") + "\", \"salt\": \"" + salt +
      "\"}, "
      "\"regulation\": \"gdpr\", \"status\": \"completed\", \"requested_at\": \"2024-01-31T10:00:00.000000Z\", "
      "\"decided_at\": \"2024-02-01T09:00:00.000000Z\", \"due_at\": \"2024-02-29T10:00:00.000000Z\", "
      "\"completed_at\": \"2024-02-01T09:00:05.000000Z\", \"finalized_at\": \"2024-03-02T09:00:05.000000Z\", "
      "\"answered_on_time\": true, \"deadline_extensions\": 0, \"items\": {\"processed\": 3, \"failed\": 0}, "
      "\"tables\": [{\"table\": \"app.orders\", \"rows\": 2}, {\"table\": \"app.users\", \"rows\": 1}], "
      "\"export\": null, \"erasure_ledger\": {\"seq\": 7, \"hash\": \"" +
      std::string(64, 'a') +
      "\"}, "
      "\"audit\": {\"chain\": \"acme\", \"rows\": [{\"id\": 11, \"hash\": \"" +
      std::string(64, 'b') +
      "\"}, "
      "{\"id\": 12, \"hash\": \"" +
      std::string(64, 'c') + "\"}], \"head\": {\"id\": 12, \"hash\": \"" + std::string(64, 'c') +
      "\"}}, \"issued_at\": \"2024-03-02T09:00:05.100000Z\"}\n";
  EXPECT_EQ(json, expected);
}

// A tenant purge names no subject; an export names its file.
TEST(Receipt, TenantPurgeAndExport) {
  ReceiptFacts facts = erase_receipt();
  facts.kind = "purge";
  facts.target_type = "tenant";
  facts.subject_sha256.reset();
  facts.subject_salt.reset();
  facts.finalized_at.reset();
  EXPECT_NE(receipt_json(facts).find("\"subject\": null"), std::string::npos);
  EXPECT_NE(receipt_json(facts).find("\"finalized_at\": null"), std::string::npos);
  facts.kind = "export";
  facts.ledger_seq.reset();
  facts.export_sha256 = std::string(64, 'd');
  facts.export_size_bytes = 31320;
  std::string json = receipt_json(facts);
  EXPECT_NE(json.find("\"export\": {\"sha256\": \"" + std::string(64, 'd') +
                      "\", \"size_bytes\": 31320}"),
            std::string::npos);
  EXPECT_NE(json.find("\"erasure_ledger\": null"), std::string::npos);
}

// What docs/compliance.md tells a DPO to run to match a receipt with a subject id.
TEST(Receipt, SubjectDigestIsWhatTheShellComputes) {
  privacy::test::ScratchDir dir;
  std::string salt = "00112233445566778899aabbccddeeff";
  ASSERT_EQ(privacy::test::run("printf %s '" + salt +
                               "user \"17\"' | openssl dgst -sha256 -r | cut -c1-64 > " +
                               dir.file("digest")),
            0);
  EXPECT_EQ(dir.read("digest"), privacy::core::subject_digest(salt, "user \"17\"") + "\n");
}

TEST(Receipt, EscapesNamesItDoesNotControl) {
  ReceiptFacts facts = erase_receipt();
  facts.tenant_id = "a\"b\nc";
  facts.tables = {{"\"odd\"\"name\".t", 1}};
  std::string json = receipt_json(facts);
  EXPECT_NE(json.find("\"tenant\": \"a\\\"b\\nc\""), std::string::npos);
  EXPECT_NE(json.find("\"table\": \"\\\"odd\\\"\\\"name\\\".t\""), std::string::npos);
  EXPECT_EQ(json.find('\n'), json.size() - 1);  // one line
}
