// Registered tables on Citus (citus/tables.hpp, docs/citus.md "Distributed and reference tables").
#include "citus/tables.hpp"

#include "core/json.hpp"
#include "access/tenant_scope.hpp"
#include "audit/audit.hpp"
#include "citus/node.hpp"
#include "pg/boundary.hpp"
#include "pg/security_context.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "access/xact.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/timestamp.h"
}

#include <cstring>
#include <vector>

namespace privacy::citus_tables {

namespace {

using pg::oid_param;
using pg::text_param;

// ----- the hide policy is restrictive wherever it is created ----------------------------------

ProcessUtility_hook_type previous_utility_hook = nullptr;

// CREATE POLICY privacy_hide_erased ... (permissive) becomes AS RESTRICTIVE before it runs.
// Restrictive policies are AND-ed with the others, so this can only ever hide rows: it is safe
// for any table and any role, and it is the one way to be there when Citus (which deparses
// policies without AS RESTRICTIVE, on every path that builds a shard or a table from its
// catalog) runs the statement on a worker. Plain C: no C++ object lives across the call below.
void restrictive_hide_policy(PlannedStmt* statement, const char* query_string, bool read_only_tree,
                             ProcessUtilityContext context, ParamListInfo params,
                             QueryEnvironment* query_env, DestReceiver* dest,
                             QueryCompletion* completion) {
  Node* tree = statement->utilityStmt;
  if (tree != nullptr && IsA(tree, CreatePolicyStmt)) {
    auto* create = reinterpret_cast<CreatePolicyStmt*>(tree);
    if (create->permissive && create->policy_name != nullptr &&
        std::strcmp(create->policy_name, kHidePolicy) == 0) {
      statement =
          static_cast<PlannedStmt*>(copyObjectImpl(statement));  // the caller's tree may be cached
      reinterpret_cast<CreatePolicyStmt*>(statement->utilityStmt)->permissive = false;
      read_only_tree = false;
    }
  }
  if (previous_utility_hook != nullptr) {
    previous_utility_hook(statement, query_string, read_only_tree, context, params, query_env, dest,
                          completion);
  } else {
    standard_ProcessUtility(statement, query_string, read_only_tree, context, params, query_env,
                            dest, completion);
  }
}

// ----- verification and repair from the coordinator -------------------------------------------

// Run on each placement by run_command_on_placements (format(): %1$s is the shard's name):
// 'ok', or what is wrong with it.
const char* kPlacementCheck =
    "SELECT CASE"
    " WHEN NOT EXISTS (SELECT FROM pg_catalog.pg_attribute WHERE attrelid = '%1$s'::pg_catalog.regclass"
    "                   AND attname = 'privacy_erased_by' AND NOT attisdropped) THEN 'no column privacy_erased_by'"
    " WHEN NOT EXISTS (SELECT FROM pg_catalog.pg_policy WHERE polrelid = '%1$s'::pg_catalog.regclass"
    "                   AND polname = 'privacy_hide_erased' AND NOT polpermissive AND polcmd = '*'"
    "                   AND polroles = '{0}' AND pg_catalog.pg_get_expr(polqual, polrelid) = '(privacy_erased_by IS NULL)')"
    "   THEN 'policy privacy_hide_erased missing or not restrictive'"
    " WHEN NOT (SELECT relrowsecurity AND relforcerowsecurity FROM pg_catalog.pg_class"
    "            WHERE oid = '%1$s'::pg_catalog.regclass) THEN 'row level security not enabled and forced'"
    " ELSE 'ok' END";

// What registration does to a relation (softdelete::hide_erased_rows), for one placement.
const char* kPlacementRepair =
    "DROP POLICY IF EXISTS privacy_hide_erased ON %1$s;"
    " CREATE POLICY privacy_hide_erased ON %1$s AS RESTRICTIVE FOR ALL TO PUBLIC USING (privacy_erased_by IS NULL);"
    " ALTER TABLE %1$s ENABLE ROW LEVEL SECURITY;"
    " ALTER TABLE %1$s FORCE ROW LEVEL SECURITY";

struct CitusTable {
  Oid relid;
  std::string display;
  bool has_shell_rows;  // rows on disk in the coordinator's shell table
  std::string subject_column;
  std::optional<std::string> tenant_column;
  std::string on_erase;
};

// The registered tables Citus distributes (hash) or replicates (reference). Citus local tables
// keep their rows on the coordinator like plain tables and are checked like them.
std::vector<CitusTable> registered_citus_tables() {
  std::vector<CitusTable> tables;
  for (
      const pg::TextRow& row : pg::spi_query_rows(
          "SELECT r.relation::pg_catalog.oid::pg_catalog.text, r.relation::pg_catalog.text,"
          "       (pg_catalog.pg_relation_size(r.relation) OPERATOR(pg_catalog.>) 0)::pg_catalog.text,"
          "       r.subject_column::pg_catalog.text, r.tenant_column::pg_catalog.text, r.on_erase"
          "  FROM privacy.registered_tables r"
          "  JOIN pg_catalog.pg_dist_partition p ON p.logicalrelid OPERATOR(pg_catalog.=) r.relation"
          " WHERE p.partmethod OPERATOR(pg_catalog.=) 'h' OR p.repmodel OPERATOR(pg_catalog.=) 't'"
          " ORDER BY 1")) {
    tables.push_back(
        CitusTable{pg::oid_from_text(row[0]), *row[1], row.boolean(2), *row[3], row[4], *row[5]});
  }
  return tables;
}

// Placements of `table` that are not in order: "shard N on host:port: what".
std::vector<std::string> placement_problems(const CitusTable& table) {
  std::vector<std::string> problems;
  pg::TableOwnerScope owner(table.relid);  // Citus connects to the workers as the table's owner
  for (
      const pg::TextRow& row : pg::spi_query_rows(
          "SELECT shardid::pg_catalog.text, nodename OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) nodeport,"
          "       CASE WHEN success THEN result ELSE 'unreachable: ' OPERATOR(pg_catalog.||) result END"
          "  FROM pg_catalog.run_command_on_placements($1::pg_catalog.oid::pg_catalog.regclass, $2)"
          " WHERE NOT success OR result OPERATOR(pg_catalog.<>) 'ok' ORDER BY 1, 2",
          {oid_param(table.relid), text_param(kPlacementCheck)})) {
    problems.push_back("shard " + *row[0] + " on " + *row[1] + ": " + row[2].value_or("?"));
  }
  return problems;
}

void repair_placements(const CitusTable& table) {
  pg::TableOwnerScope owner(table.relid);
  pg::spi_query_rows(
      "SELECT pg_catalog.run_command_on_placements($1::pg_catalog.oid::pg_catalog.regclass, $2)",
      {oid_param(table.relid), text_param(kPlacementRepair)});
}

// create_distributed_table and create_reference_table copy a table's rows to the shards and
// leave them on disk in the coordinator's shell table, where no query sees them and no erasure
// reaches them. They are a stale copy: removing them loses nothing.
void remove_shell_rows(const CitusTable& table) {
  {
    pg::TableOwnerScope owner(table.relid);
    pg::spi_query_rows(
        "SELECT pg_catalog.truncate_local_data_after_distributing_table($1::pg_catalog.oid::pg_catalog.regclass)",
        {oid_param(table.relid)});
  }
  audit::append({"citus_repaired", std::nullopt, std::nullopt, table.display, "ok",
                 "{\"removed\": \"rows left in the coordinator's shell table\"}"});
}

std::string json_array(const std::vector<std::string>& values) {
  std::vector<std::string> quoted;
  for (const std::string& value : values) quoted.push_back(core::json_string(value));
  return core::json_array_of_values(quoted);
}

// ----- what pg_privacy cannot make safe ---------------------------------------------------------

constexpr const char* kLayoutHint =
    "Distribute the table by its tenant column (or, for single-tenant tables, its subject column) and "
    "keep restrictive policies off distributed tables; a table distributed by its subject column needs "
    "on_erase 'delete' (docs/citus.md, \"What is refused\").";

// Why a Citus table cannot be kept safe, if it cannot: empty for plain tables and good layouts.
std::vector<std::string> citus_layout_problems(Oid relid, const std::string& subject_column,
                                               const std::optional<std::string>& tenant_column,
                                               const std::string& on_erase) {
  std::vector<std::string> problems;
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "SELECT p.partmethod::pg_catalog.text,"
      "       CASE WHEN p.partmethod OPERATOR(pg_catalog.=) 'h'"
      "            THEN pg_catalog.column_to_column_name(p.logicalrelid, p.partkey) END,"
      "       (SELECT pg_catalog.string_agg(pol.polname::pg_catalog.text, ', ' ORDER BY pol.polname)"
      "          FROM pg_catalog.pg_policy pol WHERE pol.polrelid OPERATOR(pg_catalog.=) p.logicalrelid"
      "           AND NOT pol.polpermissive AND pol.polname OPERATOR(pg_catalog.<>) 'privacy_hide_erased')"
      "  FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid OPERATOR(pg_catalog.=) $1::pg_catalog.oid",
      {oid_param(relid)});
  if (rows.empty()) return problems;
  const std::string& method = *rows[0][0];
  if (method == "a" || method == "r") {
    problems.push_back(
        std::string(method == "a" ? "append" : "range") +
        "-distributed tables are not supported: only hash-distributed and reference tables are");
  }
  if (rows[0][1] && *rows[0][1] != subject_column &&
      (!tenant_column || *rows[0][1] != *tenant_column)) {
    problems.push_back(
        "it is distributed by column \"" + *rows[0][1] +
        "\", which is neither its tenant nor its subject column, so erasing one subject would"
        " send every batch to every shard");
  }
  if (rows[0][1] && *rows[0][1] == subject_column && on_erase == "anonymize") {
    problems.push_back(
        "it is distributed by its subject column and anonymized on erase (on_erase 'anonymize'),"
        " which rewrites the subject: Citus lets no row change its distribution column, so every"
        " finalization would fail");
  }
  if (rows[0][2]) {
    problems.push_back(
        "Citus 13 re-creates restrictive policies as permissive on its shards, so its policies " +
        *rows[0][2] + " would widen access there");
  }
  return problems;
}

// ----- the launcher step ------------------------------------------------------------------------

// Where the placements of the registered Citus tables are: a change means shards were created,
// moved, copied or split, or a table was re-created, and the placements are checked again.
std::optional<std::string> placement_fingerprint() {
  return pg::spi_query_text(
      "SELECT pg_catalog.md5(pg_catalog.string_agg(s.logicalrelid::pg_catalog.oid::pg_catalog.text"
      "         OPERATOR(pg_catalog.||) '/' OPERATOR(pg_catalog.||) pl.placementid::pg_catalog.text"
      "         OPERATOR(pg_catalog.||) '/' OPERATOR(pg_catalog.||) pl.groupid::pg_catalog.text, ','"
      "         ORDER BY pl.placementid))"
      "  FROM privacy.registered_tables r"
      "  JOIN pg_catalog.pg_dist_shard s ON s.logicalrelid OPERATOR(pg_catalog.=) r.relation"
      "  JOIN pg_catalog.pg_dist_placement pl ON pl.shardid OPERATOR(pg_catalog.=) s.shardid");
}

// Besides every change of placements, all placements are checked this often: a DROP POLICY run
// by hand on a shard changes no Citus metadata.
constexpr long kFullCheckSeconds = 60;

std::string last_fingerprint;
TimestampTz last_full_check = 0;

}  // namespace

// The launcher's step "Citus placements".
void verify_citus_tables() {
  if (!citus_node::citus_installed()) return;
  std::string fingerprint = placement_fingerprint().value_or("");
  bool placements_changed = fingerprint != last_fingerprint;
  bool full_check_due =
      TimestampDifferenceExceeds(last_full_check, GetCurrentTimestamp(), kFullCheckSeconds * 1000);
  if (!placements_changed && !full_check_due) {
    // Only the cheap local part: a table distributed since the last cycle leaves rows behind.
    for (const CitusTable& table : registered_citus_tables()) {
      if (table.has_shell_rows) remove_shell_rows(table);
    }
    return;
  }
  std::string problems = verify_and_repair();
  if (!problems.empty())
    elog(WARNING, "pg_privacy: registered Citus tables are not safe: %s", problems.c_str());
  last_fingerprint = fingerprint;
  last_full_check = GetCurrentTimestamp();
}

namespace {

// ----- alter_distributed_table ------------------------------------------------------------------

// A registration dropped with its table in this transaction: the row and its column rules as
// JSON, without the relation (it names a table that no longer exists).
struct DroppedRegistration {
  Oid relation;
  std::string schema;
  std::string name;
  std::string registration_json;
  std::string column_rules_json;
};

std::vector<DroppedRegistration> dropped_this_transaction;

void forget_at_transaction_end(XactEvent event, void*) {
  if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE ||
      event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT) {
    dropped_this_transaction.clear();
  }
}

void register_callback_once() {
  static bool registered = false;
  if (registered) return;
  pg::pg_guard([] { RegisterXactCallback(forget_at_transaction_end, nullptr); });
  registered = true;
}

// Whether `relation` carries what registration added: the column, and the hide policy
// restrictive (the utility hook made it so when Citus re-created it) with RLS forced.
bool carries_registration(Oid relation) {
  return pg::spi_query_text(
             "SELECT 1 FROM pg_catalog.pg_class c"
             " WHERE c.oid = $1::oid AND c.relrowsecurity AND c.relforcerowsecurity"
             "   AND EXISTS (SELECT FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid"
             "                 AND a.attname = 'privacy_erased_by' AND NOT a.attisdropped)"
             "   AND EXISTS (SELECT FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid"
             "                 AND p.polname = 'privacy_hide_erased' AND NOT p.polpermissive)"
             "   AND EXISTS (SELECT FROM pg_catalog.pg_dist_partition d WHERE d.logicalrelid = c.oid)",
             {oid_param(relation)})
      .has_value();
}

}  // namespace

void require_registrable_on_citus(Oid relid, const std::string& table,
                                  const std::string& subject_column,
                                  const std::optional<std::string>& tenant_column,
                                  const std::string& on_erase) {
  if (!citus_node::citus_installed()) return;
  for (const std::string& problem :
       citus_layout_problems(relid, subject_column, tenant_column, on_erase)) {
    throw core::Error(core::sqlstate::kFeatureNotSupported,
                      "table " + table + " cannot be registered: " + problem, "", kLayoutHint);
  }
}

bool is_citus_table(Oid relation) {
  if (!citus_node::citus_installed()) return false;
  return pg::spi_query_text(
             "SELECT 1 FROM pg_catalog.pg_dist_partition"
             " WHERE logicalrelid OPERATOR(pg_catalog.=) $1::pg_catalog.oid",
             {oid_param(relation)})
      .has_value();
}

bool distributed_by(Oid relation, const std::string& column) {
  if (!citus_node::citus_installed()) return false;
  return pg::spi_query_text(
             "SELECT 1 FROM pg_catalog.pg_dist_partition p"
             " WHERE p.logicalrelid OPERATOR(pg_catalog.=) $1::pg_catalog.oid"
             "   AND p.partmethod OPERATOR(pg_catalog.=) 'h'"
             "   AND pg_catalog.column_to_column_name(p.logicalrelid, p.partkey) OPERATOR(pg_catalog.=) $2",
             {oid_param(relation), text_param(column)})
      .has_value();
}

void install_restrictive_policy_hook() {
  previous_utility_hook = ProcessUtility_hook;
  ProcessUtility_hook = restrictive_hide_policy;
}

namespace {

// Lists `relation` in privacy.citus_unverified with what is left wrong, or removes it (nothing
// left).
void record_verification(Oid relation, const std::vector<std::string>& left) {
  if (left.empty()) {
    pg::spi_execute(
        "DELETE FROM privacy.citus_unverified WHERE relation OPERATOR(pg_catalog.=) $1::pg_catalog.oid",
        {oid_param(relation)});
    return;
  }
  std::string problems;
  for (const std::string& problem : left) problems += (problems.empty() ? "" : "; ") + problem;
  pg::spi_execute(
      "INSERT INTO privacy.citus_unverified (relation, problems) VALUES ($1::pg_catalog.oid::pg_catalog.regclass, $2)"
      " ON CONFLICT (relation) DO UPDATE SET problems = EXCLUDED.problems",
      {oid_param(relation), text_param(problems)});
}

}  // namespace

std::string verify_and_repair() {
  std::string problems;
  // Tables no longer registered (or no longer Citus tables) are not refused any more.
  pg::spi_execute(
      "DELETE FROM privacy.citus_unverified u WHERE NOT EXISTS (SELECT FROM privacy.registered_tables r"
      "  JOIN pg_catalog.pg_dist_partition p ON p.logicalrelid OPERATOR(pg_catalog.=) r.relation"
      " WHERE r.relation OPERATOR(pg_catalog.=) u.relation)");
  for (const CitusTable& table : registered_citus_tables()) {
    if (table.has_shell_rows) remove_shell_rows(table);
    for (const std::string& problem : citus_layout_problems(table.relid, table.subject_column,
                                                            table.tenant_column, table.on_erase)) {
      problems += (problems.empty() ? "" : "; ") + table.display + ": " + problem;
    }
    std::vector<std::string> left;
    std::vector<std::string> found = placement_problems(table);
    if (!found.empty()) {
      repair_placements(table);
      left = placement_problems(table);
      audit::append({"citus_repaired", std::nullopt, std::nullopt, table.display,
                     left.empty() ? "ok" : "error",
                     "{\"found\": " + json_array(found) + ", \"left\": " + json_array(left) + "}"});
      for (const std::string& problem : left)
        problems += (problems.empty() ? "" : "; ") + table.display + " " + problem;
    }
    record_verification(table.relid, left);
  }
  return problems;
}

void require_verified(Oid relation, const std::string& display, const std::string& what) {
  if (!citus_node::citus_installed()) return;
  pg::SpiConnection spi;
  std::optional<std::string> problems = pg::spi_query_text(
      "SELECT problems FROM privacy.citus_unverified WHERE relation OPERATOR(pg_catalog.=) $1::pg_catalog.oid",
      {oid_param(relation)});
  if (!problems) return;
  throw core::Error(
      core::sqlstate::kObjectNotInPrerequisiteState,
      what + " cannot write to " + display +
          ": its Citus placements failed verification and could not be repaired, so erased rows"
          " might not be hidden there",
      "Left wrong: " + *problems,
      "Fix the placements named (docs/citus.md, \"What is refused\") and run SELECT "
      "privacy.citus_verify(); then privacy.retry() runs a failed request again (a finalization "
      "goes on at its next run).");
}

void send_lock_timeout_to_shards(int lock_timeout_ms) {
  if (!citus_node::citus_installed()) return;
  // Two statements: Citus sends the text of the SET statement as it is.
  pg::spi_execute("SET LOCAL citus.propagate_set_commands = 'local'");
  pg::spi_execute("SET LOCAL lock_timeout = " + std::to_string(lock_timeout_ms));
}

void remember_dropped_registration(Oid relation, const std::string& schema,
                                   const std::string& name) {
  if (!citus_node::citus_installed()) return;
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "SELECT (pg_catalog.to_jsonb(r) OPERATOR(pg_catalog.-) 'relation')::text,"
      "       COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(c) OPERATOR(pg_catalog.-) 'relation')"
      "                   FROM privacy.column_rules c WHERE c.relation = r.relation), '[]')::text"
      "  FROM privacy.registered_tables r WHERE r.relation = $1::oid"
      "   AND NOT EXISTS (SELECT FROM privacy.registered_partitions p WHERE p.registered_table = r.relation)",
      {oid_param(relation)});
  if (rows.empty()) return;
  register_callback_once();
  dropped_this_transaction.push_back(
      DroppedRegistration{relation, schema, name, *rows[0][0], *rows[0][1]});
}

void reattach_renamed_table(Oid relation) {
  if (dropped_this_transaction.empty()) return;
  std::vector<pg::TextRow> names = pg::spi_query_rows(
      "SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_class c"
      "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::oid",
      {oid_param(relation)});
  if (names.empty()) return;
  for (auto dropped = dropped_this_transaction.begin(); dropped != dropped_this_transaction.end();
       ++dropped) {
    if (dropped->schema != *names[0][0] || dropped->name != *names[0][1]) continue;
    if (!carries_registration(relation)) return;
    pg::spi_execute(
        "INSERT INTO privacy.registered_tables (relation, subject_column, tenant_column, key_columns, on_erase,"
        "  had_rls, had_force_rls, registered_by, registered_at)"
        " SELECT $1::oid::regclass, r.subject_column, r.tenant_column, r.key_columns, r.on_erase,"
        "        r.had_rls, r.had_force_rls, r.registered_by, r.registered_at"
        "   FROM pg_catalog.jsonb_populate_record(NULL::privacy.registered_tables, $2::jsonb) r",
        {oid_param(relation), text_param(dropped->registration_json)});
    pg::spi_execute(
        "INSERT INTO privacy.column_rules (relation, column_name, rule, set_by, set_at)"
        " SELECT $1::oid::regclass, c.column_name, c.rule, c.set_by, c.set_at"
        "   FROM pg_catalog.jsonb_populate_recordset(NULL::privacy.column_rules, $2::jsonb) c",
        {oid_param(relation), text_param(dropped->column_rules_json)});
    std::string table = pg::relation_display(relation);
    audit::append({"table_reattached", std::nullopt, std::nullopt, table, "ok",
                   "{\"previous_relation\": " + std::to_string(dropped->relation) +
                       ", \"relation\": " + std::to_string(relation) +
                       ", \"by\": \"alter_distributed_table\"}"});
    dropped_this_transaction.erase(dropped);
    return;
  }
}

}  // namespace privacy::citus_tables

// privacy.citus_verify(): NULL when every registered Citus table is safe, else what is left.
// Platform-wide roles only.
PRIVACY_SQL_FUNCTION(privacy_citus_verify) {
  privacy::citus_node::refuse_on_worker_node("privacy.citus_verify");
  // It repairs the placements of every registered table: an act on the whole platform
  // (docs/security.md, "Tenant scopes").
  privacy::tenant_scope::require(std::nullopt, std::nullopt, "privacy.citus_verify");
  privacy::pg::SpiConnection spi;
  if (!privacy::citus_node::citus_installed()) PG_RETURN_NULL();
  std::string problems = privacy::citus_tables::verify_and_repair();
  if (problems.empty()) PG_RETURN_NULL();
  PG_RETURN_TEXT_P(privacy::pg::pg_guard([&] { return cstring_to_text(problems.c_str()); }));
}
