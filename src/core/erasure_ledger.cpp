#include "core/erasure_ledger.hpp"

#include "core/error.hpp"
#include "core/hash_chain.hpp"
#include "core/json.hpp"

namespace privacy::core {

namespace {

std::string tables_field(const std::vector<std::string>& tables) {
  std::vector<std::optional<std::string>> fields(tables.begin(), tables.end());
  return canonical_fields(fields);
}

}  // namespace

std::string ledger_entry_hash(std::string_view previous_hash, const LedgerEntry& entry) {
  if (!is_hash_hex(previous_hash)) {
    throw Error(sqlstate::kInvalidParameter,
                "previous ledger hash is not 64 lowercase hex characters",
                "got \"" + std::string(previous_hash.substr(0, 80)) + "\"");
  }
  std::string input(previous_hash);
  input += canonical_fields(
      {std::to_string(entry.seq), entry.kind, entry.tenant_id, entry.target_type, entry.target_id,
       entry.sealed_by, std::to_string(entry.job_id), entry.regulation, tables_field(entry.tables),
       entry.requested_at, entry.erased_at, entry.replay_of});
  return sha256_hex(input);
}

std::string ledger_entry_line(const LedgerEntry& entry, std::string_view previous_hash,
                              std::string_view hash) {
  std::vector<std::string> tables;
  for (const std::string& table : entry.tables) tables.push_back(json_string(table));
  return json_object_of_values({
      {"seq", std::to_string(entry.seq)},
      {"kind", json_string(entry.kind)},
      {"tenant", json_string(entry.tenant_id)},
      {"target_type", json_string(entry.target_type)},
      {"target", json_string(entry.target_id)},
      {"sealed_by",
       entry.sealed_by ? std::optional<std::string>(json_string(*entry.sealed_by)) : std::nullopt},
      {"job", std::to_string(entry.job_id)},
      {"regulation", json_string(entry.regulation)},
      {"tables", json_array_of_values(tables)},
      {"requested_at", json_string(entry.requested_at)},
      {"erased_at", json_string(entry.erased_at)},
      {"replay_of",
       entry.replay_of ? std::optional<std::string>(json_string(*entry.replay_of)) : std::nullopt},
      {"prev", json_string(previous_hash)},
      {"hash", json_string(hash)},
  });
}

std::string ledger_head_text(const LedgerHead& head) {
  return json_object_of_values({
      {"format", json_string("pg_privacy.erasure_ledger/1")},
      {"installation", json_string(head.installation)},
      {"entries", std::to_string(head.entries)},
      {"last_hash", json_string(head.last_hash)},
      {"at", json_string(head.at)},
  });
}

std::string ledger_head_line(const LedgerHead& head,
                             const std::optional<std::string>& signature_base64) {
  return json_object_of_values({
      {"head", ledger_head_text(head)},
      {"signature", signature_base64 ? std::optional<std::string>(json_string(*signature_base64))
                                     : std::nullopt},
  });
}

}  // namespace privacy::core
