#include "holds/cache.hpp"

#include "citus/node.hpp"
#include "holds/shared.hpp"
#include "pg/boundary.hpp"

extern "C" {
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "storage/proc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

#include <algorithm>
#include <cstring>
#include <unordered_map>

namespace privacy::holds {

namespace {

struct CachedHold {
  HoldInfo info;
  Oid relation;  // table holds: the table
  bool expires;
  TimestampTz expires_at;
};

struct HoldCache {
  bool valid = false;
  uint64 generation = 0;        // shared generation the copy was read at
  LocalTransactionId lxid = 0;  // statement key (no shared memory, or own changes)
  TimestampTz statement_start = 0;
  CommandId command_id = 0;
  TimestampTz earliest_expiry = DT_NOEND;
  std::vector<CachedHold> holds;
  std::unordered_map<std::string, std::vector<size_t>> tenant_holds;   // tenant -> holds
  std::unordered_map<std::string, std::vector<size_t>> subject_holds;  // subject -> holds
  std::unordered_map<Oid, std::vector<size_t>> table_holds;            // relation -> holds
};

HoldCache cache;

// One row of privacy.legal_holds as read inside the guard: palloc'd C strings only.
struct RawHold {
  int64 id;
  char* scope;
  char* scope_id;
  char* tenant_id;  // nullptr = NULL
  char* reason;
  char* created_by;
  char* created_at;
  bool block_updates;
  bool expires;
  TimestampTz expires_at;
  Oid relation;
};

struct RawHolds {
  RawHold* rows;
  int count;
};

char* text_column(HeapTuple tuple, TupleDesc desc, int attnum) {
  bool isnull = false;
  Datum value = heap_getattr(tuple, attnum, desc, &isnull);
  return isnull ? nullptr : TextDatumGetCString(value);
}

int column_number(TupleDesc desc, const char* name) {
  int attnum = SPI_fnumber(desc, name);
  if (attnum <= 0) elog(ERROR, "pg_privacy: privacy.legal_holds has no column \"%s\"", name);
  return attnum;
}

// Reads every active, unexpired hold of `table_oid` (InvalidOid: privacy.legal_holds) with the
// latest snapshot. PostgreSQL calls only (runs
// inside pg_guard); everything is palloc'd in the caller's memory context. A heap scan rather
// than SPI: it needs no privilege on the table (the trigger runs as whoever writes) and no plan.
RawHolds read_active_holds(TimestampTz now, Oid table_oid) {
  if (!OidIsValid(table_oid)) {
    Oid schema = get_namespace_oid("privacy", false);
    table_oid = get_relname_relid("legal_holds", schema);
  }
  if (!OidIsValid(table_oid)) elog(ERROR, "pg_privacy: privacy.legal_holds does not exist");
  Relation table = table_open(table_oid, AccessShareLock);
  TupleDesc desc = RelationGetDescr(table);
  const int id_col = column_number(desc, "id"), scope_col = column_number(desc, "scope"),
            scope_id_col = column_number(desc, "scope_id"),
            tenant_col = column_number(desc, "tenant_id"),
            reason_col = column_number(desc, "reason"), by_col = column_number(desc, "created_by"),
            at_col = column_number(desc, "created_at"), active_col = column_number(desc, "active"),
            expires_col = column_number(desc, "expires_at"),
            updates_col = column_number(desc, "block_updates"),
            relation_col = column_number(desc, "relation");
  Oid scope_output = InvalidOid;
  bool scope_varlena = false;
  getTypeOutputInfo(TupleDescAttr(desc, scope_col - 1)->atttypid, &scope_output, &scope_varlena);

  RawHolds result{nullptr, 0};
  int capacity = 16;
  result.rows = static_cast<RawHold*>(palloc(sizeof(RawHold) * capacity));
  Snapshot snapshot = RegisterSnapshot(GetLatestSnapshot());
  TableScanDesc scan = table_beginscan(table, snapshot, 0, nullptr);
  HeapTuple tuple;
  while ((tuple = heap_getnext(scan, ForwardScanDirection)) != nullptr) {
    bool isnull = false;
    Datum active = heap_getattr(tuple, active_col, desc, &isnull);
    if (isnull || !DatumGetBool(active)) continue;
    Datum expires_at = heap_getattr(tuple, expires_col, desc, &isnull);
    bool expires = !isnull;
    if (expires && DatumGetTimestampTz(expires_at) <= now) continue;
    if (result.count == capacity) {
      capacity *= 2;
      result.rows = static_cast<RawHold*>(repalloc(result.rows, sizeof(RawHold) * capacity));
    }
    RawHold& row = result.rows[result.count++];
    row.id = DatumGetInt64(heap_getattr(tuple, id_col, desc, &isnull));
    row.scope = OidOutputFunctionCall(scope_output, heap_getattr(tuple, scope_col, desc, &isnull));
    row.scope_id = text_column(tuple, desc, scope_id_col);
    row.tenant_id = text_column(tuple, desc, tenant_col);
    row.reason = text_column(tuple, desc, reason_col);
    row.created_by = text_column(tuple, desc, by_col);
    row.created_at = pstrdup(
        timestamptz_to_str(DatumGetTimestampTz(heap_getattr(tuple, at_col, desc, &isnull))));
    row.block_updates = DatumGetBool(heap_getattr(tuple, updates_col, desc, &isnull));
    row.expires = expires;
    row.expires_at = expires ? DatumGetTimestampTz(expires_at) : DT_NOEND;
    // Table holds name their table by OID (scope_id is only its name when the hold was placed).
    Datum relation = heap_getattr(tuple, relation_col, desc, &isnull);
    row.relation = isnull ? InvalidOid : DatumGetObjectId(relation);
  }
  table_endscan(scan);
  UnregisterSnapshot(snapshot);
  table_close(table, AccessShareLock);
  return result;
}

void set_statement_key() {
  cache.lxid = MyProc->lxid;
  cache.statement_start = GetCurrentStatementStartTimestamp();
  cache.command_id = GetCurrentCommandId(false);
}

bool same_statement() {
  return cache.lxid == MyProc->lxid &&
         cache.statement_start == GetCurrentStatementStartTimestamp() &&
         cache.command_id == GetCurrentCommandId(false);
}

// On a Citus worker node privacy.legal_holds stays empty: the coordinator's holds are in this
// node's placement of the reference table privacy.hold_replica (docs/citus.md, "Legal holds"),
// which Citus writes with two-phase commit and no trigger of ours sees, so the generation does
// not move: there the copy is re-read once per statement. Asked once per transaction.
struct HoldSource {
  LocalTransactionId lxid = InvalidLocalTransactionId;
  std::optional<Oid> worker_replica;  // nullopt: not a Citus worker node
};

HoldSource hold_source;

const std::optional<Oid>& worker_replica() {
  if (hold_source.lxid != MyProc->lxid) {
    hold_source = HoldSource{MyProc->lxid, citus_node::hold_replica_placement()};
  }
  return hold_source.worker_replica;
}

// True when the copy may be used without looking at the expiry: the generation (or statement)
// it was read at is still current.
bool generation_current() {
  if (!cache.valid) return false;
  if (shared::available() && !shared::changed_in_this_transaction() && !worker_replica()) {
    return shared::generation() == cache.generation;
  }
  return same_statement();
}

void reload() {
  // Read the generation BEFORE the table: a change committed in between moves it again and the
  // next check reloads. Read after the scan, it could pair a copy that misses that change with
  // the generation that announced it, and the change would go unseen.
  uint64 generation = shared::available() ? shared::generation() : 0;
  TimestampTz now = GetCurrentTimestamp();
  MemoryContext caller = CurrentMemoryContext;
  MemoryContext scratch = pg::pg_guard([&] {
    return AllocSetContextCreate(caller, "pg_privacy holds reload", ALLOCSET_SMALL_SIZES);
  });
  RawHolds raw{nullptr, 0};
  try {
    std::optional<Oid> replica = worker_replica();
    raw = pg::pg_guard([&] {
      MemoryContext previous = MemoryContextSwitchTo(scratch);
      // A worker node without a placement has no hold to read.
      RawHolds rows = replica && !OidIsValid(*replica)
                          ? RawHolds{nullptr, 0}
                          : read_active_holds(now, replica.value_or(InvalidOid));
      MemoryContextSwitchTo(previous);
      return rows;
    });
  } catch (...) {
    MemoryContextDelete(scratch);
    cache.valid = false;
    throw;
  }

  cache = HoldCache{};
  for (int i = 0; i < raw.count; ++i) {
    const RawHold& row = raw.rows[i];
    CachedHold hold{
        HoldInfo{row.id, row.scope, row.scope_id,
                 row.tenant_id ? std::optional<std::string>(row.tenant_id) : std::nullopt,
                 row.reason, row.created_by, row.created_at, row.block_updates},
        row.relation, row.expires, row.expires_at};
    size_t index = cache.holds.size();
    if (hold.expires && hold.expires_at < cache.earliest_expiry)
      cache.earliest_expiry = hold.expires_at;
    if (hold.info.scope == "tenant")
      cache.tenant_holds[hold.info.scope_id].push_back(index);
    else if (hold.info.scope == "subject")
      cache.subject_holds[hold.info.scope_id].push_back(index);
    else if (OidIsValid(hold.relation))
      cache.table_holds[hold.relation].push_back(index);
    cache.holds.push_back(std::move(hold));
  }
  MemoryContextDelete(scratch);
  cache.generation = generation;
  set_statement_key();
  cache.valid = true;
}

// A table hold on a registered partitioned table covers its partitions, at every level: the
// relations a table hold may name for rows of `relation` are the relation and the partitioned
// tables above it. Looked up once per statement and relation (the row trigger asks per row): the
// statement's lock on the relation keeps it from being attached or detached meanwhile.
struct HeldRelations {
  LocalTransactionId lxid = 0;
  TimestampTz statement_start = 0;
  CommandId command_id = 0;
  std::unordered_map<Oid, std::vector<Oid>> by_relation;
};

HeldRelations held_relations_memo;

const std::vector<Oid>& relations_a_table_hold_may_name(Oid relation) {
  HeldRelations& memo = held_relations_memo;
  if (memo.lxid != MyProc->lxid || memo.statement_start != GetCurrentStatementStartTimestamp() ||
      memo.command_id != GetCurrentCommandId(false)) {
    memo.by_relation.clear();
    memo.lxid = MyProc->lxid;
    memo.statement_start = GetCurrentStatementStartTimestamp();
    memo.command_id = GetCurrentCommandId(false);
  }
  auto found = memo.by_relation.find(relation);
  if (found != memo.by_relation.end()) return found->second;
  List* ancestors = pg::pg_guard(
      [&] { return get_rel_relispartition(relation) ? get_partition_ancestors(relation) : NIL; });
  std::vector<Oid> relations{relation};
  for (int i = 0; i < list_length(ancestors); ++i) relations.push_back(list_nth_oid(ancestors, i));
  return memo.by_relation.emplace(relation, std::move(relations)).first->second;
}

void refresh_if_stale() {
  if (generation_current()) {
    if (cache.earliest_expiry == DT_NOEND || GetCurrentTimestamp() < cache.earliest_expiry) return;
  }
  reload();
}

bool still_in_force(const CachedHold& hold, TimestampTz now) {
  return !hold.expires || hold.expires_at > now;
}

bool blocks(const CachedHold& hold, const HoldTarget& target, TimestampTz now) {
  if (!still_in_force(hold, now)) return false;
  if (target.updates_only && !hold.info.block_updates) return false;
  return true;
}

}  // namespace

bool known_to_have_no_holds() { return generation_current() && cache.holds.empty(); }

std::optional<HoldInfo> covering_hold(const HoldTarget& target) {
  refresh_if_stale();
  if (cache.holds.empty()) return std::nullopt;
  // The clock is read only when a hold matches: most rows match none (the trigger's held path).
  TimestampTz now = 0;
  bool have_now = false;
  const CachedHold* best = nullptr;
  auto consider = [&](size_t index, bool covers) {
    const CachedHold& hold = cache.holds[index];
    if (!covers) return;
    if (!have_now) {
      now = GetCurrentTimestamp();
      have_now = true;
    }
    if (!blocks(hold, target, now)) return;
    if (best == nullptr || hold.info.id < best->info.id) best = &hold;
  };

  // Tenant holds: the row's tenant, or every tenant when the row's tenant is unknown.
  if (target.tenant_id) {
    auto found = cache.tenant_holds.find(*target.tenant_id);
    if (found != cache.tenant_holds.end()) {
      for (size_t index : found->second) consider(index, true);
    }
  } else {
    for (const auto& entry : cache.tenant_holds) {
      for (size_t index : entry.second) consider(index, true);
    }
  }
  // Subject holds: that subject (or any subject when none is given) within the tenant.
  if (target.subject_id) {
    auto found = cache.subject_holds.find(*target.subject_id);
    if (found != cache.subject_holds.end()) {
      for (size_t index : found->second) {
        const auto& hold_tenant = cache.holds[index].info.tenant_id;
        consider(index, !target.tenant_id || hold_tenant == target.tenant_id);
      }
    }
  } else {
    for (const auto& entry : cache.subject_holds) {
      for (size_t index : entry.second) {
        const auto& hold_tenant = cache.holds[index].info.tenant_id;
        consider(index, !target.tenant_id || hold_tenant == target.tenant_id);
      }
    }
  }
  // Table holds: the table (or a partitioned table above it), possibly limited to one tenant's
  // rows.
  if (OidIsValid(target.relation) && !cache.table_holds.empty()) {
    for (Oid held : relations_a_table_hold_may_name(target.relation)) {
      auto found = cache.table_holds.find(held);
      if (found == cache.table_holds.end()) continue;
      for (size_t index : found->second) {
        const auto& hold_tenant = cache.holds[index].info.tenant_id;
        consider(index, !hold_tenant || !target.tenant_id || hold_tenant == target.tenant_id);
      }
    }
  }
  if (best == nullptr) return std::nullopt;
  return best->info;
}

RelationHolds holds_for_relation(Oid relation) {
  refresh_if_stale();
  RelationHolds result;
  TimestampTz now = GetCurrentTimestamp();
  std::vector<Oid> held_relations;
  if (!cache.table_holds.empty()) held_relations = relations_a_table_hold_may_name(relation);
  auto names_this_relation = [&](const CachedHold& hold) {
    return std::find(held_relations.begin(), held_relations.end(), hold.relation) !=
           held_relations.end();
  };
  for (const CachedHold& hold : cache.holds) {
    if (!still_in_force(hold, now)) continue;
    if (hold.info.scope == "tenant") {
      result.held_tenants.push_back(hold.info.scope_id);
    } else if (hold.info.scope == "subject") {
      result.held_subjects.emplace_back(hold.info.tenant_id.value_or(""), hold.info.scope_id);
    } else if (names_this_relation(hold)) {
      if (!hold.info.tenant_id) {
        if (!result.whole_table || hold.info.id < result.whole_table->id)
          result.whole_table = hold.info;
      } else {
        result.table_hold_tenants.push_back(*hold.info.tenant_id);
      }
    }
  }
  return result;
}

void invalidate_cache() { cache.valid = false; }

}  // namespace privacy::holds
