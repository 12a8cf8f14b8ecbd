// The audit trail hash chain (docs/audit.md), plus the hashing primitives it needs.
//
// Each audit row's hash is
//
//     hash = lowercase hex of SHA-256( previous_hash_hex || canonical_encoding(row) )
//
// where previous_hash_hex is the previous row's hash in the same chain as its 64 lowercase hex
// characters (kGenesisHash, 64 '0', for the first row of a chain) and || is concatenation.
//
// CANONICAL ENCODING (an auditor re-implements this outside the database, so it is exact):
//
//   The 13 fields below, in exactly this order, each encoded and concatenated with no separator:
//     1 id  2 chain  3 at  4 session_user  5 current_user  6 client_addr  7 application_name
//     8 action  9 tenant_id  10 job_id  11 target  12 outcome  13 detail
//   A non-NULL field is   <N>:<bytes>;   where <bytes> is the field's text and <N> is its length
//   in bytes (not characters) written in decimal ASCII without leading zeros or sign.
//   A NULL field is       ~;
//   Numbers (id, job_id) are first written as their decimal text ("42", "-7"), then encoded
//   like any other text: id 42 becomes "2:42;".
//   So NULL ("~;") differs from the empty string ("0:;"), and a field's bytes may contain ':',
//   ';' or '~' without ambiguity because the length says where it ends.
//
//   Example: id 1, chain "platform", at "2024-01-02T03:04:05.000000Z", action "approved",
//   job_id 7, every other field NULL, encodes as
//     1:1;8:platform;27:2024-01-02T03:04:05.000000Z;~;~;~;~;8:approved;~;1:7;~;~;~;
//
//   A shell re-implementation, one field at a time (LC_ALL=C so wc counts bytes):
//     enc() { printf '%d:%s;' "$(printf %s "$1" | LC_ALL=C wc -c)" "$1"; }   # non-NULL
//     null() { printf '~;'; }                                                 # NULL
//     { printf %s "$prev"; enc 1; enc platform; ...; } | openssl dgst -sha256
//
// The text of each field is what the SQL side passes in; the hash is only reproducible if that
// text does not depend on session settings. The SQL side must therefore pass:
//   at      in one fixed form, independent of DateStyle and TimeZone, e.g.
//           to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
//   detail  jsonb's text output (jsonb already normalizes key order and spacing)
//   client_addr  one fixed form of the inet, e.g. host(client_addr)
// All text is in the database encoding (UTF-8 expected); no normalization is done here.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace privacy::core {

// The "previous hash" of the first row of every chain: 64 '0' characters.
inline constexpr std::string_view kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

// SHA-256 of `bytes` as 64 lowercase hex characters.
std::string sha256_hex(std::string_view bytes);

// HMAC-SHA-256 (RFC 2104) of `data` under `key`, as 64 lowercase hex characters. Used by the
// 'hash' anonymization rule: the same value under the same key gives the same pseudonym.
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

// One row of privacy.audit_log as text, in the column order of the canonical encoding.
struct AuditRecord {
  long long id = 0;
  std::string chain;  // the tenant id, or the platform chain's name
  std::string at;     // timestamptz in a fixed format (see above)
  std::optional<std::string> session_user;
  std::optional<std::string> current_user;
  std::optional<std::string> client_addr;
  std::optional<std::string> application_name;
  std::string action;
  std::optional<std::string> tenant_id;
  std::optional<long long> job_id;
  std::optional<std::string> target;
  std::optional<std::string> outcome;
  std::optional<std::string> detail;  // jsonb text output
};

// The canonical encoding described above.
std::string canonical_encoding(const AuditRecord& record);

// The same encoding of any list of fields: each "<N>:<bytes>;", or "~;" for nullopt. The erasure
// ledger hashes its entries with it (core/erasure_ledger.hpp).
std::string canonical_fields(const std::vector<std::optional<std::string>>& fields);

// sha256_hex(previous_hash_hex + canonical_encoding(record)).
// Throws Error(22023) unless previous_hash_hex is 64 lowercase hex characters: anything else
// (raw bytes, upper case) would silently produce a chain no auditor could reproduce.
std::string chain_hash(std::string_view previous_hash_hex, const AuditRecord& record);

// True when `text` is 64 lowercase hex characters, the form of every hash in the chain.
bool is_hash_hex(std::string_view text);

}  // namespace privacy::core
