// The DDL guard of registered tables (data/ddl_guard.hpp, docs/soft-delete.md "Registration and the
// tamper guard").
//
// How a tamper is recognized. Rather than listing the statements that could break something
// (ALTER TABLE ... NO FORCE, DROP POLICY, DROP COLUMN ... CASCADE, CREATE OR REPLACE TRIGGER, and
// whatever else a future PostgreSQL adds), the guard compares states. At ddl_command_start of a
// command that can take something away (ALTER ..., DROP ..., CREATE [OR REPLACE] TRIGGER) it
// notes, for every registered table and each of its partitions, what protects it: row level
// security enabled and forced, the policies privacy_hide_erased / privacy_passthrough and their
// definitions, the column privacy_erased_by and its type, the hold triggers in order
// (holds/holds.hpp, kHoldTriggers). At ddl_command_end it reads the same again; whatever was there
// before and is gone or changed now, on a relation that is still protected, was taken away by
// this command, and the command is refused (its transaction rolls back, so nothing changed).
//
// Only losses and changes count, so a command that adds protection (pg_restore recreating policies,
// a new partition) is never refused, and a table registered through a shortcut without its policies
// blocks no DDL. A relation that is no longer protected at the end (unregistered, detached,
// dropped) is not compared. A hold trigger that vanished counts only while a hold could cover
// the table: pg_privacy removes the triggers itself once no hold does (holds/sync.cpp), possibly
// from another session while this command runs, and an inert trigger protects nothing.
//
// Commands are matched start-to-end by their parse tree (the same node at both events); the
// states noted for commands that never reach their end (an error, a rolled-back savepoint) are
// forgotten at the end of their (sub)transaction.
#include "data/ddl_guard.hpp"

#include "audit/audit.hpp"
#include "citus/tables.hpp"
#include "holds/holds.hpp"
#include "data/partitions.hpp"
#include "pg/boundary.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "access/xact.h"
#include "commands/event_trigger.h"
#include "nodes/parsenodes.h"
#include "tcop/cmdtag.h"
}

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <utility>
#include <vector>

namespace privacy::ddl_guard {

namespace {

// Process-local and reachable only through OwnDdl: a session can neither see nor set it.
bool own_ddl_in_progress = false;

}  // namespace

OwnDdl::OwnDdl() : previous_(own_ddl_in_progress) { own_ddl_in_progress = true; }

OwnDdl::~OwnDdl() { own_ddl_in_progress = previous_; }

namespace {

using core::Error;
namespace sqlstate = core::sqlstate;

// ----- what protects the registered tables --------------------------------------------------

// What protects every registered table and partition: per (relation, what) the state it is in.
// `what` names a protection (see protection_phrase). A protection that is gone, or whose
// state changed, was taken away. The policies' state is their definition (any ALTER POLICY changes
// it; comparing stored node trees is far cheaper than deparsing them), the column's its type; a
// hold trigger counts only when it is in order (holds::trigger_in_order_sql: its definition, ENABLE
// ALWAYS, pg_privacy's function, the registered columns), so enabling it, as pg_restore
// does after creating it, is a gain.
// The protections are those registration creates (data/softdelete.cpp) and the hold triggers
// (holds/holds.cpp).
struct Protections {
  std::map<std::pair<Oid, std::string>, std::string> state;
  std::map<Oid, Oid> table_of;  // every protected relation -> its registered table
};

std::string protections_sql() {
  return "SELECT m.relid::text, m.table_oid::text, f.what, f.state"
         "  FROM unnest($1::oid[], $2::oid[]) m(table_oid, relid)"
         "  JOIN privacy.registered_tables r ON r.relation = m.table_oid"
         "  JOIN pg_catalog.pg_class c ON c.oid = m.relid"
         "  LEFT JOIN LATERAL ("
         "     SELECT 'row level security' AS what, '' AS state WHERE c.relrowsecurity"
         "     UNION ALL SELECT 'force row level security', '' WHERE c.relforcerowsecurity"
         "     UNION ALL SELECT 'policy ' || p.polname,"
         "            pg_catalog.concat_ws(' ', p.polpermissive, p.polcmd, p.polroles, p.polqual, p.polwithcheck)"
         "       FROM pg_catalog.pg_policy p"
         "      WHERE p.polrelid = c.oid AND p.polname IN ('privacy_hide_erased', 'privacy_passthrough')"
         "     UNION ALL SELECT 'column privacy_erased_by', a.atttypid::text FROM pg_catalog.pg_attribute a"
         "      WHERE a.attrelid = c.oid AND a.attname = 'privacy_erased_by' AND NOT a.attisdropped"
         "     UNION ALL SELECT 'trigger ' || t.tgname, '' FROM pg_catalog.pg_trigger t"
         "      WHERE t.tgrelid = c.oid AND " +
         holds::trigger_in_order_sql("t", "r.subject_column::text",
                                     "coalesce(r.tenant_column::text, '')") +
         "  ) f ON true";
}

Protections read_protections() {
  Protections protections;
  std::vector<pg::SqlParam> trees = partitions::tree_params(partitions::registered_trees());
  for (const pg::TextRow& row : pg::spi_query_rows(protections_sql(), trees)) {
    Oid relation = pg::oid_from_text(row[0]);
    protections.table_of[relation] = pg::oid_from_text(row[1]);
    if (row[2]) protections.state[{relation, *row[2]}] = row[3].value_or("");
  }
  return protections;
}

// What a command did when it took a protection away (`what` as read_protections names it).
std::string protection_phrase(const std::string& what) {
  static const std::map<std::string, std::string> phrases = {
      {"row level security", "turns off row level security of"},
      {"force row level security", "removes FORCE ROW LEVEL SECURITY from"},
      {"policy privacy_hide_erased", "drops or changes policy privacy_hide_erased of"},
      {"policy privacy_passthrough", "drops or changes policy privacy_passthrough of"},
      {"column privacy_erased_by", "drops, renames or changes column privacy_erased_by of"},
  };
  auto phrase = phrases.find(what);
  if (phrase != phrases.end()) return phrase->second;
  return "disables, drops or changes legal hold " + what +
         " of";  // "trigger privacy_hold_guard_..."
}

[[noreturn]] void refuse_tamper(const char* command, Oid relation, Oid table,
                                const std::string& what,
                                const std::optional<holds::HoldInfo>& hold) {
  std::string table_name = pg::relation_display(table);
  std::string whose = relation == table ? table_name + ", a table registered with pg_privacy"
                                        : pg::relation_display(relation) + ", a partition of " +
                                              table_name + ", a table registered with pg_privacy";
  std::string unregister =
      "SELECT privacy.unregister_table(" + pg::quote_literal(table_name) + ");";
  std::string message =
      std::string(command) + " refused: it " + protection_phrase(what) + " " + whose;
  if (hold) {
    throw Error(sqlstate::kObjectNotInPrerequisiteState, message,
                "Legal hold " + std::to_string(hold->id) + " (" + hold->scope + " " +
                    hold->scope_id + ") covers the table, and this trigger enforces it.",
                "pg_privacy removes the hold triggers itself once no hold covers the table "
                "(privacy.release_hold); unregistering the table (" +
                    unregister + ") removes them too.");
  }
  throw Error(
      sqlstate::kObjectNotInPrerequisiteState, message,
      "Erased rows stay hidden only while the table keeps the policy privacy_hide_erased, ENABLE "
      "and FORCE ROW LEVEL SECURITY and the column privacy_erased_by.",
      "To change this, unregister the table first: " + unregister);
}

// Refuses the command when it took away a protection that was there at its start.
void refuse_if_lost(const Protections& before, const char* command) {
  Protections after = read_protections();
  for (const auto& [protection, state] : before.state) {
    const auto& [relation, what] = protection;
    auto protected_relation = after.table_of.find(relation);
    if (protected_relation == after.table_of.end()) continue;  // unregistered, detached or dropped
    auto now = after.state.find(protection);
    if (now != after.state.end() && now->second == state) continue;
    Oid table = protected_relation->second;
    std::optional<holds::HoldInfo> hold;
    if (what.rfind("trigger ", 0) == 0) {
      hold = holds::hold_on_table(table);
      if (!hold) continue;  // an inert trigger: no hold covers the table
    }
    refuse_tamper(command, relation, table, what, hold);
  }
}

// ----- commands between their start and their end ---------------------------------------------

struct PendingCommand {
  const Node* parsetree;
  int nest_level;
  Protections before;
};

std::vector<PendingCommand> pending_commands;

void forget_commands_at_transaction_end(XactEvent event, void*) {
  if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE ||
      event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT) {
    pending_commands.clear();
  }
}

void forget_commands_of_aborted_subtransaction(SubXactEvent event, SubTransactionId,
                                               SubTransactionId, void*) {
  if (event != SUBXACT_EVENT_ABORT_SUB) return;
  int level = GetCurrentTransactionNestLevel();
  pending_commands.erase(
      std::remove_if(pending_commands.begin(), pending_commands.end(),
                     [&](const PendingCommand& command) { return command.nest_level >= level; }),
      pending_commands.end());
}

void register_callbacks_once() {
  static bool registered = false;
  if (registered) return;
  pg::pg_guard([] {
    RegisterXactCallback(forget_commands_at_transaction_end, nullptr);
    RegisterSubXactCallback(forget_commands_of_aborted_subtransaction, nullptr);
  });
  registered = true;
}

// The state noted at the start of this command, if any (and forgets it, with any state of a
// command started later that never reached its end).
std::optional<Protections> take_before_state(const Node* parsetree) {
  for (auto command = pending_commands.rbegin(); command != pending_commands.rend(); ++command) {
    if (command->parsetree != parsetree) continue;
    Protections before = std::move(command->before);
    pending_commands.erase(std::next(command).base(), pending_commands.end());
    return before;
  }
  return std::nullopt;
}

bool starts_with(const char* text, const char* prefix) {
  return std::strncmp(text, prefix, std::strlen(prefix)) == 0;
}

// Only these can take a protection away (CREATE OR REPLACE TRIGGER can replace a hold trigger).
bool may_take_protection_away(const char* command) {
  return starts_with(command, "ALTER ") || starts_with(command, "DROP ") ||
         std::strcmp(command, "CREATE TRIGGER") == 0;
}

// The registered table or partition a name may denote (regclass text), if any. The name is
// matched rather than looked up: this function runs with search_path pinned, not the caller's, so
// an unqualified name matches a registered table or partition of that name in any schema.
std::optional<std::string> protected_relation_named(const RangeVar& name) {
  return pg::spi_query_text(
      "SELECT x.relation::text"
      "  FROM (SELECT relation FROM privacy.registered_tables"
      "        UNION ALL SELECT relation FROM privacy.registered_partitions) x"
      "  JOIN pg_catalog.pg_class c ON c.oid = x.relation"
      "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
      " WHERE c.relname = $1 AND ($2::text IS NULL OR n.nspname = $2) LIMIT 1",
      {pg::text_param(name.relname),
       pg::text_param(name.schemaname ? std::optional<std::string>(name.schemaname)
                                      : std::nullopt)});
}

// The one relation a command changes, for the commands that name one and change nothing else
// pg_privacy protects (ALTER TABLE, ALTER/RENAME of a column, policy or trigger, CREATE TRIGGER);
// nullptr for every other command.
const RangeVar* only_relation_changed(Node* parsetree) {
  if (parsetree == nullptr) return nullptr;
  switch (nodeTag(parsetree)) {
    case T_AlterTableStmt:
      return reinterpret_cast<AlterTableStmt*>(parsetree)->relation;
    case T_RenameStmt:
      return reinterpret_cast<RenameStmt*>(parsetree)->relation;
    case T_AlterPolicyStmt:
      return reinterpret_cast<AlterPolicyStmt*>(parsetree)->table;
    case T_CreateTrigStmt:
      return reinterpret_cast<CreateTrigStmt*>(parsetree)->relation;
    default:
      return nullptr;
  }
}

// ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY commits halfway (ddl_command_end fires in its
// second transaction), so the detach and giving the partition back its previous RLS state cannot
// be one transaction: refused at the start on registered tables (and their partitioned
// partitions).
void refuse_concurrent_detach(Node* parsetree) {
  if (parsetree == nullptr || !IsA(parsetree, AlterTableStmt)) return;
  auto* statement = reinterpret_cast<AlterTableStmt*>(parsetree);
  bool concurrent = false;
  for (int i = 0; i < list_length(statement->cmds); ++i) {
    auto* command = static_cast<AlterTableCmd*>(list_nth(statement->cmds, i));
    if (command->subtype == AT_DetachPartition && command->def != nullptr &&
        reinterpret_cast<PartitionCmd*>(command->def)->concurrent) {
      concurrent = true;
    }
  }
  if (!concurrent || statement->relation == nullptr) return;
  std::optional<std::string> table = protected_relation_named(*statement->relation);
  if (!table) return;
  throw Error(
      sqlstate::kFeatureNotSupported,
      "DETACH PARTITION ... CONCURRENTLY is not supported on registered table " + *table,
      "It commits halfway, so pg_privacy could not give the partition back its previous row level "
      "security in the same transaction.",
      "Use ALTER TABLE ... DETACH PARTITION without CONCURRENTLY (if you meant another table of that "
      "name, qualify it with its schema).");
}

// The relations the command created or altered that belong to a partition tree or to table
// inheritance (none when nothing is registered): where a registered table's tree may have changed.
std::vector<Oid> relations_in_trees_changed() {
  std::vector<Oid> relations;
  for (
      const pg::TextRow& row : pg::spi_query_rows(
          "SELECT DISTINCT d.objid::text FROM pg_catalog.pg_event_trigger_ddl_commands() d"
          "  JOIN pg_catalog.pg_class c ON c.oid = d.objid"
          " WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass"
          "   AND (c.relispartition OR c.relkind = 'p'"
          "        OR EXISTS (SELECT FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid OR i.inhparent = c.oid))"
          "   AND EXISTS (SELECT FROM privacy.registered_tables)")) {
    relations.push_back(pg::oid_from_text(row[0]));
  }
  return relations;
}

// sql_drop: a dropped registered table (or partition of one) loses its registration, audited as
// table_dropped. privacy_hold_drop_guard has refused the drop already if a hold covers it.
void forget_dropped_tables() {
  std::vector<pg::TextRow> dropped = pg::spi_query_rows(
      "SELECT d.objid::text, d.object_identity, (r.relation IS NOT NULL)::text,"
      "       p.registered_table::oid::text, p.registered_table::text, d.schema_name, d.object_name"
      "  FROM pg_catalog.pg_event_trigger_dropped_objects() d"
      "  LEFT JOIN privacy.registered_tables r ON r.relation::oid = d.objid"
      "  LEFT JOIN privacy.registered_partitions p ON p.relation::oid = d.objid"
      " WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objsubid = 0"
      "   AND (r.relation IS NOT NULL OR p.relation IS NOT NULL)"
      " ORDER BY d.objid");
  std::set<Oid> dropped_tables;
  for (const pg::TextRow& row : dropped) {
    if (row.boolean(2)) dropped_tables.insert(pg::oid_from_text(row[0]));
  }
  for (const pg::TextRow& row : dropped) {
    Oid relation = pg::oid_from_text(row[0]);
    std::string detail;
    if (row.boolean(2)) {
      detail = *pg::spi_query_text(
          "SELECT pg_catalog.jsonb_build_object('partitions', count(*))::text"
          "  FROM privacy.registered_partitions WHERE registered_table = $1::oid",
          {pg::oid_param(relation)});
      citus_tables::remember_dropped_registration(relation, *row[5], *row[6]);
      pg::spi_execute("DELETE FROM privacy.registered_tables WHERE relation = $1::oid",
                      {pg::oid_param(relation)});
    } else if (dropped_tables.count(pg::oid_from_text(row[3])) == 0) {
      detail = *pg::spi_query_text(
          "SELECT pg_catalog.jsonb_build_object('partition_of', $1::text)::text",
          {pg::text_param(row[4])});
      pg::spi_execute("DELETE FROM privacy.registered_partitions WHERE relation = $1::oid",
                      {pg::oid_param(relation)});
    } else {
      continue;  // a partition dropped with its table: one audit row for the table
    }
    audit::append({"table_dropped", std::nullopt, std::nullopt, *row[1], "ok", detail});
  }
}

void on_command_start(EventTriggerData* data) {
  refuse_concurrent_detach(data->parsetree);
  const char* command = GetCommandTagName(data->tag);
  if (!may_take_protection_away(command)) return;
  // The common case, cheaply: a command that changes one relation, not a protected one.
  const RangeVar* relation = only_relation_changed(data->parsetree);
  if (relation != nullptr && !protected_relation_named(*relation)) return;
  Protections before = read_protections();
  if (before.table_of.empty()) return;  // nothing registered
  register_callbacks_once();
  pending_commands.push_back(
      PendingCommand{data->parsetree, GetCurrentTransactionNestLevel(), std::move(before)});
}

// alter_distributed_table (Citus) replaces a table: it creates a new one, drops the old one and
// renames the new one to the old name, in one transaction. At the rename the registration the
// drop took away moves to the new table (citus/tables.hpp).
void follow_replaced_table(Node* parsetree) {
  if (parsetree == nullptr || !IsA(parsetree, RenameStmt)) return;
  if (reinterpret_cast<RenameStmt*>(parsetree)->renameType != OBJECT_TABLE) return;
  for (const pg::TextRow& row : pg::spi_query_rows(
           "SELECT DISTINCT objid::text FROM pg_catalog.pg_event_trigger_ddl_commands()"
           " WHERE classid = 'pg_catalog.pg_class'::pg_catalog.regclass")) {
    citus_tables::reattach_renamed_table(pg::oid_from_text(row[0]));
  }
}

void on_command_end(EventTriggerData* data) {
  const char* command = GetCommandTagName(data->tag);
  std::optional<Protections> before = take_before_state(data->parsetree);
  if (before) refuse_if_lost(*before, command);
  follow_replaced_table(data->parsetree);
  std::vector<Oid> changed = relations_in_trees_changed();
  if (!changed.empty()) partitions::follow_tree_changes(changed);
}

}  // namespace

}  // namespace privacy::ddl_guard

// privacy._tamper_guard(): the event trigger function of privacy_tamper_guard_start
// (ddl_command_start), privacy_tamper_guard_drop (sql_drop) and privacy_tamper_guard_end
// (ddl_command_end). SECURITY DEFINER: it reads pg_privacy's tables, counts the hidden rows of a
// partition being detached and writes the audit trail; the DDL it runs itself (protecting a new
// partition, releasing a detached one) is pg_privacy's fixed DDL on relations whose owner
// PostgreSQL has just let run the command.
PRIVACY_SQL_FUNCTION(privacy_tamper_guard) {
  using privacy::core::Error;
  namespace guard = privacy::ddl_guard;
  if (!CALLED_AS_EVENT_TRIGGER(fcinfo)) {
    throw Error(privacy::core::sqlstate::kObjectNotInPrerequisiteState,
                "privacy._tamper_guard() must be called as an event trigger");
  }
  if (guard::own_ddl_in_progress) PG_RETURN_VOID();
  auto* data = reinterpret_cast<EventTriggerData*>(fcinfo->context);
  privacy::pg::SpiConnection spi;
  if (std::strcmp(data->event, "ddl_command_start") == 0) {
    guard::on_command_start(data);
  } else if (std::strcmp(data->event, "sql_drop") == 0) {
    guard::forget_dropped_tables();
  } else if (std::strcmp(data->event, "ddl_command_end") == 0) {
    guard::on_command_end(data);
  }
  PG_RETURN_VOID();
}
