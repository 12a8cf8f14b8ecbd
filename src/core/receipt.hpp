// The receipt of a finished request (docs/compliance.md, "Receipts"): one JSON document that a
// DPO hands to a regulator as evidence that the request was answered, when, and how, signed as
// CMS SignedData (core/cms_signer.hpp).
//
// The document (format "pg_privacy.receipt/1") is one line of JSON with its keys in a fixed
// order, followed by a newline:
//
//   format, installation, job, kind, tenant, target_type, subject (null for a tenant purge, else
//   {"sha256", "salt"}), regulation, status, requested_at, decided_at, due_at, completed_at,
//   finalized_at, answered_on_time, deadline_extensions, items {"processed", "failed"}, tables
//   [{"table", "rows"}], export (null, or {"sha256", "size_bytes"}), erasure_ledger (null, or
//   {"seq", "hash"}), audit {"chain", "rows" [{"id", "hash"}], "head" {"id", "hash"}}, issued_at
//
// The subject is never written as such: subject.sha256 is the SHA-256 (hex) of subject.salt (32
// random hex characters) followed by the subject id, so someone who knows the id can confirm the
// receipt is about it (printf %s "$salt$id" | openssl dgst -sha256), and two receipts about one
// subject cannot be linked. Times are UTC, "2024-01-02T03:04:05.000000Z", as in the audit trail.
// Pure C++: test/unit/receipt_test.cpp.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace privacy::core {

// One audit row, as the receipt names it.
struct AuditRowRef {
  long long id = 0;
  std::string hash;
};

struct TableRows {
  std::string table;  // schema.table
  long long rows = 0;
};

struct ReceiptFacts {
  std::string installation;  // privacy.installation's id
  long long job_id = 0;
  std::string kind;  // export, erase, purge
  std::string tenant_id;
  std::string target_type;  // subject, tenant
  std::optional<std::string> subject_sha256;
  std::optional<std::string> subject_salt;
  std::string regulation;
  std::string status;
  std::string requested_at;
  std::optional<std::string> decided_at;
  std::string due_at;
  std::optional<std::string> completed_at;
  std::optional<std::string> finalized_at;
  bool answered_on_time = false;
  int deadline_extensions = 0;
  long long processed_items = 0;
  long long failed_items = 0;
  std::vector<TableRows> tables;
  std::optional<std::string> export_sha256;
  std::optional<long long> export_size_bytes;
  std::optional<long long> ledger_seq;
  std::optional<std::string> ledger_hash;
  std::string audit_chain;
  std::vector<AuditRowRef> audit_rows;  // every row of the job, in id order
  AuditRowRef chain_head;               // the chain's last row when the receipt was made
  std::string issued_at;
};

// The receipt document described above.
std::string receipt_json(const ReceiptFacts& facts);

// SHA-256 (hex) of `salt_hex` followed by `subject_id`: the receipt's subject.sha256.
std::string subject_digest(const std::string& salt_hex, const std::string& subject_id);

}  // namespace privacy::core
