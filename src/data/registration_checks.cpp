// Who may register which relation (data/registration_checks.hpp).
#include "data/registration_checks.hpp"

#include "pg/boundary.hpp"
#include "pg/spi.hpp"

#include <optional>
#include <vector>

namespace privacy::registry {

using core::Error;
namespace sqlstate = core::sqlstate;

namespace {

// What the checks need to know about the relation, as text rows:
//  0 relkind, 1 schema, 2 relpersistence, 3 the extension the table or its schema belongs to,
//  4 the top of its partition tree when it is a partition, 5 its inheritance parent,
//  6 one of its inheritance children (classic inheritance only, not partitions),
//  7 whether its schema is a system schema.
constexpr const char* kRelationFacts =
    "SELECT c.relkind::text, n.nspname::text, c.relpersistence::text,"
    "       (SELECT e.extname::text FROM pg_catalog.pg_depend d"
    "          JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid"
    "         WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND d.deptype = 'e'"
    "           AND ((d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid)"
    "             OR (d.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass AND d.objid = c.relnamespace))"
    "         LIMIT 1),"
    "       CASE WHEN c.relispartition THEN pg_catalog.pg_partition_root(c.oid)::pg_catalog.regclass::text END,"
    "       (SELECT i.inhparent::pg_catalog.regclass::text FROM pg_catalog.pg_inherits i"
    "         WHERE i.inhrelid = c.oid AND NOT c.relispartition LIMIT 1),"
    "       (SELECT i.inhrelid::pg_catalog.regclass::text FROM pg_catalog.pg_inherits i"
    "          JOIN pg_catalog.pg_class child ON child.oid = i.inhrelid"
    "         WHERE i.inhparent = c.oid AND NOT child.relispartition LIMIT 1),"
    "       (n.nspname IN ('pg_catalog', 'information_schema') OR n.nspname LIKE 'pg\\_toast%')::text"
    "  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.oid = $1::oid";

// "view", "sequence", ... for a relkind that is not a table; "" for 'r' and 'p'.
std::string kind_name(const std::string& relkind) {
  if (relkind == "r" || relkind == "p") return "";
  if (relkind == "v") return "view";
  if (relkind == "m") return "materialized view";
  if (relkind == "f") return "foreign table";
  if (relkind == "S") return "sequence";
  if (relkind == "i" || relkind == "I") return "index";
  if (relkind == "c") return "composite type";
  if (relkind == "t") return "TOAST table";
  return "relation of kind '" + relkind + "'";
}

}  // namespace

void require_registrable(Oid relid, const std::string& table) {
  std::vector<pg::TextRow> rows =
      pg::spi_query_rows(kRelationFacts, {pg::int8_param(static_cast<long long>(relid))});
  if (rows.empty()) {
    throw Error(sqlstate::kUndefinedTable,
                "relation with OID " + std::to_string(relid) + " does not exist");
  }
  const pg::TextRow& facts = rows[0];
  const std::string& schema = *facts[1];
  if (facts.boolean(7)) {
    throw Error(
        sqlstate::kInsufficientPrivilege,
        "relation " + table + " is in system schema " + schema + " and cannot be registered", "",
        "Register the application's own tables.");
  }
  if (facts[3]) {
    throw Error(
        sqlstate::kInsufficientPrivilege,
        "table " + table + " belongs to extension " + *facts[3] + " and cannot be registered",
        "The extension manages its tables (or their schema); pg_privacy must not change them.",
        "Register the application's own tables.");
  }
  std::string kind = kind_name(*facts[0]);
  if (!kind.empty()) {
    std::string hint =
        *facts[0] == "f"
            ? "Foreign tables have no row level security: register the table where the rows are stored."
            : "Register the table that stores the rows.";
    throw Error(sqlstate::kWrongObjectType, "relation " + table + " is a " + kind + ", not a table",
                "", hint);
  }
  if (facts[4]) {
    throw Error(
        sqlstate::kWrongObjectType, "table " + table + " is a partition of " + *facts[4],
        "pg_privacy protects a partitioned table together with all its partitions.",
        "Register its partitioned table: privacy.register_table('" + *facts[4] + "', ...).");
  }
  if (*facts[2] == "t") {
    throw Error(
        sqlstate::kFeatureNotSupported, "table " + table + " is temporary and cannot be registered",
        "Jobs run in background workers, which cannot see another session's temporary tables.",
        "Register a permanent table.");
  }
  if (facts[5] || facts[6]) {
    std::string relation =
        facts[5] ? "it inherits from " + *facts[5] : *facts[6] + " inherits from it";
    throw Error(
        sqlstate::kFeatureNotSupported,
        "table " + table + " takes part in table inheritance (" + relation +
            ") and cannot be registered",
        "Rows read through an inheritance parent are not filtered by the child's row level security.",
        "Use declarative partitioning (PARTITION BY) instead: partitioned tables can be registered.");
  }
}

void require_owner_privileges(Oid relid, const std::string& table, const std::string& action) {
  // The table first, then its partitions at every level.
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "SELECT m.relid::pg_catalog.regclass::text, pg_catalog.pg_get_userbyid(c.relowner)::text,"
      "       pg_catalog.pg_has_role(session_user, c.relowner, 'USAGE')::text,"
      "       pg_catalog.has_schema_privilege(session_user, c.relnamespace, 'USAGE')::text,"
      "       n.nspname::text, session_user::text"
      "  FROM (SELECT $1::oid AS relid, 0 AS level"
      "        UNION ALL SELECT p.relid::oid, p.level"
      "          FROM pg_catalog.pg_partition_tree($1::oid::pg_catalog.regclass) p WHERE p.level > 0) m"
      "  JOIN pg_catalog.pg_class c ON c.oid = m.relid"
      "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
      " ORDER BY m.level, m.relid",
      {pg::int8_param(static_cast<long long>(relid))});
  for (const pg::TextRow& row : rows) {
    const std::string& relation = *row[0];
    const std::string& owner = *row[1];
    const std::string& caller = *row[5];
    std::string refused = "permission denied to " + action + " table " + table + ": ";
    std::string which = relation == table ? "it" : "its partition " + relation;
    if (!row.boolean(2)) {
      throw Error(
          sqlstate::kInsufficientPrivilege, refused + which + " is owned by " + owner,
          "pg_privacy changes the table as only its owner may (a column, policies, row level security, "
          "triggers); session user " +
              caller + " does not have the privileges of role " + owner + ".",
          "Let a member of role " + owner + " " + action +
              " it, or give the table an owner you belong to "
              "(ALTER TABLE " +
              relation + " OWNER TO ...).");
    }
    if (!row.boolean(3)) {
      throw Error(sqlstate::kInsufficientPrivilege,
                  refused + "session user " + caller + " has no USAGE on schema " + *row[4] +
                      (relation == table ? "" : " of its partition " + relation),
                  "",
                  "GRANT USAGE ON SCHEMA " + pg::quote_ident(*row[4]) + " TO " +
                      pg::quote_ident(caller) + ";");
    }
  }
}

}  // namespace privacy::registry
