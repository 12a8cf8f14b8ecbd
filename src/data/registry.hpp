// Registered tables (docs/architecture.md, "Data model"): what the batch operations need to know
// about one table, read from privacy.registered_tables, privacy.column_rules and the catalog. One
// place reads them, so registration and the batches agree on names, types and quoting.
#pragma once

#include "core/error.hpp"
#include "pg/pg_headers.hpp"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace privacy::registry {

// One column of a registered table.
struct Column {
  std::string name;           // as stored (unquoted)
  std::string quoted;         // quote_ident(name)
  std::string type_sql;       // format_type with typmod, e.g. character varying(80)
  std::string base_type_sql;  // base type without typmod (domains resolved), for casting parameters
  Oid base_type = InvalidOid;
  Oid type = InvalidOid;  // the column's own type (a domain where base_type is its base)
  int typmod = -1;
  bool not_null = false;
};

struct TableInfo {
  Oid relid = InvalidOid;
  std::string qualified;  // "schema"."table", quoted
  std::string display;    // regclass text, for messages
  Column subject;
  std::optional<Column> tenant;
  std::vector<Column> keys;  // in key order
  std::string on_erase;      // "delete" or "anonymize"
  std::vector<std::pair<Column, std::string>>
      rules;  // anonymize rules other than 'keep', subject aside
  // What anonymization writes into the subject column: its rule, else 'hash' where the column
  // can hold the pseudonym, else 'null' where it is nullable; "" when none of them can apply
  // (an erase of such a table is refused at submission: docs/soft-delete.md).
  std::string subject_rule;
  std::vector<std::string>
      exported_columns;  // live columns in table order, privacy_erased_by aside
};

// The registration of `relid`, or nullopt when it is not registered. Needs SPI (opens its own).
std::optional<TableInfo> load_table(Oid relid);

// The same, from this backend's cache of descriptions (data/description_cache.cpp), read again
// only after an invalidation that could change it: a relcache invalidation of the table (its
// DDL, and every write of its registration: the triggers of privacy.registered_tables and
// privacy.column_rules send one), a renamed schema, or a change of a type its columns have.
// For the batches of a job, which would otherwise read it in every batch. Needs SPI.
std::optional<TableInfo> described_table(Oid relid);

// A live (not dropped, user) column of a relation, or nullopt.
std::optional<Column> load_column(Oid relid, const std::string& name);

// True when the column can hold a 64-character pseudonym (text, varchar/char unlimited or >= 64).
bool holds_pseudonym(const Column& column);

// The rules a subject column may take: 'hash' where it can hold the pseudonym, 'null' where it
// is nullable, 'tombstone' always (the tenant's tombstone subject id, cast to the column's type).
// Returns the reason a rule cannot apply, or "" when it can.
std::string subject_rule_refusal(const Column& subject, const std::string& rule);

// Why an erase of `subject_id` of `tenant_id` cannot anonymize `table` (an 'anonymize' table
// whose subject column takes no rule, or 'tombstone' without a usable tombstone for the tenant),
// as a 55000 error naming the table and telling how to fix it; nullopt when it can, and when the
// subject id is no value of the column's type (no row of the table can be the subject's). Needs
// SPI.
std::optional<core::Error> anonymization_refusal(const TableInfo& table,
                                                 const std::string& tenant_id,
                                                 const std::string& subject_id);

// The tenant's tombstone subject id (privacy.configure_tenant(..., tombstone_subject => ...)).
std::optional<std::string> tombstone_subject(const std::string& tenant_id);

// True for the types a subject or tenant column may have (text-like, integers, uuid).
bool is_identifier_type(const Column& column);

// The SQL constant 'redact' writes into a column of this type ("" when the type has none).
std::string redact_constant(const Column& column);

// The SQL expression that anonymizes `column` under `rule` ('null' or 'redact'). Pseudonyms of
// the 'hash' rule are computed by the batch in C++ (data/batch.cpp, PSEUDONYMS).
std::string anonymize_expression(const Column& column, const std::string& rule);

}  // namespace privacy::registry
