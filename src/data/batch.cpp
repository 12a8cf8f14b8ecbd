// The batch operations (data/batch.hpp): mark, finalize, purge, restore: the SQL of each, built in
// one place, and its execution.
//
// IDENTITY. Every statement that reads or writes an application table runs as that table's
// owner (pg::TableOwnerScope, docs/security.md): a trigger, an index expression or a domain
// check of the table runs with its owner's rights and never with the worker's. The bookkeeping
// in privacy.* (job_errors) runs as the extension owner, outside that scope.
//
// All batch SQL is built in one place (the "statement builders" below) from a relation's
// registration: the filter that selects the target's rows, the keyset condition, the action.
// Every statement is schema-qualified: functions as pg_catalog.fn, operators as
// OPERATOR(pg_catalog.op), casts to built-in types as pg_catalog.type; column types come from
// format_type under the pinned search_path, which qualifies every type outside pg_catalog.
// Every batch statement has the same eight parameters, so one executor serves all of them:
//   $1 job id (int8)   $2 tenant id (text)   $3 subject id (text)   $4 limit (int8)
//   $5 after_key (text, a key object)        $6 row_key (text, a key object: the one row of the
//                                               row-by-row retry, or the last row a rewrite covers)
//   $7 the subject column's new value in an anonymizing finalization (the subject's pseudonym,
//      or the tenant's tombstone subject id); in a purge, the subject's pseudonym, which rows an
//      earlier erase anonymized carry instead of the subject id
//   $8 pseudonyms of picked rows (jsonb: key object text -> [one per 'hash' column])
// Statements go through the SPI layer's plan cache (pg/spi.hpp: prepared once per backend, keyed
// by their text), so a job prepares each statement once; a changed registration or column rule
// changes the text and so gets a new plan.
//
// KEY OBJECTS. A position (the cursor a batch returns) and a row key (job_errors.row_key, and
// the keys privacy.restore accepts) are the same thing: a JSON object from key column name to the
// value as text, e.g. {"id": "42"} or {"tenant": "acme", "order_no": "7"}.
//
// PSEUDONYMS. The table owner may neither read the installation secret nor call a function that
// hashes with it, so the anonymizing finalization gets its pseudonyms as parameters, computed
// in C++ (data/pseudonym.hpp): the subject column's is the same for every row of the job ($7). When
// other columns have the 'hash' rule, a batch first picks its rows with those columns' values
// (FOR UPDATE, so they cannot change meanwhile), hashes them, and rewrites the same key range,
// each row taking its pseudonyms from $8 by its key values (lookup_key: no STABLE function with a
// column reference, which Citus refuses in a distributed UPDATE). A lookup, not a join with a list
// of keys: like every batch statement the rewrite finds its rows by index conditions alone, so a
// stale estimate cannot make it scan the job's rows once per picked key.
//
// FAILURES. A batch runs as one statement (or pick and rewrite) in a subtransaction with
// lock_timeout set to privacy.lock_timeout. If it fails for a reason that concerns a row (see
// is_row_failure), the subtransaction is rolled back and the same batch is redone row by row,
// each row in its own subtransaction; a row that fails again is recorded once in
// privacy.job_errors and counted in `failed`, and the batch goes on past it: the position moves
// beyond its key, so the walk never comes back to it (only privacy.retry_items does, through
// redo_item). Any other failure (a cancel, a legal hold, a missing privilege, ...) ends the
// batch and is thrown to the job loop.
#include "data/batch.hpp"

#include "audit/audit.hpp"
#include "citus/tables.hpp"
#include "core/json.hpp"
#include "pg/guc.hpp"
#include "pg/security_context.hpp"
#include "pg/spi.hpp"
#include "pg/subtransaction.hpp"
#include "data/pseudonym.hpp"
#include "data/registry.hpp"

extern "C" {
#include "utils/jsonb.h"
}

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <string>

namespace privacy::batch {

using core::Error;
using registry::Column;
using registry::TableInfo;
namespace sqlstate = core::sqlstate;

namespace {

// ----- statement builders --------------------------------------------------------------------

// Which statement: the operation, whether a subject is given (purges of a whole tenant have
// none), whether the batch starts after a key, and whether a purge also takes the rows an earlier
// erase anonymized with the subject's pseudonym ($7).
//
// On a Citus table, a finalization (and a restore, which addresses the same rows) names the job's
// tenant besides its mark (`marked.tenant`), and on a table distributed by its subject column the
// subject (`marked.subject`): every row the job marked carries them (the mark filtered on them,
// and Citus lets no row change its distribution column), and with the distribution column in
// every predicate Citus routes each statement to the one shard that holds it (docs/citus.md,
// "Routing").
struct MarkedRows {
  bool tenant = false;
  bool subject = false;
};

struct Shape {
  Operation operation;
  bool has_subject;
  bool has_after_key;
  bool matches_pseudonym = false;
  MarkedRows marked = {};
};

const std::string kEquals = " OPERATOR(pg_catalog.=) ";

// "a"."k1", "a"."k2" (optionally with a suffix per column, e.g. " DESC")
std::string column_list(const std::vector<Column>& columns, const std::string& alias,
                        const std::string& suffix = "") {
  std::string list;
  for (const Column& key : columns)
    list += (list.empty() ? "" : ", ") + alias + "." + key.quoted + suffix;
  return list;
}

std::string key_list(const TableInfo& table, const std::string& alias,
                     const std::string& suffix = "") {
  return column_list(table.keys, alias, suffix);
}

// "k1", "k2" (for messages)
std::string key_names(const TableInfo& table) {
  std::string names;
  for (const Column& key : table.keys) names += (names.empty() ? "" : ", ") + key.quoted;
  return names;
}

// The key object of a row: jsonb_build_object('k1', a.k1::text, ...)
std::string key_object(const TableInfo& table, const std::string& alias) {
  std::string args;
  for (const Column& key : table.keys) {
    args += (args.empty() ? "" : ", ") + pg::quote_literal(key.name) + ", " + alias + "." +
            key.quoted + "::pg_catalog.text";
  }
  return "pg_catalog.jsonb_build_object(" + args + ")";
}

// The values of `columns` in a key object held in `json` (an SQL expression of type jsonb), each
// cast to its column's type.
std::string column_values(const std::vector<Column>& columns, const std::string& json) {
  std::string list;
  for (const Column& key : columns) {
    list += (list.empty() ? "" : ", ") + std::string("(") + json + " OPERATOR(pg_catalog.->>) " +
            pg::quote_literal(key.name) + ")::" + key.base_type_sql;
  }
  return list;
}

std::string key_values(const TableInfo& table, const std::string& json) {
  return column_values(table.keys, json);
}

// The row of alias t whose key is the key object `json`.
std::string key_matches(const TableInfo& table, const std::string& json) {
  return "(" + key_list(table, "t") + ")" + kEquals + "(" + key_values(table, json) + ")";
}

std::string tenant_condition(const TableInfo& table) {
  return "t." + table.tenant->quoted + kEquals + "$2::" + table.tenant->base_type_sql;
}

std::string subject_condition(const TableInfo& table) {
  return "t." + table.subject.quoted + kEquals + "$3::" + table.subject.base_type_sql;
}

// The rows the job marked (finalization, restore): its mark, and on Citus its tenant and
// subject as `marked` says (see Shape).
std::string marked_rows_filter(const TableInfo& table, const MarkedRows& marked) {
  std::string filter = "t.privacy_erased_by" + kEquals + "$1";
  if (marked.tenant && table.tenant) filter += " AND " + tenant_condition(table);
  if (marked.subject) filter += " AND " + subject_condition(table);
  return filter;
}

// The rows of the target a statement acts on (alias `t`).
std::string target_filter(const TableInfo& table, const Shape& shape) {
  if (shape.operation == Operation::Finalize) return marked_rows_filter(table, shape.marked);
  std::string filter;
  if (table.tenant) filter = tenant_condition(table);
  if (shape.has_subject) {
    std::string subject = subject_condition(table);
    if (shape.matches_pseudonym) {
      subject = "(" + subject + " OR t." + table.subject.quoted + kEquals +
                "$7::" + table.subject.base_type_sql + ")";
    }
    filter += (filter.empty() ? "" : " AND ") + subject;
  }
  if (shape.operation == Operation::Mark)
    filter += (filter.empty() ? "" : " AND ") + std::string("t.privacy_erased_by IS NULL");
  return filter;
}

// The key columns a keyset comparison (after a key, up to a key) needs: those the target filter
// does not hold to one value. The filter fixes the tenant column ($2) and, when it filters on the
// subject alone, the subject column ($3); every row the statement sees, and so every key it
// returns as a position, has those values, so comparing the other columns alone selects the same
// rows. It lets an index on (tenant, subject, ...) or (privacy_erased_by, tenant, ...) start the
// scan at the position instead of at the first row of the tenant: with a key (tenant, id), as on
// a table distributed by tenant, a row comparison on both columns cannot, and each batch read all
// the rows before its position again (docs/performance.md, B10). All of them when the filter
// fixes every key column.
std::vector<Column> keyset_columns(const TableInfo& table, const Shape& shape) {
  bool finalize = shape.operation == Operation::Finalize;
  std::vector<Column> columns;
  for (const Column& key : table.keys) {
    bool fixed_tenant =
        table.tenant && key.name == table.tenant->name && (!finalize || shape.marked.tenant);
    bool fixed_subject =
        key.name == table.subject.name &&
        (finalize ? shape.marked.subject : shape.has_subject && !shape.matches_pseudonym);
    if (!fixed_tenant && !fixed_subject) columns.push_back(key);
  }
  return columns.empty() ? table.keys : columns;
}

bool anonymizes(const TableInfo& table, const Shape& shape) {
  return shape.operation == Operation::Finalize && table.on_erase == "anonymize";
}

// The columns besides the subject with rule 'hash', in the order of their pseudonyms in $8.
std::vector<Column> hashed_columns(const TableInfo& table) {
  std::vector<Column> columns;
  for (const auto& [column, rule] : table.rules) {
    if (rule == "hash") columns.push_back(column);
  }
  return columns;
}

// An anonymizing finalization of a table with such columns picks its rows first (see PSEUDONYMS).
bool picks_first(const TableInfo& table, const Shape& shape) {
  return anonymizes(table, shape) && !hashed_columns(table).empty();
}

// The name of the row of alias t in $8: its key values quoted and joined, 'acme','7'. Built
// with IMMUTABLE functions only (quote_literal(text), ||, the key types' text output), unlike
// the key object (jsonb_build_object is STABLE): Citus refuses STABLE functions with column
// references in a distributed UPDATE. The pick statement returns it, so both ends use this
// expression.
std::string lookup_key(const TableInfo& table, const std::string& alias) {
  std::string key;
  for (const Column& column : table.keys) {
    key += (key.empty() ? "" : " OPERATOR(pg_catalog.||) ',' OPERATOR(pg_catalog.||) ") +
           std::string("pg_catalog.quote_literal(") + alias + "." + column.quoted +
           "::pg_catalog.text)";
  }
  return "(" + key + ")";
}

// The pseudonyms of the row of alias t among the picked rows ($8, see PSEUDONYMS).
std::string picked_pseudonyms(const TableInfo& table) {
  return "($8 OPERATOR(pg_catalog.->) " + lookup_key(table, "t") + ")";
}

// The SET list of an anonymizing finalization: the subject column's new value (NULL, or $7: the
// pseudonym or the tombstone), each other 'hash' column's pseudonym from $8, the constants of the
// other rules, and the mark cleared.
std::string anonymize_assignments(const TableInfo& table) {
  std::string set = table.subject.quoted + " = " +
                    (table.subject_rule == "null" ? "NULL" : "$7::" + table.subject.type_sql);
  int hashed = 0;
  for (const auto& [column, rule] : table.rules) {
    std::string value = rule == "hash"
                            ? "(" + picked_pseudonyms(table) + " OPERATOR(pg_catalog.->>) " +
                                  std::to_string(hashed++) + ")::" + column.type_sql
                            : registry::anonymize_expression(column, rule);
    set += ", " + column.quoted + " = " + value;
  }
  return set + ", privacy_erased_by = NULL";
}

// What the operation does to the target's rows that also satisfy `rows` (a condition on alias t).
// The target filter is part of the statement, so a row changed concurrently is re-evaluated after
// its lock is taken. No join: the rows are found by index conditions alone, so a stale estimate
// (right after marking, the statistics say no row is marked) cannot turn a batch into a scan of
// every row of the job.
std::string action(const TableInfo& table, const Shape& shape, const std::string& rows) {
  std::string where = " WHERE " + target_filter(table, shape) + " AND " + rows;
  bool deletes = shape.operation == Operation::Purge ||
                 (shape.operation == Operation::Finalize && table.on_erase == "delete");
  if (deletes) return "DELETE FROM " + table.qualified + " AS t" + where;
  std::string set =
      shape.operation == Operation::Mark ? "privacy_erased_by = $1" : anonymize_assignments(table);
  return "UPDATE " + table.qualified + " AS t SET " + set + where;
}

std::string after_key_condition(const TableInfo& table, const Shape& shape) {
  if (!shape.has_after_key) return "";
  std::vector<Column> keyset = keyset_columns(table, shape);
  return " AND (" + column_list(keyset, "t") + ") OPERATOR(pg_catalog.>) (" +
         column_values(keyset, "$5::pg_catalog.jsonb") + ")";
}

// The rows up to the key object `json` (inclusive), in the same keyset as after_key_condition.
std::string up_to_key_condition(const TableInfo& table, const Shape& shape,
                                const std::string& json) {
  std::vector<Column> keyset = keyset_columns(table, shape);
  return "(" + column_list(keyset, "t") + ") OPERATOR(pg_catalog.<=) (" +
         column_values(keyset, json) + ")";
}

// The next `limit` keys of the target after the position, in key order.
std::string batch_keys_select(const TableInfo& table, const Shape& shape,
                              const std::string& columns) {
  return "SELECT " + columns + " FROM " + table.qualified + " AS t WHERE " +
         target_filter(table, shape) + after_key_condition(table, shape) + " ORDER BY " +
         key_list(table, "t") + " LIMIT $4";
}

// Where the next batch ends: the key `limit` rows after the position (privacy_batch_ends false)
// or, when fewer rows are left, the target's last key (true); no row when none is left. Both
// branches are index scans that stop at their first row, and the second runs only when the
// first finds nothing: one walk over the batch's index entries, and nothing kept or sorted on
// the way. (Keeping the batch's keys, 10,000 in a finalization batch, and sorting them for the
// last one cost a fifth of a finalization batch; docs/performance.md, "Scale".)
std::string batch_bound_select(const TableInfo& table, const Shape& shape) {
  std::string from = " FROM " + table.qualified + " AS t WHERE " + target_filter(table, shape) +
                     after_key_condition(table, shape);
  return "(SELECT " + key_list(table, "t") + ", false AS privacy_batch_ends" + from + " ORDER BY " +
         key_list(table, "t") +
         " OFFSET $4 OPERATOR(pg_catalog.-) 1 LIMIT 1)"
         " UNION ALL (SELECT " +
         key_list(table, "t") + ", true" + from + " ORDER BY " + key_list(table, "t", " DESC") +
         " LIMIT 1) LIMIT 1";
}

// One batch as one statement. Returns (rows acted on, whether the target ends with this batch,
// the batch's last key). The action covers the key range (after, bound], by index conditions:
// each batch reads only its own rows whatever the planner believes about the table.
std::string batch_statement(const TableInfo& table, const Shape& shape) {
  std::vector<Column> keyset = keyset_columns(table, shape);
  std::string upper_bound;
  for (const Column& key : keyset) {
    upper_bound +=
        (upper_bound.empty() ? "" : ", ") + std::string("(SELECT ") + key.quoted + " FROM bound)";
  }
  return "WITH bound AS MATERIALIZED (" + batch_bound_select(table, shape) +
         "),"
         " done AS (" +
         action(table, shape,
                "(" + column_list(keyset, "t") + ") OPERATOR(pg_catalog.<=) (" + upper_bound + ")" +
                    after_key_condition(table, shape)) +
         " RETURNING 1)"
         " SELECT (SELECT pg_catalog.count(*) FROM done), (SELECT privacy_batch_ends FROM bound),"
         " (SELECT " +
         key_object(table, "bound") + " FROM bound)::pg_catalog.text";
}

// The keys of the same batch, for the row-by-row retry.
std::string batch_keys_statement(const TableInfo& table, const Shape& shape) {
  return batch_keys_select(table, shape, key_object(table, "t") + "::pg_catalog.text");
}

// The action for the one row whose key object is $6.
std::string row_statement(const TableInfo& table, const Shape& shape) {
  return "WITH done AS (" + action(table, shape, key_matches(table, "$6::pg_catalog.jsonb")) +
         " RETURNING 1) SELECT pg_catalog.count(*) FROM done";
}

// The rows an anonymizing finalization rewrites, locked, with the values of their 'hash'
// columns: the batch's next rows, or (one_row) the row whose key object is $6.
std::string pick_statement(const TableInfo& table, const Shape& shape, bool one_row) {
  std::string columns = key_object(table, "t") + "::pg_catalog.text, " + lookup_key(table, "t");
  for (const Column& column : hashed_columns(table))
    columns += ", t." + column.quoted + "::pg_catalog.text";
  if (one_row) {
    return "SELECT " + columns + " FROM " + table.qualified + " AS t WHERE " +
           target_filter(table, shape) + " AND " + key_matches(table, "$6::pg_catalog.jsonb") +
           " FOR UPDATE";
  }
  return batch_keys_select(table, shape, columns) + " FOR UPDATE";
}

// Rewrites the picked rows, those whose pseudonyms are in $8: of the key range (after, $6], or
// (one_row) the row whose key object is $6.
std::string rewrite_statement(const TableInfo& table, const Shape& shape, bool one_row) {
  std::string rows = one_row ? key_matches(table, "$6::pg_catalog.jsonb")
                             : up_to_key_condition(table, shape, "$6::pg_catalog.jsonb") +
                                   after_key_condition(table, shape);
  rows += " AND $8 OPERATOR(pg_catalog.?) " + lookup_key(table, "t");
  return "WITH done AS (" + action(table, shape, rows) +
         " RETURNING 1) SELECT pg_catalog.count(*) FROM done";
}

std::string count_statement(const TableInfo& table, const Shape& shape) {
  return "SELECT pg_catalog.count(*) FROM " + table.qualified + " AS t WHERE " +
         target_filter(table, shape) + after_key_condition(table, shape);
}

// The export's page: each row as the JSON text of its columns in table order (row_to_json of a
// subselect keeps it) plus "_erased", then its key object.
std::string read_statement(const TableInfo& table, const Shape& shape) {
  std::string columns;
  for (const std::string& name : table.exported_columns)
    columns += "t." + pg::quote_ident(name) + ", ";
  columns += "t.privacy_erased_by IS NOT NULL AS \"_erased\"";
  return batch_keys_select(table, shape,
                           "(SELECT pg_catalog.row_to_json(x) FROM (SELECT " + columns +
                               ") AS x)::pg_catalog.text, " + key_object(table, "t") +
                               "::pg_catalog.text");
}

// ----- execution -----------------------------------------------------------------------------

struct Bound {
  long long job_id = 0;
  std::optional<std::string> tenant;
  std::optional<std::string> subject;
  long long limit = 0;
  std::optional<std::string> after_key;
  std::optional<std::string> row_key;
  std::optional<std::string> subject_pseudonym;
  std::optional<std::string> picked_pseudonyms;  // JSON text: lookup_key -> [pseudonym, ...]
};

// A jsonb parameter (NULL when absent), converted once per statement rather than once per row.
pg::SqlParam jsonb_param(const std::optional<std::string>& json) {
  if (!json) return pg::SqlParam{JSONBOID, (Datum)0, true};
  Datum value =
      pg::pg_guard([&] { return DirectFunctionCall1(jsonb_in, CStringGetDatum(json->c_str())); });
  return pg::SqlParam{JSONBOID, value, false};
}

std::vector<pg::SqlParam> params_of(const Bound& bound) {
  return {pg::int8_param(bound.job_id),
          pg::text_param(bound.tenant),
          pg::text_param(bound.subject),
          pg::int8_param(bound.limit),
          pg::text_param(bound.after_key),
          pg::text_param(bound.row_key),
          pg::text_param(bound.subject_pseudonym),
          jsonb_param(bound.picked_pseudonyms)};
}

// Runs a batch statement (through the SPI layer's plan cache) and returns its rows as text.
std::vector<pg::TextRow> execute(const std::string& sql, const Bound& bound) {
  return pg::spi_query_rows(sql, params_of(bound));
}

long long first_count(const std::vector<pg::TextRow>& rows) {
  return rows.at(0).optional_int8(0).value_or(0);
}

// A batch statement on a table: as the table's owner (docs/security.md), with the settings of a
// batch for the statement's lifetime:
//  * lock_timeout = privacy.lock_timeout: a batch never waits long for a row someone else holds;
//  * no hash or merge joins: a batch joins at most batch_size keys back to its table, for which
//    a nested loop on the key index is always right. Right after marking, the statistics still
//    say that no row is marked, and the planner would otherwise hash-join every marked row of
//    the job in each batch, which made finalization quadratic (bench B2);
//  * no sorts and no bitmap scans: a batch reads its rows in key order from an index and stops
//    after them. With the target's values known (the first custom plans of a statement), the
//    planner otherwise took a bitmap scan of ALL the target's rows left and sorted them for the
//    batch's first keys whenever those rows lay scattered over the table, as one tenant's rows
//    do among other tenants': every batch read the whole rest of the target
//    (test/t/120_batch_plans.pl).
class BatchStatementScope {
 public:
  explicit BatchStatementScope(Oid relation) : owner_(relation) {
    owner_.set("lock_timeout", std::to_string(pg::guc::lock_timeout_ms));
    owner_.set("enable_hashjoin", "off");
    owner_.set("enable_mergejoin", "off");
    owner_.set("enable_sort", "off");
    owner_.set("enable_bitmapscan", "off");
  }

 private:
  pg::TableOwnerScope owner_;
};

// Runs `work` in a subtransaction inside a BatchStatementScope; returns its failure, if any.
std::optional<Error> attempt(const TableInfo& table, const std::function<void()>& work) {
  BatchStatementScope scope(table.relid);
  return pg::run_in_subtransaction([&] {
    citus_tables::send_lock_timeout_to_shards(
        pg::guc::lock_timeout_ms);  // docs/citus.md, "Lock timeouts"
    work();
  });
}

// The failures a batch redoes row by row, recording the rows that fail again (docs/jobs.md,
// "Flagged items"): a row locked longer than privacy.lock_timeout (55P03), a deadlock (40P01), a
// constraint (class 23, e.g. a foreign key from a table pg_privacy does not know, a CHECK that
// refuses the anonymized value), a value the anonymization cannot write (class 22) and an
// exception an owner's trigger raises for a row (P0001). Anything else is not about one row and
// ends the batch: a cancel or statement_timeout (57014), a shutdown (class 57), a legal hold
// (PV001), a missing privilege (42501), lack of resources (class 53), an internal error (XX000).
bool is_row_failure(const Error& error) {
  const std::string& code = error.sqlstate();
  return code == "55P03" || code == "40P01" || code == "P0001" || code.rfind("23", 0) == 0 ||
         code.rfind("22", 0) == 0;
}

// What a batch statement did: rows acted on, whether no row is left after it, its last key.
struct Acted {
  long long rows = 0;
  bool ends = true;
  std::optional<std::string> last_key;
};

// Hashes the 'hash' columns of picked rows (key object, name in $8, then one value per column) and
// rewrites them: the key range (after, last picked key], or the one row of bound.row_key. Runs
// inside the owner's scope: the secret was read before it, as the extension owner.
long long rewrite_picked(const TableInfo& table, const Shape& shape, Bound bound,
                         const std::vector<pg::TextRow>& picked, const std::string& secret) {
  if (picked.empty()) return 0;
  std::string pseudonyms = "{";
  for (const pg::TextRow& row : picked) {
    pseudonyms += (pseudonyms.size() > 1 ? ", " : "") + core::json_string(*row[1]) + ": [";
    for (size_t column = 2; column < row.size(); ++column) {
      pseudonyms += (column > 2 ? ", " : "") +
                    (row[column] ? core::json_string(pseudonym::of(secret, *row[column]))
                                 : std::string("null"));
    }
    pseudonyms += "]";
  }
  bound.picked_pseudonyms = pseudonyms + "}";
  bool one_row = bound.row_key.has_value();
  if (!one_row) bound.row_key = picked.back()[0];  // the upper end of the range
  return first_count(execute(rewrite_statement(table, shape, one_row), bound));
}

// The whole batch: one statement, or pick and rewrite (see PSEUDONYMS).
Acted act_on_batch(const TableInfo& table, const Shape& shape, const Bound& bound,
                   const std::string& secret) {
  if (!picks_first(table, shape)) {
    std::vector<pg::TextRow> rows = execute(batch_statement(table, shape), bound);
    const std::optional<std::string>& ends = rows.at(0)[1];  // NULL: no row was left
    return Acted{first_count(rows), !ends || *ends == "t", rows.at(0)[2]};
  }
  std::vector<pg::TextRow> picked = execute(pick_statement(table, shape, false), bound);
  long long rows = rewrite_picked(table, shape, bound, picked, secret);
  return Acted{rows, static_cast<long long>(picked.size()) < bound.limit,
               picked.empty() ? std::nullopt : picked.back()[0]};
}

// One row, whose key object is bound.row_key.
long long act_on_row(const TableInfo& table, const Shape& shape, const Bound& bound,
                     const std::string& secret) {
  if (!picks_first(table, shape)) return first_count(execute(row_statement(table, shape), bound));
  std::vector<pg::TextRow> picked = execute(pick_statement(table, shape, true), bound);
  return rewrite_picked(table, shape, bound, picked, secret);
}

// One batch of `shape` on `table` (see FAILURES above).
BatchResult run_statement_batch(const TableInfo& table, const Shape& shape, const Bound& bound) {
  // Read as the extension owner, before any owner scope (cached for the backend).
  const std::string secret =
      anonymizes(table, shape) ? pseudonym::installation_secret() : std::string();
  BatchResult result;
  Acted whole;
  std::optional<Error> failure =
      attempt(table, [&] { whole = act_on_batch(table, shape, bound, secret); });
  if (!failure) {
    result.processed = whole.rows;
    result.last_key = whole.last_key ? whole.last_key : bound.after_key;
    result.relation_done = whole.ends;
    return result;
  }
  if (!is_row_failure(*failure)) throw *failure;

  std::vector<pg::TextRow> keys;
  {
    BatchStatementScope scope(table.relid);
    keys = execute(batch_keys_statement(table, shape), bound);
  }
  Shape row_shape = shape;
  row_shape.has_after_key = false;
  for (const pg::TextRow& key : keys) {
    Bound row = bound;
    row.row_key = *key[0];
    long long done = 0;
    std::optional<Error> row_failure =
        attempt(table, [&] { done = act_on_row(table, row_shape, row, secret); });
    if (!row_failure) {
      result.processed += done;
      continue;
    }
    if (!is_row_failure(*row_failure)) throw *row_failure;
    record_item(bound.job_id, table.relid, shape.operation, *key[0], 1, *row_failure);
    ++result.failed;
  }
  result.last_key = keys.empty() ? bound.after_key : keys.back()[0];
  result.relation_done = static_cast<long long>(keys.size()) < bound.limit;
  return result;
}

// False when a target identifier cannot even be written in the column's type (a subject id
// "abc" for an integer column): no row can match, and casting it would fail the batch.
bool fits_column(const TableInfo& table, const Column& column,
                 const std::optional<std::string>& value) {
  if (!value) return true;
  switch (column.base_type) {
    case TEXTOID:
    case VARCHAROID:
    case BPCHAROID:
      return true;
    default:
      break;
  }
  return value_fits(table.relid, column.base_type_sql, *value);
}

// Whether the job's target can address rows of the table at all.
bool target_applies(const TableInfo& table, const jobs::Job& job) {
  if (!table.tenant && !job.subject) return false;  // tenant purge, table without tenants
  if (table.tenant && !fits_column(table, *table.tenant, job.tenant_id)) return false;
  return fits_column(table, table.subject, job.subject);
}

// How the rows the job marked in `table` are addressed besides the mark (see Shape): on Citus
// tables, with the job's tenant where the table has a tenant column, and with its subject where
// the table is distributed by its subject column, when the column can hold the value (only
// then did the mark find rows there). Plain tables keep the statements they had.
MarkedRows marked_rows(const TableInfo& table, const jobs::Job& job) {
  MarkedRows marked;
  if (!citus_tables::is_citus_table(table.relid)) return marked;
  marked.tenant = table.tenant.has_value() && fits_column(table, *table.tenant, job.tenant_id);
  marked.subject = job.subject.has_value() &&
                   citus_tables::distributed_by(table.relid, table.subject.name) &&
                   fits_column(table, table.subject, job.subject);
  return marked;
}

// The pseudonym of the job's subject, as the 'hash' rule writes it into the subject column: the
// job found its rows by subject = target id, so they all hold it (a char(n) column pads it, and
// its text drops the padding again).
std::string subject_pseudonym(const TableInfo& table, const jobs::Job& job) {
  std::string value = *job.subject;
  if (table.subject.base_type == BPCHAROID) value.erase(value.find_last_not_of(' ') + 1);
  return pseudonym::of(pseudonym::installation_secret(), value);
}

// A purge also takes the rows an earlier erase anonymized with the subject's pseudonym: those of
// an 'anonymize' table whose subject column takes rule 'hash'.
bool matches_pseudonym(const TableInfo& table, const jobs::Job& job, Operation operation) {
  return operation == Operation::Purge && job.subject && table.on_erase == "anonymize" &&
         table.subject_rule == "hash";
}

// The subject column's new value in an anonymizing finalization ($7): the pseudonym, or the
// tenant's tombstone (checked at submission; if it was removed since, the rows fail and are
// flagged rather than anonymized wrongly).
std::optional<std::string> anonymized_subject(const TableInfo& table, const jobs::Job& job) {
  if (table.subject_rule == "hash") {
    if (!job.subject) {
      throw Error(
          sqlstate::kObjectNotInPrerequisiteState,
          "job " + std::to_string(job.id) + " has no subject, so its rows cannot be anonymized");
    }
    return subject_pseudonym(table, job);
  }
  if (table.subject_rule == "tombstone") return registry::tombstone_subject(job.tenant_id);
  return std::nullopt;
}

Shape shape_of(const TableInfo& table, const jobs::Job& job, Operation operation,
               const std::optional<std::string>& after_key) {
  bool filters_subject = operation != Operation::Finalize && job.subject.has_value();
  MarkedRows marked = operation == Operation::Finalize ? marked_rows(table, job) : MarkedRows{};
  return Shape{operation, filters_subject, after_key.has_value(),
               matches_pseudonym(table, job, operation), marked};
}

Bound bound_of(const TableInfo& table, const jobs::Job& job, const Shape& shape, long long limit,
               const std::optional<std::string>& after_key) {
  Bound bound;
  bound.job_id = job.id;
  bound.tenant = job.tenant_id;
  bound.subject = job.subject;
  bound.limit = limit;
  bound.after_key = after_key;
  if (shape.matches_pseudonym) bound.subject_pseudonym = subject_pseudonym(table, job);
  if (anonymizes(table, shape)) bound.subject_pseudonym = anonymized_subject(table, job);
  return bound;
}

// Mark, purge and read address the target's rows; finalization the rows the job marked.
bool addresses_rows(const TableInfo& table, const jobs::Job& job, Operation operation) {
  return operation == Operation::Finalize || target_applies(table, job);
}

void require_limit(int limit) {
  if (limit < 1) throw Error(sqlstate::kInvalidParameter, "batch limit must be at least 1");
}

}  // namespace

std::string_view phase_name(Operation operation) {
  switch (operation) {
    case Operation::Mark:
      return "mark";
    case Operation::Purge:
      return "purge";
    case Operation::Finalize:
      return "finalize";
    case Operation::Read:
      return "read";
  }
  return "?";
}

std::optional<Operation> parse_phase(std::string_view phase) {
  for (Operation operation :
       {Operation::Mark, Operation::Purge, Operation::Finalize, Operation::Read}) {
    if (phase_name(operation) == phase) return operation;
  }
  return std::nullopt;
}

// True when `value` is valid input for `type_sql` (see data/batch.hpp).
bool value_fits(Oid relation, const std::string& type_sql, const std::string& value) {
  std::optional<Error> failure;
  {
    pg::TableOwnerScope owner(relation);
    failure = pg::run_in_subtransaction([&] {
      pg::spi_query_text("SELECT $1::pg_catalog.text::" + type_sql, {pg::text_param(value)});
    });
  }
  if (!failure) return true;
  const std::string& code = failure->sqlstate();
  if (code.rfind("22", 0) == 0 || code.rfind("23", 0) == 0) return false;
  throw *failure;
}

// ----- counts and batches --------------------------------------------------------------------

long long count_rows(const jobs::Job& job, const TableInfo& table, Operation operation,
                     const std::optional<std::string>& after_key) {
  pg::SpiConnection spi;
  if (!addresses_rows(table, job, operation)) return 0;
  Shape shape = shape_of(table, job, operation, after_key);
  Bound bound = bound_of(table, job, shape, 0, after_key);
  pg::TableOwnerScope owner(table.relid);
  return pg::spi_query_int8(count_statement(table, shape), params_of(bound), false).value_or(0);
}

BatchResult run_batch(const jobs::Job& job, const TableInfo& table, Operation operation,
                      const std::optional<std::string>& after_key, int limit) {
  require_limit(limit);
  pg::SpiConnection spi;
  if (operation == Operation::Mark && !job.subject) {
    throw Error(sqlstate::kInvalidParameter,
                "an erase marks the rows of one subject; no subject given");
  }
  if (!addresses_rows(table, job, operation)) return BatchResult{0, 0, after_key, true};
  Shape shape = shape_of(table, job, operation, after_key);
  return run_statement_batch(table, shape, bound_of(table, job, shape, limit, after_key));
}

BatchResult read_batch(const jobs::Job& job, const TableInfo& table,
                       const std::optional<std::string>& after_key, int limit,
                       const std::function<void(std::string_view row_json)>& row) {
  require_limit(limit);
  pg::SpiConnection spi;  // every page is freed when it closes
  if (!target_applies(table, job)) return BatchResult{0, 0, after_key, true};
  Shape shape = shape_of(table, job, Operation::Read, after_key);
  std::vector<pg::TextRow> rows;
  {
    pg::TableOwnerScope owner(table.relid);
    rows = execute(read_statement(table, shape), bound_of(table, job, shape, limit, after_key));
  }
  BatchResult result;
  for (const pg::TextRow& read : rows) {
    if (!read[0] || !read[1])
      throw Error(sqlstate::kInternalError, "the export read a row without JSON or key");
    row(*read[0]);
  }
  result.processed = static_cast<long long>(rows.size());
  result.last_key = rows.empty() ? after_key : rows.back()[1];
  result.relation_done = static_cast<long long>(rows.size()) < limit;
  return result;
}

std::optional<Error> redo_item(const jobs::Job& job, const TableInfo& table, Operation phase,
                               const std::string& row_key, bool finalize_too) {
  pg::SpiConnection spi;
  auto redo = [&](Operation operation) {
    Shape shape = shape_of(table, job, operation, std::nullopt);
    Bound bound = bound_of(table, job, shape, 1, std::nullopt);
    bound.row_key = row_key;
    const std::string secret =
        anonymizes(table, shape) ? pseudonym::installation_secret() : std::string();
    act_on_row(table, shape, bound, secret);
  };
  if (!addresses_rows(table, job, phase)) return std::nullopt;
  return attempt(table, [&] {
    redo(phase);
    if (finalize_too) redo(Operation::Finalize);
  });
}

void record_item(long long job_id, Oid relation, Operation phase,
                 const std::optional<std::string>& row_key, int attempt, const Error& error) {
  pg::SpiConnection spi;
  pg::spi_execute(
      "INSERT INTO privacy.job_errors (job_id, relation, row_key, phase, attempt, sqlstate, message)"
      " VALUES ($1, $2::pg_catalog.oid::pg_catalog.regclass, $3::pg_catalog.jsonb, $4, $5, $6, $7)",
      {pg::int8_param(job_id), pg::int8_param(static_cast<long long>(relation)),
       pg::text_param(row_key), pg::text_param(std::string(phase_name(phase))),
       pg::int8_param(static_cast<long long>(attempt)), pg::text_param(error.sqlstate()),
       pg::text_param(std::string(error.what()))});
}

// ----- restore -------------------------------------------------------------------------------

long long restore_rows(const jobs::Job& job, const TableInfo& table,
                       const std::optional<std::string>& keys_json) {
  pg::SpiConnection spi;
  MarkedRows marked = marked_rows(table, job);
  std::string sql = "UPDATE " + table.qualified + " AS t SET privacy_erased_by = NULL WHERE " +
                    marked_rows_filter(table, marked);
  if (keys_json) {
    std::string names = "ARRAY[";
    for (size_t i = 0; i < table.keys.size(); ++i)
      names += (i ? ", " : "") + pg::quote_literal(table.keys[i].name);
    names += "]::pg_catalog.text[]";
    bool valid = pg::spi_query_bool(
        "SELECT CASE WHEN pg_catalog.jsonb_typeof($1::pg_catalog.jsonb) OPERATOR(pg_catalog.<>) 'array'"
        " THEN false ELSE NOT EXISTS ("
        "  SELECT 1 FROM pg_catalog.jsonb_array_elements($1::pg_catalog.jsonb) e"
        "   WHERE pg_catalog.jsonb_typeof(e) OPERATOR(pg_catalog.<>) 'object'"
        "      OR NOT e OPERATOR(pg_catalog.?&) " +
            names + ") END::pg_catalog.text",
        {pg::text_param(*keys_json)});
    if (!valid) {
      throw Error(
          sqlstate::kInvalidParameter,
          "keys must be a JSON array of objects naming every key column of " + table.display,
          "The key of " + table.display + " is (" + key_names(table) + ").",
          "For example: keys => '[{\"" + table.keys[0].name +
              "\": 42}]'. "
              "privacy.job_errors.row_key has this form too.");
    }
    sql += " AND (" + key_list(table, "t") + ")" + kEquals + "ANY (SELECT " +
           key_values(table, "e") +
           " FROM pg_catalog.jsonb_array_elements($4::pg_catalog.jsonb) e)";
  }
  pg::TableOwnerScope owner(table.relid);
  return static_cast<long long>(pg::spi_execute(
      sql,
      {pg::int8_param(job.id),
       pg::text_param(marked.tenant ? std::optional<std::string>(job.tenant_id) : std::nullopt),
       pg::text_param(marked.subject ? job.subject : std::nullopt), pg::text_param(keys_json)}));
}

}  // namespace privacy::batch
