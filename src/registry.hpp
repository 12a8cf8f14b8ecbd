// Registered tables (DESIGN section 3): what the batch operations need to know about one table,
// read from privacy.registered_tables, privacy.column_rules and the catalog. One place reads
// them, so registration and the batches agree on names, types and quoting.
#pragma once

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
  std::vector<std::pair<Column, std::string>> rules;  // anonymize rules other than 'keep'
};

// The registration of `relid`, or nullopt when it is not registered. Needs SPI (opens its own).
std::optional<TableInfo> load_table(Oid relid);

// A live (not dropped, user) column of a relation, or nullopt.
std::optional<Column> load_column(Oid relid, const std::string& name);

// True when the column can hold a 64-character pseudonym (text, varchar/char unlimited or >= 64).
bool holds_pseudonym(const Column& column);

// True for the types a subject or tenant column may have (text-like, integers, uuid).
bool is_identifier_type(const Column& column);

// The SQL constant 'redact' writes into a column of this type ("" when the type has none).
std::string redact_constant(const Column& column);

// The SQL expression that anonymizes `column` under `rule` ('null' or 'redact'). Pseudonyms of
// the 'hash' rule are computed by the batch in C++ (batch.cpp, PSEUDONYMS).
std::string anonymize_expression(const Column& column, const std::string& rule);

}  // namespace privacy::registry
