#include "core/receipt.hpp"

#include "core/hash_chain.hpp"
#include "core/json.hpp"

namespace privacy::core {

namespace {

std::string number(long long value) { return std::to_string(value); }

std::optional<std::string> optional_string(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  return json_string(*text);
}

std::string audit_row(const AuditRowRef& row) {
  return json_object_of_values({{"id", number(row.id)}, {"hash", json_string(row.hash)}});
}

std::optional<std::string> subject_of(const ReceiptFacts& facts) {
  if (!facts.subject_sha256) return std::nullopt;
  return json_object_of_values({{"sha256", json_string(*facts.subject_sha256)},
                                {"salt", optional_string(facts.subject_salt)}});
}

std::string tables_of(const ReceiptFacts& facts) {
  std::vector<std::string> tables;
  for (const TableRows& table : facts.tables) {
    tables.push_back(
        json_object_of_values({{"table", json_string(table.table)}, {"rows", number(table.rows)}}));
  }
  return json_array_of_values(tables);
}

std::optional<std::string> export_of(const ReceiptFacts& facts) {
  if (!facts.export_sha256) return std::nullopt;
  return json_object_of_values(
      {{"sha256", json_string(*facts.export_sha256)},
       {"size_bytes", facts.export_size_bytes
                          ? std::optional<std::string>(number(*facts.export_size_bytes))
                          : std::nullopt}});
}

std::optional<std::string> ledger_of(const ReceiptFacts& facts) {
  if (!facts.ledger_seq) return std::nullopt;
  return json_object_of_values(
      {{"seq", number(*facts.ledger_seq)}, {"hash", optional_string(facts.ledger_hash)}});
}

std::string audit_of(const ReceiptFacts& facts) {
  std::vector<std::string> rows;
  for (const AuditRowRef& row : facts.audit_rows) rows.push_back(audit_row(row));
  return json_object_of_values({{"chain", json_string(facts.audit_chain)},
                                {"rows", json_array_of_values(rows)},
                                {"head", audit_row(facts.chain_head)}});
}

}  // namespace

std::string receipt_json(const ReceiptFacts& facts) {
  return json_object_of_values({
             {"format", json_string("pg_privacy.receipt/1")},
             {"installation", json_string(facts.installation)},
             {"job", number(facts.job_id)},
             {"kind", json_string(facts.kind)},
             {"tenant", json_string(facts.tenant_id)},
             {"target_type", json_string(facts.target_type)},
             {"subject", subject_of(facts)},
             {"regulation", json_string(facts.regulation)},
             {"status", json_string(facts.status)},
             {"requested_at", json_string(facts.requested_at)},
             {"decided_at", optional_string(facts.decided_at)},
             {"due_at", json_string(facts.due_at)},
             {"completed_at", optional_string(facts.completed_at)},
             {"finalized_at", optional_string(facts.finalized_at)},
             {"answered_on_time", facts.answered_on_time ? "true" : "false"},
             {"deadline_extensions", number(facts.deadline_extensions)},
             {"items", json_object_of_values({{"processed", number(facts.processed_items)},
                                              {"failed", number(facts.failed_items)}})},
             {"tables", tables_of(facts)},
             {"export", export_of(facts)},
             {"erasure_ledger", ledger_of(facts)},
             {"audit", audit_of(facts)},
             {"issued_at", json_string(facts.issued_at)},
         }) +
         "\n";
}

std::string subject_digest(const std::string& salt_hex, const std::string& subject_id) {
  return sha256_hex(salt_hex + subject_id);
}

}  // namespace privacy::core
