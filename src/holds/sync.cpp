// Keeping the enforcement triggers attached only where a hold could apply (docs/legal-holds.md,
// "Cost when nothing is held").
//
// A trigger that sees the rows costs every UPDATE and DELETE of its table even when the check
// finds nothing: PostgreSQL queues an event for every changed row and fetches the row again to
// call it (docs/legal-holds.md, "Cost"). So the triggers sit on a
// registered table (and its partitions: holds/holds.hpp, kHoldTriggers) only while an active,
// unexpired hold could cover its rows: any tenant or subject hold covers every registered table, a
// table hold covers its table.
//
// Who calls sync:
//  * place_hold, after inserting the hold: attaches, waiting for the table lock (the hold and its
//    enforcement commit together);
//  * register_table: attaches when a hold is already active;
//  * the DDL guard, after a partition was created or attached (data/partitions.cpp): attaches the
//    triggers of the new partition while a hold could cover its table;
//  * release_hold, the expiry step and the launcher's reconcile step: detach, but only when the
//    table can be locked at once; otherwise the trigger stays (it enforces nothing once no hold
//    covers the table) and the launcher's next cycle tries again.
//
// Races. The decision is taken after the table lock is held, reading the holds with the latest
// snapshot (own uncommitted changes included), so:
//  * a hold being placed holds SHARE ROW EXCLUSIVE on its tables from before its INSERT until
//    commit: a release deciding to detach either cannot lock the table (and skips it) or locked
//    it first, in which case place_hold waits and then finds the trigger gone and attaches again;
//  * writers (ROW EXCLUSIVE) conflict with both lock levels used here, and take their lock before
//    building their trigger list, so a DELETE either ran before the hold or sees the trigger; a
//    writer of a partition locks only the partition, so the whole tree is locked here (and
//    place_hold's LOCK TABLE recurses to partitions);
//  * a table registered while a hold is being placed: register_table waits for uncommitted
//    changes of privacy.legal_holds (SHARE lock) before deciding, and place_hold lists the
//    registered tables with the latest snapshot after its INSERT; one of them sees the other.
#include "holds/holds.hpp"
#include "data/partitions.hpp"
#include "pg/boundary.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/pg_inherits.h"
#include "commands/trigger.h"
#include "parser/parse_func.h"
#include "storage/lmgr.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
}

#include <cstring>

namespace privacy::holds {

namespace {

// Whether hold h is active, unexpired and could cover rows of registered table r.relation: a
// table hold on it (by OID, so renames do not matter), or any tenant or subject hold. (SQL, one
// place; privacy._hold_drop_guard in 70_holds.sql says the same in PL/pgSQL.)
constexpr const char* kHoldCoversTable =
    "h.active AND (h.expires_at IS NULL OR h.expires_at > pg_catalog.now())"
    " AND (h.scope <> 'table' OR h.relation = r.relation)";

const std::string kCoveredSql =
    std::string("EXISTS (SELECT FROM privacy.legal_holds h WHERE ") + kHoldCoversTable + ")";

struct RegisteredTable {
  Oid relation;
  std::string subject_column;
  std::string tenant_column;  // "" when the table has no tenant column
  bool covered;               // as seen before locking: a hint only
  bool any_triggers;          // likewise: some relation of its tree has a hold trigger
  bool all_triggers;          // likewise: every relation of its tree has those it needs
};

// The registered tables (one, or all when relation is invalid) that still exist, in OID order
// (the order place_hold locks them in), with a first, unlocked look at their state. The
// relations of a table are the table and its partitions (data/partitions.hpp).
std::vector<RegisteredTable> registered_tables(Oid relation) {
  std::vector<pg::TextRow> rows;
  {
    pg::LatestSnapshot latest;
    std::vector<pg::SqlParam> params = partitions::tree_params(partitions::registered_trees(true));
    params.push_back(pg::int8_param(static_cast<long long>(relation)));
    int on_partitioned = 0;
    for (const HoldTriggerSpec& spec : kHoldTriggers) on_partitioned += spec.on_partitioned ? 1 : 0;
    rows = pg::spi_query_rows(
        "WITH trees AS (SELECT m.table_oid, count(*) AS members,"
        "    count(*) FILTER (WHERE g.n > 0) AS with_any,"
        "    count(*) FILTER (WHERE g.n = CASE WHEN c.relkind = 'p' THEN " +
            std::to_string(on_partitioned) + " ELSE " + std::to_string(std::size(kHoldTriggers)) +
            " END) AS with_all"
            "    FROM unnest($1::oid[], $2::oid[]) m(table_oid, relid)"
            "    JOIN pg_catalog.pg_class c ON c.oid = m.relid"
            "    CROSS JOIN LATERAL (SELECT count(*) AS n FROM pg_catalog.pg_trigger tg WHERE tg.tgrelid = m.relid"
            "        AND tg.tgname IN (" +
            hold_trigger_names_sql() +
            ")) g"
            "   GROUP BY m.table_oid)"
            " SELECT r.relation::oid::text, r.subject_column::text, coalesce(r.tenant_column::text, ''), " +
            kCoveredSql +
            "::text, (t.with_any > 0)::text, (t.with_all = t.members)::text"
            "  FROM privacy.registered_tables r JOIN trees t ON t.table_oid = r.relation"
            " WHERE $3::oid = 0 OR r.relation = $3::oid ORDER BY r.relation::oid",
        params, true);
  }
  std::vector<RegisteredTable> tables;
  for (const pg::TextRow& row : rows) {
    tables.push_back(RegisteredTable{row.oid(0), row.text(1), row.text(2), row.boolean(3),
                                     row.boolean(4), row.boolean(5)});
  }
  return tables;
}

// Whether a hold could cover the table, read after its lock is held.
bool covered_now(Oid relation) {
  pg::LatestSnapshot latest;
  return pg::spi_query_bool(
      std::string("SELECT ") + kCoveredSql + "::text FROM (SELECT $1::oid::regclass AS relation) r",
      {pg::int8_param(static_cast<long long>(relation))}, true);
}

struct TriggerState {
  bool any;       // at least one of the triggers is there
  bool complete;  // every one the relation needs, in order (holds/holds.hpp, kHoldTriggers)
};

// The C twin of trigger_in_order_sql, for a trigger whose name is spec's. PostgreSQL calls only.
bool trigger_in_order(const Trigger& trigger, const HoldTriggerSpec& spec, const char* subject,
                      const char* tenant) {
  Oid function = LookupFuncName(stringToQualifiedNameList(spec.function), 0, nullptr, false);
  return trigger.tgtype == spec.tgtype && trigger.tgenabled == spec.enabled &&
         (trigger.tgoldtable != nullptr) == spec.old_table &&
         (trigger.tgnewtable != nullptr) == spec.new_table && trigger.tgqual == nullptr &&
         trigger.tgnattr == 0 && trigger.tgnargs == 2 &&
         std::strcmp(trigger.tgargs[0], subject) == 0 &&
         std::strcmp(trigger.tgargs[1], tenant) == 0 && trigger.tgfoid == function;
}

// The triggers of one relation as the relcache has them: current, since the caller holds a lock
// on it (taking it processed pending invalidations) that keeps others from changing them.
TriggerState relation_trigger_state(Oid relation, const RegisteredTable& table) {
  return pg::pg_guard([&] {
    TriggerState state{false, false};
    Relation rel = try_relation_open(relation, NoLock);
    if (rel == nullptr) return state;
    bool partitioned = rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE;
    state.complete = true;
    for (const HoldTriggerSpec& spec : kHoldTriggers) {
      bool in_order = false;
      for (int i = 0; rel->trigdesc != nullptr && i < rel->trigdesc->numtriggers; ++i) {
        const Trigger& trigger = rel->trigdesc->triggers[i];
        if (std::strcmp(trigger.tgname, spec.name) != 0) continue;
        state.any = true;
        in_order = trigger_in_order(trigger, spec, table.subject_column.c_str(),
                                    table.tenant_column.c_str());
      }
      if (!in_order && (spec.on_partitioned || !partitioned)) state.complete = false;
    }
    // A trigger an earlier version attached here and this one does not: replaced by attach.
    for (int i = 0; rel->trigdesc != nullptr && i < rel->trigdesc->numtriggers; ++i) {
      if (stale_hold_trigger(rel->trigdesc->triggers[i].tgname, partitioned)) {
        state.any = true;
        state.complete = false;
      }
    }
    relation_close(rel, NoLock);
    return state;
  });
}

// The triggers of a registered table: complete when the table and every partition have theirs.
TriggerState trigger_state(const RegisteredTable& table) {
  TriggerState state{false, true};
  for (Oid member : partitions::tree_of(table.relation)) {
    TriggerState member_state = relation_trigger_state(member, table);
    state.any = state.any || member_state.any;
    state.complete = state.complete && member_state.complete;
  }
  return state;
}

// Locks a registered table and its partitions (a writer of a partition locks the partition,
// not its parent). With wait = false only if every lock is free at once; the locks already taken
// are kept until the end of the transaction either way.
bool lock_table(Oid relation, LOCKMODE mode, bool wait) {
  return pg::pg_guard([&] {
    if (wait) {
      LockRelationOid(relation, mode);
      find_all_inheritors(relation, mode, nullptr);
      return true;
    }
    if (!ConditionalLockRelationOid(relation, mode)) return false;
    List* members = find_all_inheritors(relation, NoLock, nullptr);
    for (int i = 1; i < list_length(members); ++i) {
      if (!ConditionalLockRelationOid(list_nth_oid(members, i), mode)) return false;
    }
    return true;
  });
}

// Brings one table in line. Returns false when it had to be left as it is (lock not free).
bool sync_table(const RegisteredTable& table, Attach attach) {
  bool in_line = table.covered ? table.all_triggers : !table.any_triggers;
  if (attach == Attach::kIfFree && in_line) return true;
  if (!lock_table(table.relation, ShareRowExclusiveLock, attach == Attach::kWait)) return false;
  bool covered = covered_now(table.relation);
  TriggerState state = trigger_state(table);
  if (covered) {
    if (!state.complete) attach_triggers(table.relation, table.tenant_column, table.subject_column);
    return true;
  }
  if (!state.any) return true;
  // DROP TRIGGER takes ACCESS EXCLUSIVE: never queue for it (readers would queue behind us).
  if (!lock_table(table.relation, AccessExclusiveLock, false)) return false;
  detach_triggers(table.relation);
  return true;
}

int sync_tables(Oid relation, Attach attach) {
  pg::SpiConnection spi;
  int left = 0;
  for (const RegisteredTable& table : registered_tables(relation)) {
    if (!sync_table(table, attach)) ++left;
  }
  return left;
}

}  // namespace

// The launcher's step "hold triggers": catches up with what release and expiry could not do at once
// (a busy table), and with holds edited directly in privacy.legal_holds. One query when everything
// is in line.
void reconcile_triggers() { sync_tables(InvalidOid, Attach::kIfFree); }

bool sync_triggers(Oid relation, Attach attach) {
  if (!OidIsValid(relation)) return true;
  return sync_tables(relation, attach) == 0;
}

int sync_all_triggers(Attach attach) { return sync_tables(InvalidOid, attach); }

std::optional<HoldInfo> hold_on_table(Oid relation) {
  pg::SpiConnection spi;
  std::vector<pg::TextRow> rows;
  {
    pg::LatestSnapshot latest;
    rows = pg::spi_query_rows(
        "SELECT h.id::text, h.scope::text, h.scope_id, h.tenant_id, h.reason, h.created_by,"
        "       h.created_at::text, h.block_updates::text"
        "  FROM privacy.legal_holds h, (SELECT $1::oid::regclass AS relation) r"
        " WHERE " +
            std::string(kHoldCoversTable) + " ORDER BY h.id LIMIT 1",
        {pg::int8_param(static_cast<long long>(relation))}, true);
  }
  if (rows.empty()) return std::nullopt;
  const pg::TextRow& row = rows[0];
  return HoldInfo{row.int8(0), row.text(1), row.text(2), row[3],
                  row.text(4), row.text(5), row.text(6), row.boolean(7)};
}

void sync_triggers_of_new_table(Oid relation) {
  pg::SpiConnection spi;
  pg::spi_execute("LOCK TABLE privacy.legal_holds IN SHARE MODE");
  sync_triggers(relation, Attach::kWait);
}

}  // namespace privacy::holds

// privacy._sync_hold_triggers(rel regclass DEFAULT NULL, wait boolean DEFAULT false) -> integer:
// brings the triggers of one registered table (NULL: all) in line with the active holds and
// returns how many tables had to be left as they were (their lock was not free). wait = true
// waits for the table lock before attaching (place_hold). Superuser only; place_hold,
// release_hold and tests call it.
PRIVACY_SQL_FUNCTION(privacy_sync_hold_triggers) {
  Oid relation = PG_ARGISNULL(0) ? InvalidOid : PG_GETARG_OID(0);
  bool wait = !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);
  privacy::holds::Attach attach =
      wait ? privacy::holds::Attach::kWait : privacy::holds::Attach::kIfFree;
  int left = OidIsValid(relation) ? (privacy::holds::sync_triggers(relation, attach) ? 0 : 1)
                                  : privacy::holds::sync_all_triggers(attach);
  PG_RETURN_INT32(left);
}
