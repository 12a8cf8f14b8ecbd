// The erasure ledger (docs/compliance.md, "Replay after a backup restore"): one entry per
// finished erasure (an erase job finalized, a purge completed), hash-chained like the audit
// trail, kept outside the database so that erasures can be applied again after a backup older
// than them was restored.
//
// The ledger is a text file of JSON lines, one entry per line in seq order, then one head line:
//
//   {"seq": 1, "kind": "erase", "tenant": "acme", "target_type": "subject",
//    "target": "<sealed subject id>", "sealed_by": "<certificate fingerprint>", "job": 42,
//    "regulation": "gdpr", "tables": ["app.orders", "app.users"], "requested_at": "2024-...Z",
//    "erased_at": "2024-...Z", "replay_of": null, "prev": "000...0", "hash": "5f2c..."}
//   ...
//   {"head": {"format": "pg_privacy.erasure_ledger/1", "installation": "<uuid>", "entries": 8,
//             "last_hash": "5f2c...", "at": "2024-...Z"}, "signature": "<base64 CMS>"}
//
//   hash = lowercase hex SHA-256( prev || canonical_fields(seq, kind, tenant, target_type,
//          target, sealed_by, job, regulation, canonical_fields(tables...), requested_at,
//          erased_at, replay_of) )
//
// A subject id is sealed (core/sealed_subject.hpp) under the key of the signing certificate
// sealed_by names; it is in clear only for a tenant purge (target is the tenant) and for an
// erasure finished while no signing key was set (sealed_by null).
//
// with canonical_fields the length-prefixed encoding of core/hash_chain.hpp and prev the hash
// of the previous entry (64 '0' for the first). The head names the installation and the last
// entry; its signature (CMS SignedData of head_text(), by the installation's receipt signing
// key) makes a ledger that was edited, or cut short, detectable at replay. Pure C++:
// test/unit/erasure_ledger_test.cpp.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace privacy::core {

struct LedgerEntry {
  long long seq = 0;
  std::string kind;  // erase or purge
  std::string tenant_id;
  std::string target_type;  // subject or tenant
  std::string target_id;    // the subject id sealed (or in clear, see sealed_by), or the tenant id
  std::optional<std::string> sealed_by;  // the fingerprint of the signing certificate whose key
                                         // sealed target_id; nullopt: target_id is in clear
  long long job_id = 0;
  std::string regulation;
  std::vector<std::string> tables;  // registered tables at the time, schema.table
  std::string requested_at;
  std::string erased_at;
  std::optional<std::string> replay_of;  // the hash of the entry this erasure re-applied
};

// The entry's hash, chained to `previous_hash` (64 lowercase hex characters). Throws
// Error(22023) when previous_hash is not.
std::string ledger_entry_hash(std::string_view previous_hash, const LedgerEntry& entry);

// The entry's line (without its newline), with `previous_hash` and `hash`.
std::string ledger_entry_line(const LedgerEntry& entry, std::string_view previous_hash,
                              std::string_view hash);

struct LedgerHead {
  std::string installation;
  long long entries = 0;
  std::string last_hash;  // 64 '0' when there is no entry
  std::string at;
};

// The head object exactly as it is signed and as it appears in the head line.
std::string ledger_head_text(const LedgerHead& head);

// The head line (without its newline); `signature_base64` nullopt writes "signature": null.
std::string ledger_head_line(const LedgerHead& head,
                             const std::optional<std::string>& signature_base64);

}  // namespace privacy::core
