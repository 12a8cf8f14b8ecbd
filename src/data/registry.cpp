// Table registration (docs/soft-delete.md): privacy.register_table, privacy.unregister_table,
// privacy.set_column_rule, and the reading of a registration for the batch operations.
//
// Registration validates everything first and changes nothing until every check has passed; the
// row-level-security changes themselves live in data/softdelete.cpp.
#include "access/tenant_scope.hpp"
#include "data/registry.hpp"

#include "core/json.hpp"
#include "audit/audit.hpp"
#include "data/batch.hpp"
#include "citus/node.hpp"
#include "citus/tables.hpp"
#include "holds/holds.hpp"
#include "data/partitions.hpp"
#include "pg/boundary.hpp"
#include "pg/security_context.hpp"
#include "pg/spi.hpp"
#include "data/registration_checks.hpp"
#include "data/softdelete.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_operator.h"
#include "utils/syscache.h"
#include "utils/typcache.h"
}

#include <string>

namespace privacy::registry {

using core::Error;
namespace sqlstate = core::sqlstate;
using pg::int8_param;
using pg::text_param;

namespace {

// Reads columns of a relation from the catalog, as TextRows of
// (attname, format_type, base type oid, base type name, typmod, attnotnull, type oid).
// Schema-qualified like every statement the batches run (docs/security.md); format_type, run
// under the pinned search_path, qualifies every type outside pg_catalog.
const char* kColumnQuery =
    "SELECT a.attname::pg_catalog.text, pg_catalog.format_type(a.atttypid, a.atttypmod),"
    "       COALESCE(NULLIF(t.typbasetype, 0), a.atttypid)::pg_catalog.oid::pg_catalog.text,"
    "       pg_catalog.format_type(COALESCE(NULLIF(t.typbasetype, 0), a.atttypid), NULL),"
    "       CASE WHEN t.typbasetype OPERATOR(pg_catalog.<>) 0 THEN t.typtypmod ELSE a.atttypmod END::pg_catalog.text,"
    "       a.attnotnull::pg_catalog.text, a.atttypid::pg_catalog.oid::pg_catalog.text"
    "  FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.atttypid"
    " WHERE a.attrelid OPERATOR(pg_catalog.=) $1::pg_catalog.oid AND a.attname OPERATOR(pg_catalog.=) $2::pg_catalog.name"
    "   AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped";

Column column_from_row(const pg::TextRow& row) {
  Column column;
  column.name = *row[0];
  column.quoted = pg::quote_ident(column.name);
  column.type_sql = *row[1];
  column.base_type = row.oid(2);
  column.base_type_sql = *row[3];
  column.typmod = row.int4(4);
  column.not_null = row.boolean(5);
  column.type = row.oid(6);
  return column;
}

// Parses a name[] in text form ({a,"b c"}) through the server, so quoting follows its rules.
std::vector<std::string> name_array(const std::string& array_text) {
  std::vector<std::string> names;
  for (const pg::TextRow& row :
       pg::spi_query_rows("SELECT pg_catalog.unnest($1::pg_catalog.name[])::pg_catalog.text",
                          {text_param(array_text)})) {
    names.push_back(*row[0]);
  }
  return names;
}

}  // namespace

std::optional<Column> load_column(Oid relid, const std::string& name) {
  pg::SpiConnection spi;
  std::vector<pg::TextRow> rows =
      pg::spi_query_rows(kColumnQuery, {pg::oid_param(relid), text_param(name)});
  if (rows.empty()) return std::nullopt;
  return column_from_row(rows[0]);
}

std::optional<TableInfo> load_table(Oid relid) {
  pg::SpiConnection spi;
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "SELECT pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||)"
      "       pg_catalog.quote_ident(c.relname), r.relation::pg_catalog.text,"
      "       r.subject_column::pg_catalog.text, r.tenant_column::pg_catalog.text,"
      "       r.key_columns::pg_catalog.text, r.on_erase"
      "  FROM privacy.registered_tables r"
      "  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) r.relation"
      "  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
      " WHERE r.relation OPERATOR(pg_catalog.=) $1::pg_catalog.oid",
      {pg::oid_param(relid)});
  if (rows.empty()) return std::nullopt;
  const pg::TextRow& row = rows[0];
  TableInfo info;
  info.relid = relid;
  info.qualified = *row[0];
  info.display = *row[1];
  info.on_erase = *row[5];
  auto column = [&](const std::string& name) {
    std::optional<Column> found = load_column(relid, name);
    if (!found) {
      throw Error(
          sqlstate::kObjectNotInPrerequisiteState,
          "column \"" + name + "\" of registered table " + info.display + " no longer exists", "",
          "Unregister the table with privacy.unregister_table and register it again.");
    }
    return *found;
  };
  info.subject = column(*row[2]);
  if (row[3]) info.tenant = column(*row[3]);
  for (const std::string& key : name_array(*row[4])) info.keys.push_back(column(key));
  std::optional<std::string> subject_rule;
  for (
      const pg::TextRow& rule : pg::spi_query_rows(
          "SELECT column_name::pg_catalog.text, rule FROM privacy.column_rules"
          " WHERE relation OPERATOR(pg_catalog.=) $1::pg_catalog.oid AND rule OPERATOR(pg_catalog.<>) 'keep'"
          " ORDER BY column_name",
          {pg::oid_param(relid)})) {
    if (*rule[0] == info.subject.name) {
      subject_rule = *rule[1];
    } else {
      info.rules.emplace_back(column(*rule[0]), *rule[1]);
    }
  }
  info.subject_rule = subject_rule                    ? *subject_rule
                      : holds_pseudonym(info.subject) ? "hash"
                      : !info.subject.not_null        ? "null"
                                                      : "";
  for (
      const pg::TextRow& name : pg::spi_query_rows(
          "SELECT attname::pg_catalog.text FROM pg_catalog.pg_attribute"
          " WHERE attrelid OPERATOR(pg_catalog.=) $1::pg_catalog.oid AND attnum OPERATOR(pg_catalog.>) 0"
          "   AND NOT attisdropped AND attname OPERATOR(pg_catalog.<>) 'privacy_erased_by' ORDER BY attnum",
          {pg::oid_param(relid)})) {
    info.exported_columns.push_back(*name[0]);
  }
  return info;
}

std::string subject_rule_refusal(const Column& subject, const std::string& rule) {
  if (rule == "hash" && !holds_pseudonym(subject)) {
    return "it (" + subject.type_sql + ") cannot hold the 64-character pseudonym of rule 'hash'";
  }
  if (rule == "null" && subject.not_null) return "it is NOT NULL, so rule 'null' cannot apply";
  if (rule != "hash" && rule != "null" && rule != "tombstone") {
    return "rule '" + rule +
           "' would leave the subject's id in it; use 'hash', 'null' or 'tombstone'";
  }
  return "";
}

std::optional<std::string> tombstone_subject(const std::string& tenant_id) {
  pg::SpiConnection spi;
  return pg::spi_query_text(
      "SELECT tombstone_subject FROM privacy._tenant_settings($1::pg_catalog.text)",
      {text_param(tenant_id)});
}

namespace {

// A value the column can hold (text columns hold any subject id).
bool fits(const TableInfo& table, const Column& column, const std::string& value) {
  return column.base_type == TEXTOID || column.base_type == VARCHAROID ||
         column.base_type == BPCHAROID ||
         privacy::batch::value_fits(table.relid, column.base_type_sql, value);
}

}  // namespace

std::optional<Error> anonymization_refusal(const TableInfo& table, const std::string& tenant_id,
                                           const std::string& subject_id) {
  if (table.on_erase != "anonymize" || !fits(table, table.subject, subject_id)) return std::nullopt;
  const std::string fix =
      "Set a rule for it: privacy.set_column_rule('" + table.display + "', '" + table.subject.name +
      "', 'tombstone') with privacy.configure_tenant('" + tenant_id +
      "', tombstone_subject => ...), or 'null' on a nullable column; or register the table "
      "with on_erase 'delete'.";
  if (table.subject_rule.empty()) {
    return Error(sqlstate::kObjectNotInPrerequisiteState,
                 "table " + table.display +
                     " cannot anonymize the rows of an erasure: its subject column " +
                     table.subject.quoted + " (" + table.subject.type_sql +
                     " NOT NULL) can hold neither the 64-character pseudonym nor NULL",
                 "Finalization replaces the subject id of every anonymized row.", fix);
  }
  if (table.subject_rule != "tombstone") return std::nullopt;
  std::optional<std::string> tombstone = tombstone_subject(tenant_id);
  if (!tombstone) {
    return Error(
        sqlstate::kObjectNotInPrerequisiteState,
        "table " + table.display + " anonymizes its subject column " + table.subject.quoted +
            " with rule 'tombstone', but tenant \"" + tenant_id + "\" has no tombstone subject",
        "", "Set one: privacy.configure_tenant('" + tenant_id + "', tombstone_subject => '0').");
  }
  if (!fits(table, table.subject, *tombstone)) {
    return Error(sqlstate::kObjectNotInPrerequisiteState,
                 "the tombstone subject \"" + *tombstone + "\" of tenant \"" + tenant_id +
                     "\" is not a valid value of column " + table.subject.quoted + " (" +
                     table.subject.type_sql + ") of " + table.display,
                 "",
                 "Set a tombstone of that type: privacy.configure_tenant('" + tenant_id +
                     "', tombstone_subject => ...).");
  }
  return std::nullopt;
}

bool holds_pseudonym(const Column& column) {
  if (column.base_type == TEXTOID) return true;
  if (column.base_type == VARCHAROID || column.base_type == BPCHAROID) {
    return column.typmod < 0 || column.typmod - VARHDRSZ >= 64;
  }
  return false;
}

bool is_identifier_type(const Column& column) {
  switch (column.base_type) {
    case TEXTOID:
    case VARCHAROID:
    case BPCHAROID:
    case NAMEOID:
    case INT2OID:
    case INT4OID:
    case INT8OID:
    case NUMERICOID:
    case UUIDOID:
      return true;
    default:
      return false;
  }
}

std::string redact_constant(const Column& column) {
  std::string value;
  switch (column.base_type) {
    case TEXTOID:
    case VARCHAROID:
    case BPCHAROID:
      value = "'[redacted]'";
      break;
    case INT2OID:
    case INT4OID:
    case INT8OID:
    case NUMERICOID:
    case FLOAT4OID:
    case FLOAT8OID:
      value = "0";
      break;
    case DATEOID:
      value = "'1970-01-01'";
      break;
    case TIMESTAMPOID:
      value = "'1970-01-01 00:00:00'";
      break;
    case TIMESTAMPTZOID:
      value = "'1970-01-01 00:00:00+00'";
      break;
    case TIMEOID:
      value = "'00:00:00'";
      break;
    case BOOLOID:
      value = "false";
      break;
    case UUIDOID:
      value = "'00000000-0000-0000-0000-000000000000'";
      break;
    case JSONBOID:
    case JSONOID:
      value = "'{}'";
      break;
    case BYTEAOID:
      value = "'\\x'";
      break;
    default:
      return column.not_null ? std::string() : "NULL::" + column.type_sql;
  }
  // Cast to the column's own type: an explicit cast to varchar(n) shortens the text to fit.
  return "(" + value + ")::" + column.type_sql;
}

std::string anonymize_expression(const Column& column, const std::string& rule) {
  if (rule == "null") return "NULL";
  if (rule == "redact") {
    std::string constant = redact_constant(column);
    if (constant.empty()) {
      throw Error(sqlstate::kInvalidParameter, "column " + column.quoted + " of type " +
                                                   column.type_sql + " has no redaction constant");
    }
    return constant;
  }
  throw Error(sqlstate::kInvalidParameter, "unknown anonymization rule \"" + rule + "\"");
}

}  // namespace privacy::registry

// ---------------------------------------------------------------------------------------------
// SQL entry points
// ---------------------------------------------------------------------------------------------
namespace {

using privacy::core::Error;
using privacy::registry::Column;
namespace pg = privacy::pg;
namespace sqlstate = privacy::core::sqlstate;

std::string name_arg(FunctionCallInfo fcinfo, int index) { return NameStr(*PG_GETARG_NAME(index)); }

void require_arg(FunctionCallInfo fcinfo, int index, const char* what) {
  if (PG_ARGISNULL(index)) {
    throw Error(sqlstate::kInvalidParameter, std::string(what) + " must not be NULL");
  }
}

bool is_registered(Oid relid) {
  return pg::spi_query_text("SELECT 1 FROM privacy.registered_tables WHERE relation = $1::oid",
                            {pg::int8_param(static_cast<long long>(relid))})
      .has_value();
}

Column require_column(Oid relid, const std::string& table, const std::string& name,
                      const char* role) {
  std::optional<Column> column = privacy::registry::load_column(relid, name);
  if (!column) {
    throw Error(
        sqlstate::kUndefinedColumn,
        std::string(role) + " \"" + name + "\" does not exist in table " + table, "",
        "Column names are case-sensitive; pass the name exactly as \\d " + table + " shows it.");
  }
  return *column;
}

// The table's key: its primary key, else the first unique index (fewest columns) whose columns
// are all NOT NULL, with no expression and no predicate. Empty when there is none.
std::vector<std::string> find_key(Oid relid) {
  std::optional<std::string> key = pg::spi_query_text(
      "SELECT array_agg(a.attname ORDER BY k.ord)::text"
      "  FROM (SELECT i.indexrelid, i.indkey, i.indisprimary, i.indnkeyatts"
      "          FROM pg_catalog.pg_index i"
      "         WHERE i.indrelid = $1::oid AND i.indisunique AND i.indisvalid"
      "           AND i.indexprs IS NULL AND i.indpred IS NULL"
      "           AND NOT EXISTS (SELECT 1 FROM unnest(i.indkey::int2[]) col(attnum)"
      "                           JOIN pg_catalog.pg_attribute a"
      "                             ON a.attrelid = i.indrelid AND a.attnum = col.attnum"
      "                          WHERE NOT a.attnotnull)"
      "           AND 0 <> ALL (i.indkey::int2[])"
      "         ORDER BY i.indisprimary DESC, i.indnkeyatts, i.indexrelid LIMIT 1) best"
      "  CROSS JOIN LATERAL unnest((best.indkey::int2[])[0:best.indnkeyatts - 1])"
      "       WITH ORDINALITY AS k(attnum, ord)"
      "  JOIN pg_catalog.pg_attribute a ON a.attrelid = $1::oid AND a.attnum = k.attnum"
      " GROUP BY best.indexrelid",
      {pg::int8_param(static_cast<long long>(relid))});
  if (!key) return {};
  std::vector<std::string> names;
  for (const pg::TextRow& row :
       pg::spi_query_rows("SELECT unnest($1::name[])::text", {pg::text_param(*key)})) {
    names.push_back(*row[0]);
  }
  return names;
}

// The namespace of an operator (InvalidOid when there is none).
Oid operator_namespace(Oid op) {
  if (!OidIsValid(op)) return InvalidOid;
  HeapTuple tuple = SearchSysCache1(OPEROID, ObjectIdGetDatum(op));
  if (!HeapTupleIsValid(tuple)) return InvalidOid;
  Oid namespace_oid = reinterpret_cast<Form_pg_operator>(GETSTRUCT(tuple))->oprnamespace;
  ReleaseSysCache(tuple);
  return namespace_oid;
}

// Batches page through a table in key order with OPERATOR(pg_catalog.<) and
// OPERATOR(pg_catalog.=) (docs/security.md: nothing the extension runs depends on a
// search_path). A key column whose type orders with operators of another schema (citext, an
// extension's or a user's type) would silently be compared by another operator, so it is refused.
void require_catalog_key_operators(const std::string& table, const std::vector<Column>& keys) {
  for (const Column& key : keys) {
    bool in_catalog = pg::pg_guard([&] {
      TypeCacheEntry* entry = lookup_type_cache(key.base_type, TYPECACHE_EQ_OPR | TYPECACHE_LT_OPR);
      return operator_namespace(entry->eq_opr) == PG_CATALOG_NAMESPACE &&
             operator_namespace(entry->lt_opr) == PG_CATALOG_NAMESPACE;
    });
    if (in_catalog) continue;
    throw Error(
        "0A000",
        "key column " + key.quoted + " of table " + table + " has type " + key.type_sql +
            ", whose btree operators are not built in",
        "Batches walk a table in key order with pg_catalog's = and < operators only, so that no "
        "search_path can change what they call.",
        "Give the table a primary key (or a unique index on NOT NULL columns) of built-in types, "
        "e.g. ALTER TABLE " +
            table + " ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY.");
  }
}

// True when some valid index starts with (tenant column, subject column), or with the subject
// column when the table has no tenant column.
bool has_subject_index(Oid relid, const std::optional<Column>& tenant, const Column& subject) {
  std::string leading = tenant ? "ARRAY[" + pg::quote_literal(tenant->name) + ", " +
                                     pg::quote_literal(subject.name) + "]::name[]"
                               : "ARRAY[" + pg::quote_literal(subject.name) + "]::name[]";
  return pg::spi_query_text(
             "SELECT 1 FROM pg_catalog.pg_index i"
             " WHERE i.indrelid = $1::oid AND i.indisvalid AND i.indpred IS NULL"
             "   AND (SELECT array_agg(a.attname ORDER BY k.ord)"
             "          FROM unnest((i.indkey::int2[])[0:cardinality(" +
                 leading +
                 ") - 1])"
                 "               WITH ORDINALITY k(attnum, ord)"
                 "          JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum)"
                 "       = " +
                 leading + " LIMIT 1",
             {pg::int8_param(static_cast<long long>(relid))})
      .has_value();
}

// WARNING with the exact statement that makes batches use an index: (tenant, subject, key...),
// so that a batch reads the subject's rows in key order straight from the index.
void warn_missing_index(const std::string& qualified, const std::optional<Column>& tenant,
                        const Column& subject, const std::vector<Column>& keys,
                        const std::string& table) {
  std::string columns = tenant ? tenant->quoted + ", " + subject.quoted : subject.quoted;
  for (const Column& key : keys) {
    if (key.name != subject.name && (!tenant || key.name != tenant->name))
      columns += ", " + key.quoted;
  }
  std::string statement = "CREATE INDEX CONCURRENTLY ON " + qualified + " (" + columns + ");";
  std::string message =
      "no index of table " + table + " leads with " +
      (tenant ? "(" + tenant->quoted + ", " + subject.quoted + ")" : "(" + subject.quoted + ")") +
      ": every erase batch will scan the table";
  std::string hint = "Run: " + statement;
  pg::pg_guard(
      [&] { ereport(WARNING, (errmsg("%s", message.c_str()), errhint("%s", hint.c_str()))); });
}

}  // namespace

// privacy.register_table(rel regclass, subject_column name, tenant_column name, on_erase text)
PRIVACY_SQL_FUNCTION(privacy_register_table) {
  privacy::citus_node::refuse_on_worker_node("privacy.register_table");
  privacy::tenant_scope::require(std::nullopt, std::nullopt,
                                 "privacy.register_table");  // platform-wide only
  require_arg(fcinfo, 0, "rel");
  require_arg(fcinfo, 1, "subject_column");
  require_arg(fcinfo, 3, "on_erase");
  Oid relid = PG_GETARG_OID(0);
  std::string subject_name = name_arg(fcinfo, 1);
  std::optional<std::string> tenant_name;
  if (!PG_ARGISNULL(2)) tenant_name = name_arg(fcinfo, 2);
  std::string on_erase = pg::text_arg(fcinfo, 3, "on_erase");

  pg::SpiConnection spi;
  std::string table = pg::relation_display(relid);
  privacy::registry::require_registrable(relid, table);
  privacy::registry::require_owner_privileges(relid, table, "register");
  std::vector<pg::TextRow> rel = pg::spi_query_rows(
      "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname),"
      "       c.relrowsecurity::text, c.relforcerowsecurity::text"
      "  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
      " WHERE c.oid = $1::oid",
      {pg::int8_param(static_cast<long long>(relid))});
  const std::string& qualified = *rel[0][0];
  if (is_registered(relid)) {
    throw Error(sqlstate::kDuplicateObject, "table " + table + " is already registered", "",
                "Call privacy.unregister_table('" + table + "') first to change its registration.");
  }
  if (on_erase != "delete" && on_erase != "anonymize") {
    throw Error(
        sqlstate::kInvalidParameter,
        "on_erase must be 'delete' or 'anonymize', not '" + on_erase + "'", "",
        "'delete' removes the subject's rows; 'anonymize' keeps them with column rules applied.");
  }
  Column subject = require_column(relid, table, subject_name, "subject column");
  std::optional<Column> tenant;
  if (tenant_name) {
    tenant = require_column(relid, table, *tenant_name, "tenant column");
    if (tenant->name == subject.name) {
      throw Error(sqlstate::kInvalidParameter,
                  "the tenant column and the subject column of " + table + " must differ");
    }
  }
  for (const Column* column : {&subject, tenant ? &*tenant : nullptr}) {
    if (column && !privacy::registry::is_identifier_type(*column)) {
      throw Error(sqlstate::kInvalidParameter,
                  "column " + column->quoted + " of " + table + " has type " + column->type_sql +
                      ", which cannot hold a subject or tenant identifier",
                  "", "Use a column of type text, varchar, an integer type or uuid.");
    }
  }
  privacy::citus_tables::require_registrable_on_citus(relid, table, subject.name, tenant_name,
                                                      on_erase);
  if (privacy::registry::load_column(relid, "privacy_erased_by")) {
    throw Error(sqlstate::kDuplicateObject,
                "table " + table + " already has a column privacy_erased_by", "",
                "pg_privacy adds that column itself; rename or drop the existing one.");
  }
  std::vector<privacy::partitions::Partition> partitions =
      privacy::partitions::partitions_of(relid);
  for (const privacy::partitions::Partition& partition : partitions) {
    if (partition.kind == 'f') {
      throw Error(sqlstate::kWrongObjectType,
                  "partition " + partition.display + " of " + table + " is a foreign table", "",
                  "Foreign tables have no row level security: keep the rows in local partitions.");
    }
  }
  std::optional<std::string> policy_owner = pg::spi_query_text(
      "SELECT p.polrelid::regclass::text FROM pg_catalog.pg_policy p"
      " WHERE p.polrelid IN (SELECT $1::oid UNION ALL SELECT relid FROM pg_catalog.pg_partition_tree($1::oid::regclass))"
      "   AND p.polname IN ('privacy_hide_erased', 'privacy_passthrough') LIMIT 1",
      {pg::int8_param(static_cast<long long>(relid))});
  if (policy_owner) {
    throw Error(sqlstate::kDuplicateObject,
                "table " + *policy_owner +
                    " already has a policy named privacy_hide_erased or privacy_passthrough",
                "", "pg_privacy creates these policies itself; drop or rename the existing ones.");
  }
  std::vector<std::string> key_names = find_key(relid);
  if (key_names.empty()) {
    throw Error(sqlstate::kObjectNotInPrerequisiteState,
                "table " + table + " has no primary key and no unique index on NOT NULL columns",
                "Batches address rows by key, so every registered table needs one.",
                "Add one, e.g. ALTER TABLE " + qualified + " ADD PRIMARY KEY (...);");
  }
  std::vector<Column> keys;
  for (const std::string& name : key_names)
    keys.push_back(require_column(relid, table, name, "key column"));
  require_catalog_key_operators(table, keys);

  bool had_rls = rel[0].boolean(1);
  bool had_force = rel[0].boolean(2);
  if (!has_subject_index(relid, tenant, subject))
    warn_missing_index(qualified, tenant, subject, keys, table);

  // Every check has passed: from here on, changes.
  std::string key_columns_sql;
  for (const Column& key : keys)
    key_columns_sql += (key_columns_sql.empty() ? "" : ", ") + key.quoted;
  privacy::softdelete::add_erased_column(qualified, key_columns_sql);
  privacy::softdelete::hide_erased_rows(qualified, had_rls, had_force);

  std::string key_array = "ARRAY[";
  for (size_t i = 0; i < keys.size(); ++i)
    key_array += (i ? ", " : "") + pg::quote_literal(keys[i].name);
  key_array += "]::name[]";
  pg::spi_execute(
      "INSERT INTO privacy.registered_tables (relation, subject_column, tenant_column, key_columns,"
      "  on_erase, had_rls, had_force_rls, registered_by)"
      " VALUES ($1::oid::regclass, $2, $3, " +
          key_array + ", $4, $5, $6, session_user)",
      {pg::int8_param(static_cast<long long>(relid)), pg::text_param(subject.name),
       pg::text_param(tenant_name), pg::text_param(on_erase), pg::bool_param(had_rls),
       pg::bool_param(had_force)});

  privacy::partitions::protect_all(relid, partitions);

  // The hold triggers only while a hold could cover the table (an active tenant or subject hold).
  privacy::holds::sync_triggers_of_new_table(relid);

  std::optional<std::string> detail = pg::spi_query_text(
      "SELECT (jsonb_build_object('subject_column', subject_column, 'tenant_column', tenant_column,"
      "  'key_columns', key_columns, 'on_erase', on_erase, 'had_rls', had_rls,"
      "  'had_force_rls', had_force_rls)"
      "  || CASE WHEN p.names IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('partitions', p.names) END)::text"
      "  FROM privacy.registered_tables r,"
      "       (SELECT jsonb_agg(relation::text ORDER BY relation::text) AS names"
      "          FROM privacy.registered_partitions WHERE registered_table = $1::oid) p"
      " WHERE r.relation = $1::oid",
      {pg::int8_param(static_cast<long long>(relid))}, false);
  privacy::audit::append(
      {"table_registered", std::nullopt, std::nullopt, table, "ok", detail.value_or("{}")});
  PG_RETURN_VOID();
}

// Unregistering removes the hold trigger, so it is refused while any active hold could cover the
// table's rows: a hold naming the table, or any tenant or subject hold.
static void refuse_if_held(Oid relid, const std::string& table) {
  std::optional<privacy::holds::HoldInfo> hold = privacy::holds::hold_on_table(relid);
  if (!hold) return;
  throw Error(sqlstate::kLegalHold,
              "unregistering table " + table + " is blocked by legal hold " +
                  std::to_string(hold->id) + " (" + hold->scope + " " + hold->scope_id + ")",
              "Hold " + std::to_string(hold->id) + " was placed by " + hold->created_by + ": " +
                  hold->reason + ". Unregistering would remove the trigger that enforces it.",
              "Release the hold first (privacy.release_hold), then unregister the table.");
}

// A registration whose table no longer exists (dropped while the DDL guard did not run, e.g.
// before pg_privacy had it): removed, with its partitions and column rules, and audited.
static void forget_dangling(Oid relid) {
  pg::spi_execute("DELETE FROM privacy.registered_tables WHERE relation = $1::oid",
                  {pg::int8_param(static_cast<long long>(relid))});
  privacy::audit::append({"table_unregistered", std::nullopt, std::nullopt, std::to_string(relid),
                          "ok", "{\"dangling\": true}"});
}

// privacy.unregister_table(rel regclass)
PRIVACY_SQL_FUNCTION(privacy_unregister_table) {
  privacy::citus_node::refuse_on_worker_node("privacy.unregister_table");
  privacy::tenant_scope::require(std::nullopt, std::nullopt,
                                 "privacy.unregister_table");  // platform-wide only
  require_arg(fcinfo, 0, "rel");
  Oid relid = PG_GETARG_OID(0);
  pg::SpiConnection spi;
  std::string table = pg::relation_display(relid);
  bool exists = pg::spi_query_text("SELECT 1 FROM pg_catalog.pg_class WHERE oid = $1::oid",
                                   {pg::int8_param(static_cast<long long>(relid))})
                    .has_value();
  if (!exists && is_registered(relid)) {
    forget_dangling(relid);
    PG_RETURN_VOID();
  }
  std::optional<privacy::registry::TableInfo> info = privacy::registry::load_table(relid);
  if (!info) {
    throw Error(sqlstate::kInvalidParameter, "table " + table + " is not registered", "",
                "SELECT relation FROM privacy.registered_tables lists the registered tables.");
  }
  privacy::registry::require_owner_privileges(relid, table, "unregister");
  // No batch may mark rows between the check and the change (LOCK TABLE reaches every partition).
  pg::spi_execute("LOCK TABLE " + info->qualified + " IN ACCESS EXCLUSIVE MODE");
  std::vector<pg::TextRow> waiting;
  {
    pg::TableOwnerScope owner(relid);  // application data is read as its owner (docs/security.md)
    waiting = pg::spi_query_rows(
        "SELECT pg_catalog.count(*)::pg_catalog.text,"
        "       pg_catalog.string_agg(DISTINCT privacy_erased_by::pg_catalog.text, ', ')"
        "  FROM " +
            info->qualified + " WHERE privacy_erased_by IS NOT NULL",
        {}, false);
  }
  if (waiting[0][0] && *waiting[0][0] != "0") {
    throw Error(
        sqlstate::kObjectNotInPrerequisiteState,
        "table " + table + " still has " + *waiting[0][0] + " erased rows awaiting finalization",
        "Rows are marked by job(s) " + waiting[0][1].value_or("") + ".",
        "Restore them with privacy.restore(job_id, '" + table +
            "') or wait until the jobs are finalized, then unregister.");
  }
  refuse_if_held(relid, table);
  std::vector<pg::TextRow> state = pg::spi_query_rows(
      "SELECT had_rls::text, had_force_rls::text FROM privacy.registered_tables WHERE relation = $1::oid",
      {pg::int8_param(static_cast<long long>(relid))}, false);
  privacy::partitions::release_all(relid);
  privacy::softdelete::show_all_rows(info->qualified, state[0].boolean(0), state[0].boolean(1));
  privacy::softdelete::drop_erased_column(info->qualified);
  privacy::holds::detach_triggers(relid);
  pg::spi_execute("DELETE FROM privacy.registered_tables WHERE relation = $1::oid",
                  {pg::int8_param(static_cast<long long>(relid))});
  privacy::audit::append(
      {"table_unregistered", std::nullopt, std::nullopt, table, "ok",
       "{\"restored_rls\": " + std::string(state[0].boolean(0) ? "true" : "false") +
           ", \"restored_force_rls\": " + (state[0].boolean(1) ? "true" : "false") + "}"});
  PG_RETURN_VOID();
}

// privacy.set_column_rule(rel regclass, column_name name, rule text)
PRIVACY_SQL_FUNCTION(privacy_set_column_rule) {
  privacy::citus_node::refuse_on_worker_node("privacy.set_column_rule");
  privacy::tenant_scope::require(std::nullopt, std::nullopt,
                                 "privacy.set_column_rule");  // platform-wide only
  require_arg(fcinfo, 0, "rel");
  require_arg(fcinfo, 1, "column_name");
  require_arg(fcinfo, 2, "rule");
  Oid relid = PG_GETARG_OID(0);
  std::string column_name = name_arg(fcinfo, 1);
  std::string rule = pg::text_arg(fcinfo, 2, "rule");
  pg::SpiConnection spi;
  std::string table = pg::relation_display(relid);
  std::optional<privacy::registry::TableInfo> info = privacy::registry::load_table(relid);
  if (!info) {
    throw Error(sqlstate::kInvalidParameter, "table " + table + " is not registered", "",
                "Register it first: privacy.register_table('" + table +
                    "', subject_column, tenant_column, 'anonymize').");
  }
  privacy::registry::require_owner_privileges(relid, table, "set a column rule of");
  if (rule != "null" && rule != "redact" && rule != "hash" && rule != "keep" &&
      rule != "tombstone") {
    throw Error(sqlstate::kInvalidParameter, "unknown column rule '" + rule + "'", "",
                "Use 'null', 'redact', 'hash', 'keep', or 'tombstone' for the subject column.");
  }
  if (info->on_erase != "anonymize") {
    throw Error(
        sqlstate::kObjectNotInPrerequisiteState,
        "table " + table + " is registered with on_erase 'delete', so column rules never apply", "",
        "Unregister it and register it again with on_erase => 'anonymize'.");
  }
  Column column = require_column(relid, table, column_name, "column");
  if (column.name == "privacy_erased_by") {
    throw Error(sqlstate::kInvalidParameter,
                "privacy_erased_by is managed by pg_privacy and takes no rule");
  }
  if (column.name == info->subject.name) {
    std::string refusal = privacy::registry::subject_rule_refusal(column, rule);
    if (!refusal.empty()) {
      throw Error(
          sqlstate::kInvalidParameter,
          "the subject column " + column.quoted + " of " + table + " cannot take rule '" + rule +
              "': " + refusal,
          "Anonymization replaces the subject id of every row it keeps.",
          "Use 'hash' (text columns of 64 characters or more), 'null' (nullable columns) or 'tombstone' "
          "(the tenant's tombstone_subject, see privacy.configure_tenant).");
    }
  } else if (rule == "tombstone") {
    throw Error(sqlstate::kInvalidParameter,
                "rule 'tombstone' is for the subject column " + info->subject.quoted + " of " +
                    table + " only, not for " + column.quoted,
                "", "Use 'null', 'redact', 'hash' or 'keep'.");
  }
  for (const Column& key : info->keys) {
    if (key.name == column.name && rule != "keep" && column.name != info->subject.name) {
      throw Error(sqlstate::kInvalidParameter,
                  "column " + column.quoted + " is part of the key of " + table +
                      " and cannot be anonymized",
                  "Batches and foreign keys address rows by this key.",
                  "Use rule 'keep' for key columns.");
    }
  }
  if (rule == "null" && column.not_null) {
    throw Error(
        sqlstate::kInvalidParameter,
        "column " + column.quoted + " of " + table + " is NOT NULL, so rule 'null' cannot apply",
        "", "Use 'redact' (a constant of the column's type) or 'hash'.");
  }
  if (rule == "redact" && privacy::registry::redact_constant(column).empty()) {
    throw Error(sqlstate::kInvalidParameter,
                "column " + column.quoted + " of " + table + " has type " + column.type_sql +
                    ", which has no redaction constant, and is NOT NULL",
                "", "Use 'hash' for text columns, or make the column nullable.");
  }
  if (rule == "hash" && !privacy::registry::holds_pseudonym(column)) {
    throw Error(sqlstate::kInvalidParameter,
                "column " + column.quoted + " of " + table + " (" + column.type_sql +
                    ") cannot hold the 64-character pseudonym of rule 'hash'",
                "", "Use 'redact' or 'null' for this column.");
  }
  std::optional<std::string> previous = pg::spi_query_text(
      "SELECT rule FROM privacy.column_rules WHERE relation = $1::oid AND column_name = $2",
      {pg::int8_param(static_cast<long long>(relid)), pg::text_param(column.name)}, false);
  pg::spi_execute(
      "INSERT INTO privacy.column_rules (relation, column_name, rule, set_by, set_at)"
      " VALUES ($1::oid::regclass, $2, $3, session_user, now())"
      " ON CONFLICT (relation, column_name) DO UPDATE SET rule = EXCLUDED.rule,"
      "   set_by = EXCLUDED.set_by, set_at = EXCLUDED.set_at",
      {pg::int8_param(static_cast<long long>(relid)), pg::text_param(column.name),
       pg::text_param(rule)});
  std::string detail = privacy::core::json_object({{"setting", "column_rule"},
                                                   {"relation", table},
                                                   {"column", column.name},
                                                   {"rule", rule},
                                                   {"previous", previous}});
  privacy::audit::append({"settings_changed", std::nullopt, std::nullopt, table, "ok", detail});
  PG_RETURN_VOID();
}
