// The hold lookup used by every path, the hold_blocked reporting, trigger attachment, and the
// two launcher steps of legal holds (expiry, writing queued hold_blocked rows).
#include "holds/holds.hpp"

#include "audit/audit.hpp"
#include "citus/tables.hpp"
#include "data/ddl_guard.hpp"
#include "holds/cache.hpp"
#include "holds/shared.hpp"
#include "data/partitions.hpp"
#include "pg/boundary.hpp"
#include "pg/guc.hpp"
#include "pg/security_context.hpp"
#include "pg/shmem.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "commands/dbcommands.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
}

#include <cstring>

namespace privacy::holds {

std::optional<HoldInfo> find_hold(const std::string& tenant_id,
                                  const std::optional<std::string>& subject_id, Oid relation) {
  return covering_hold(HoldTarget{relation, tenant_id, subject_id, false});
}

void raise_hold_error(const std::string& what, const HoldInfo& hold) {
  throw core::Error(core::sqlstate::kLegalHold,
                    what + " is blocked by legal hold " + std::to_string(hold.id) + " (" +
                        hold.scope + " " + hold.scope_id + ")",
                    "Hold " + std::to_string(hold.id) + " was placed by " + hold.created_by +
                        " at " + hold.created_at + ": " + hold.reason,
                    "Wait until the hold is released (privacy.release_hold) or expires; held data "
                    "must not be deleted or changed.");
}

void ensure_not_held(const std::string& what, const std::string& tenant_id,
                     const std::optional<std::string>& subject_id, Oid relation) {
  std::optional<HoldInfo> hold = find_hold(tenant_id, subject_id, relation);
  if (!hold) return;
  report_blocked(what, tenant_id, relation, *hold);
  raise_hold_error(what, *hold);
}

namespace {

void copy_text(char* destination, size_t size, const std::string& text) {
  std::strncpy(destination, text.c_str(), size - 1);
  destination[size - 1] = '\0';
}

// The session's identity and the refused operation as a queue entry. PostgreSQL calls only.
void describe_session(shared::BlockedEvent& event, Oid relation) {
  event.database = MyDatabaseId;
  event.at = GetCurrentTimestamp();
  strlcpy(event.session_user, GetUserNameFromId(GetSessionUserId(), false),
          sizeof(event.session_user));
  strlcpy(event.current_user, GetUserNameFromId(GetUserId(), false), sizeof(event.current_user));
  // host(inet_client_addr()), as audit::append records it for a session of its own.
  if (char* host = pg::client_host()) strlcpy(event.client_addr, host, sizeof(event.client_addr));
  if (application_name != nullptr) {
    strlcpy(event.application_name, application_name, sizeof(event.application_name));
  }
  if (OidIsValid(relation)) {
    char* schema = get_namespace_name(get_rel_namespace(relation));
    char* name = get_rel_name(relation);
    if (schema != nullptr && name != nullptr) {
      strlcpy(event.relation, quote_qualified_identifier(schema, name), sizeof(event.relation));
    }
  }
}

// The launcher writes only to privacy.database: events of other databases cannot be queued.
bool in_launcher_database() {
  return pg::pg_guard([] {
    char* name = get_database_name(MyDatabaseId);
    return name != nullptr && pg::guc::database != nullptr &&
           std::strcmp(name, pg::guc::database) == 0;
  });
}

}  // namespace

void report_blocked(const std::string& operation, const std::optional<std::string>& tenant_id,
                    Oid relation, const HoldInfo& hold) {
  shared::BlockedEvent event;
  std::memset(&event, 0, sizeof(event));
  event.hold_id = hold.id;
  event.has_tenant = tenant_id.has_value();
  if (tenant_id) copy_text(event.tenant_id, sizeof(event.tenant_id), *tenant_id);
  copy_text(event.operation, sizeof(event.operation), operation);
  pg::pg_guard([&] { describe_session(event, relation); });
  if (shared::available() && in_launcher_database() && shared::enqueue_blocked(event)) {
    pg::wake_launcher();
    return;
  }
  pg::pg_guard([&] {
    ereport(
        LOG_SERVER_ONLY,
        (errmsg(
            "pg_privacy: hold_blocked (not audited: %s): %s%s%s refused by legal hold " INT64_FORMAT
            " for session user \"%s\"",
            shared::available() ? "database is not privacy.database"
                                : "pg_privacy is not preloaded",
            event.operation, event.relation[0] ? " on " : "", event.relation, event.hold_id,
            event.session_user)));
  });
}

namespace {

// Citus refuses trigger DDL on its distributed and reference tables unless
// citus.enable_unsafe_triggers is on. With it on (for pg_privacy's own trigger DDL only, in
// `scope`), Citus creates the row triggers on every shard, where the DML runs, and keeps
// them on every shard it builds later (moves, copies, splits: they are part of the table's
// definition in its catalog); the TRUNCATE trigger stays on the coordinator's shell table, where
// Citus fires it before truncating the shards (docs/citus.md, "Legal holds").
void allow_citus_trigger_ddl(Oid relation, std::optional<pg::PinnedSearchPath>& scope) {
  if (!citus_tables::is_citus_table(relation)) return;
  scope.emplace();
  scope->set("citus.enable_unsafe_triggers", "on");
}

// Whether the relation has a live column of this name.
bool column_exists(Oid relation, const std::string& column) {
  return pg::spi_query_text(
             "SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = $1::oid AND attname = $2::name"
             " AND attnum > 0 AND NOT attisdropped",
             {pg::int8_param(static_cast<long long>(relation)), pg::text_param(column)})
      .has_value();
}

std::string relation_text(Oid relation) {
  std::optional<std::string> name = pg::spi_query_text(
      "SELECT c.oid::regclass::text FROM pg_catalog.pg_class c WHERE c.oid = $1::oid",
      {pg::int8_param(static_cast<long long>(relation))});
  if (!name) {
    throw core::Error(core::sqlstate::kUndefinedTable,
                      "relation with OID " + std::to_string(relation) + " does not exist");
  }
  return *name;
}

}  // namespace

const HoldTriggerSpec kHoldTriggers[3] = {
    {"privacy_hold_guard_delete", "privacy._hold_guard", "AFTER DELETE", "FOR EACH ROW", 9, false,
     false, 'A', false},
    {"privacy_hold_guard_update", "privacy._hold_guard", "AFTER UPDATE", "FOR EACH ROW", 17, false,
     false, 'A', false},
    {"privacy_hold_guard_truncate", "privacy._hold_guard_truncate", "BEFORE TRUNCATE",
     "FOR EACH STATEMENT", 34, false, false, 'A', true},
};

namespace {

// Hold triggers of earlier versions that no longer exist under these names (0.1.0's ENABLE
// REPLICA row trigger: the row triggers are ENABLE ALWAYS now and fire for the apply worker too).
const char* const kRetiredHoldTriggers[] = {"privacy_hold_guard_replica"};

}  // namespace

std::string hold_trigger_names_sql() {
  std::string names;
  for (const HoldTriggerSpec& spec : kHoldTriggers)
    names += (names.empty() ? "" : ", ") + pg::quote_literal(spec.name);
  for (const char* retired : kRetiredHoldTriggers) names += ", " + pg::quote_literal(retired);
  return names;
}

bool stale_hold_trigger(const char* name, bool partitioned) {
  for (const char* retired : kRetiredHoldTriggers) {
    if (std::strcmp(name, retired) == 0) return true;
  }
  for (const HoldTriggerSpec& spec : kHoldTriggers) {
    if (std::strcmp(name, spec.name) == 0) return partitioned && !spec.on_partitioned;
  }
  return false;
}

std::string trigger_in_order_sql(const std::string& trigger, const std::string& subject_sql,
                                 const std::string& tenant_sql) {
  const std::string& t = trigger;
  std::string any_spec;
  for (const HoldTriggerSpec& spec : kHoldTriggers) {
    if (!any_spec.empty()) any_spec += " OR ";
    any_spec += "(" + t + ".tgname = " + pg::quote_literal(spec.name) + " AND " + t +
                ".tgtype = " + std::to_string(spec.tgtype) + " AND " + t + ".tgenabled = '" +
                spec.enabled + "' AND (" + t +
                ".tgoldtable IS NOT NULL) = " + (spec.old_table ? "true" : "false") + " AND (" + t +
                ".tgnewtable IS NOT NULL) = " + (spec.new_table ? "true" : "false") + " AND " + t +
                ".tgfoid = '" + spec.function + "()'::pg_catalog.regprocedure)";
  }
  return "(" + t + ".tgqual IS NULL AND pg_catalog.cardinality(" + t +
         ".tgattr::pg_catalog.int2[]) = 0 AND " + t + ".tgargs = pg_catalog.convert_to(" +
         subject_sql +
         ", pg_catalog.getdatabaseencoding())"
         " || pg_catalog.decode('00', 'hex')"
         " || pg_catalog.convert_to(" +
         tenant_sql +
         ", pg_catalog.getdatabaseencoding())"
         " || pg_catalog.decode('00', 'hex') AND (" +
         any_spec + "))";
}

namespace {

// Drops the hold triggers of the table's tree that pg_privacy no longer attaches there
// (stale_hold_trigger): those an earlier version attached, so that an update replaces them at the
// next sync (the launcher's reconcile step finds such a table out of line).
void drop_stale_triggers(Oid relation) {
  std::vector<pg::TextRow> present = pg::spi_query_rows(
      "SELECT t.tgrelid::regclass::text, t.tgname::text, (c.relkind = 'p')::text"
      "  FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid"
      " WHERE t.tgrelid = ANY ($1::oid[]) AND t.tgparentid = 0 AND t.tgname IN (" +
          hold_trigger_names_sql() + ")",
      {pg::oid_array_param(partitions::tree_of(relation))});
  for (const pg::TextRow& trigger : present) {
    if (!stale_hold_trigger(trigger[1]->c_str(), trigger.boolean(2))) continue;
    pg::spi_execute("DROP TRIGGER " + pg::quote_ident(*trigger[1]) + " ON " + *trigger[0]);
  }
}

}  // namespace

void attach_triggers(Oid relation, const std::string& tenant_column_or_empty,
                     const std::string& subject_column) {
  pg::SpiConnection spi;
  ddl_guard::OwnDdl own;
  std::optional<pg::PinnedSearchPath> citus_triggers;
  allow_citus_trigger_ddl(relation, citus_triggers);
  std::string table = relation_text(relation);
  std::vector<std::string> columns{subject_column};
  if (!tenant_column_or_empty.empty()) columns.push_back(tenant_column_or_empty);
  for (const std::string& column : columns) {
    if (column.empty() || !column_exists(relation, column)) {
      throw core::Error(core::sqlstate::kUndefinedColumn,
                        "column \"" + column + "\" of table " + table + " does not exist", {},
                        "Name an existing column of the table.");
    }
  }
  // Per relation of the table's tree, each trigger it needs (kHoldTriggers: row triggers only on
  // relations that hold rows): whether it is present, and whether it is in order. Only what is
  // missing or wrong is (re)created, so a new partition leaves its siblings alone.
  std::string specs;
  for (size_t i = 0; i < std::size(kHoldTriggers); ++i) {
    if (!specs.empty()) specs += ", ";
    specs += "(" + std::to_string(i) + ", " + pg::quote_literal(kHoldTriggers[i].name) +
             "::name, " + (kHoldTriggers[i].on_partitioned ? "true" : "false") + ")";
  }
  std::vector<pg::TextRow> needed = pg::spi_query_rows(
      "SELECT c.oid::regclass::text, w.n::text,"
      "       EXISTS (SELECT FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = w.name)::text,"
      "       EXISTS (SELECT FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = w.name AND " +
          trigger_in_order_sql("t", "$2", "$3") +
          ")::text"
          "  FROM unnest($1::oid[]) WITH ORDINALITY m(relid, position)"
          "  JOIN pg_catalog.pg_class c ON c.oid = m.relid"
          " CROSS JOIN (VALUES " +
          specs +
          ") w(n, name, on_partitioned)"
          " WHERE w.on_partitioned OR c.relkind <> 'p'"
          " ORDER BY m.position, w.n",
      {pg::oid_array_param(partitions::tree_of(relation)), pg::text_param(subject_column),
       pg::text_param(tenant_column_or_empty)});
  drop_stale_triggers(relation);
  std::string args =
      pg::quote_literal(subject_column) + ", " + pg::quote_literal(tenant_column_or_empty);
  for (const pg::TextRow& trigger : needed) {
    const std::string on = trigger.text(0);
    const HoldTriggerSpec& spec = kHoldTriggers[static_cast<size_t>(trigger.int4(1))];
    if (trigger.boolean(3)) continue;
    if (trigger.boolean(2)) pg::spi_execute(std::string("DROP TRIGGER ") + spec.name + " ON " + on);
    pg::spi_execute(std::string("CREATE TRIGGER ") + spec.name + " " + spec.events + " ON " + on +
                    " " + spec.per + " EXECUTE FUNCTION " + spec.function + "(" + args + ")");
    pg::spi_execute("ALTER TABLE " + on +
                    (spec.enabled == 'R' ? " ENABLE REPLICA" : " ENABLE ALWAYS") + " TRIGGER " +
                    spec.name);
  }
}

void detach_triggers(Oid relation) {
  pg::SpiConnection spi;
  ddl_guard::OwnDdl own;
  std::optional<pg::PinnedSearchPath> citus_triggers;
  allow_citus_trigger_ddl(relation, citus_triggers);
  // Looked up first rather than DROP TRIGGER IF EXISTS, which would print a NOTICE. Clones of a
  // row trigger on partitions (tgparentid set) go with the table's own; the table comes first.
  std::vector<pg::TextRow> present = pg::spi_query_rows(
      "SELECT t.tgrelid::regclass::text, t.tgname::text FROM pg_catalog.pg_trigger t"
      " WHERE t.tgrelid = ANY ($1::oid[]) AND t.tgparentid = 0 AND t.tgname IN (" +
          hold_trigger_names_sql() +
          ")"
          " ORDER BY t.tgrelid <> $2::oid, t.tgrelid, t.tgname",
      {pg::oid_array_param(partitions::tree_of(relation)),
       pg::int8_param(static_cast<long long>(relation))});
  for (const pg::TextRow& trigger : present) {
    pg::spi_execute("DROP TRIGGER " + pg::quote_ident(*trigger[1]) + " ON " + *trigger[0]);
  }
}

// The launcher's step "hold expiry": holds whose expires_at has passed become inactive, each
// audited as hold_expired. (Lookups already ignore them from expires_at on; this records the end.)
void expire_holds() {
  // Look first: an UPDATE of no row would still fire the change trigger on legal_holds and make
  // every backend re-read its cached holds after each launcher cycle.
  if (!pg::spi_query_text(
          "SELECT 1 FROM privacy.legal_holds"
          " WHERE active AND expires_at IS NOT NULL AND expires_at <= now() LIMIT 1")) {
    return;
  }
  std::vector<pg::TextRow> expired = pg::spi_query_rows(
      "UPDATE privacy.legal_holds SET active = false"
      " WHERE active AND expires_at IS NOT NULL AND expires_at <= now()"
      " RETURNING id::text, tenant_id, jsonb_build_object('hold_id', id, 'scope', scope,"
      "   'expires_at', expires_at, 'reason', reason)::text",
      {}, false);
  for (const pg::TextRow& row : expired) {
    replicate_to_citus_nodes(row.int8(0));
    audit::Entry entry;
    entry.action = "hold_expired";
    entry.tenant_id = row[1];
    entry.target = "hold " + *row[0];
    entry.detail_json = *row[2];
    audit::append(entry);
  }
  // Tables no longer covered lose their triggers (if their lock is free; else the next cycle).
  sync_all_triggers(Attach::kIfFree);
}

namespace {

std::optional<std::string> nonempty(const char* text) {
  if (text[0] == '\0') return std::nullopt;
  return std::string(text);
}

}  // namespace

// The launcher's step "hold_blocked audit": writes the queued hold_blocked events to the audit log
// with the identity of the session that was refused. Events lost to a full queue are counted in the
// next row.
void write_blocked_events() {
  static shared::BlockedEvent events[shared::kQueueCapacity];
  uint64 dropped = 0;
  int count = shared::peek_blocked(events, shared::kQueueCapacity, &dropped);
  if (count == 0) return;
  for (int i = 0; i < count; ++i) shared::audit_blocked_event(events[i], i == 0 ? dropped : 0);
  shared::remove_blocked(count, dropped);
}

namespace shared {

void audit_blocked_event(const BlockedEvent& event, uint64 dropped_before) {
  audit::Entry entry;
  entry.action = "hold_blocked";
  entry.outcome = "refused";
  if (event.has_tenant) entry.tenant_id = std::string(event.tenant_id);
  entry.target = event.relation[0] ? std::string(event.relation) : std::string(event.operation);
  entry.actor = audit::Actor{event.session_user, event.current_user, nonempty(event.client_addr),
                             nonempty(event.application_name)};
  entry.detail_json = *pg::spi_query_text(
      "SELECT jsonb_build_object('hold_id', $1::bigint, 'operation', $2::text,"
      "  'refused_at', timestamptz '2000-01-01 00:00:00+00' + $3::bigint * interval '1 microsecond',"
      "  'dropped_before', $4::bigint)::text",
      {pg::int8_param(static_cast<long long>(event.hold_id)), pg::text_param(event.operation),
       pg::int8_param(static_cast<long long>(event.at)),
       pg::int8_param(static_cast<long long>(dropped_before))});
  audit::append(entry);
}

}  // namespace shared

}  // namespace privacy::holds

// privacy._expire_holds(): runs the launcher's expiry step now (tests, and servers without
// preload). Superuser only.
PRIVACY_SQL_FUNCTION(privacy_expire_holds) {
  privacy::pg::SpiConnection spi;
  privacy::holds::expire_holds();
  PG_RETURN_VOID();
}
