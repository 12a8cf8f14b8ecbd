// The backend's cache of registered tables' descriptions (registry::described_table; docs/
// architecture.md, "Descriptions of registered tables"). A job's batches used to read the
// description of their relation (six catalog and registry queries) in every batch; now once per
// backend until an invalidation message says it may have changed:
//   * a relcache invalidation of the table: every DDL on it (rename, columns, types, NOT NULL,
//     DROP), and every write of its registration, since the triggers of
//     privacy.registered_tables and privacy.column_rules send one (privacy_registration_changed
//     below, so that no writer, C++ or SQL, can forget it);
//   * NAMESPACEOID: a renamed schema changes the qualified names in the SQL text (all dropped);
//   * TYPEOID of a type a described column has (or its domain's base type): a renamed type
//     changes the casts in the SQL text.
// Messages are processed at the start of each transaction and whenever a lock is taken, so the
// next batch after the change commits reads the description again.
#include "data/registry.hpp"

#include "core/error.hpp"
#include "core/invalidated_cache.hpp"
#include "pg/boundary.hpp"

extern "C" {
#include "access/htup_details.h"
#include "commands/trigger.h"
#include "utils/inval.h"
#include "utils/syscache.h"
}

#include <set>

namespace privacy::registry {

namespace {

using Cache = core::InvalidatedCache<std::optional<TableInfo>>;

Cache& cache() {
  static Cache descriptions;
  return descriptions;
}

void relation_changed(Datum, Oid relation) {
  if (OidIsValid(relation)) {
    cache().forget(relation);
  } else {
    cache().forget_all();  // InvalidOid: every relation (after a lost message, a reset)
  }
}

void namespace_changed(Datum, int, uint32 hash) {
  (void)hash;  // any schema: a table's own and those of its columns' types
  cache().forget_all();
}

void type_changed(Datum, int, uint32 hash) {
  if (hash == 0) {
    cache().forget_all();  // every type
  } else {
    cache().forget_depending_on(hash);
  }
}

// Registered once per backend, on first use (PostgreSQL keeps callbacks for the backend's life).
void register_callbacks() {
  static bool registered = false;
  if (registered) return;
  pg::pg_guard([] {
    CacheRegisterRelcacheCallback(relation_changed, (Datum)0);
    CacheRegisterSyscacheCallback(NAMESPACEOID, namespace_changed, (Datum)0);
    CacheRegisterSyscacheCallback(TYPEOID, type_changed, (Datum)0);
  });
  registered = true;
}

uint32 type_hash(Oid type) {
  return pg::pg_guard([&] { return GetSysCacheHashValue1(TYPEOID, ObjectIdGetDatum(type)); });
}

// The syscache hashes of the types the description's SQL names (columns' types and domains'
// base types).
std::set<uint32> type_dependencies(const TableInfo& table) {
  std::vector<const Column*> columns{&table.subject};
  if (table.tenant) columns.push_back(&*table.tenant);
  for (const Column& key : table.keys) columns.push_back(&key);
  for (const auto& [column, rule] : table.rules) columns.push_back(&column);
  std::set<uint32> hashes;
  for (const Column* column : columns) {
    hashes.insert(type_hash(column->type));
    hashes.insert(type_hash(column->base_type));
  }
  return hashes;
}

}  // namespace

std::optional<TableInfo> described_table(Oid relid) {
  register_callbacks();
  if (std::optional<std::optional<TableInfo>> cached = cache().find(relid)) return *cached;
  Cache::Ticket ticket = cache().ticket();
  std::optional<TableInfo> table = load_table(relid);
  (void)cache().store(ticket, relid, table, table ? type_dependencies(*table) : std::set<uint32>{});
  return table;
}

}  // namespace privacy::registry

// ---------------------------------------------------------------------------------------------
// SQL entry points
// ---------------------------------------------------------------------------------------------
namespace {

using privacy::core::Error;
namespace pg = privacy::pg;
namespace sqlstate = privacy::core::sqlstate;

// A relcache invalidation of `relation` at commit, unless it is gone (DROP sent its own; the
// DDL guard deletes the registration of a dropped table after pg_class lost it).
void announce(Oid relation) {
  pg::pg_guard([&] {
    if (SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relation)))
      CacheInvalidateRelcacheByRelid(relation);
  });
}

// The `relation` column of a row of privacy.registered_tables or privacy.column_rules.
void announce_row(TriggerData* trigger, HeapTuple row) {
  if (row == nullptr) return;
  pg::pg_guard([&] {
    TupleDesc descriptor = RelationGetDescr(trigger->tg_relation);
    int attribute = SPI_fnumber(descriptor, "relation");
    if (attribute <= 0) elog(ERROR, "pg_privacy: registry table without a relation column");
    bool is_null = false;
    Datum relation = heap_getattr(row, attribute, descriptor, &is_null);
    if (!is_null) announce(DatumGetObjectId(relation));
  });
}

}  // namespace

// AFTER INSERT OR UPDATE OR DELETE ON privacy.registered_tables and privacy.column_rules, FOR
// EACH ROW (and AFTER TRUNCATE, FOR EACH STATEMENT): the registration of a table changed, so
// every backend drops its cached description of it when this transaction commits (this one at
// its next command). A trigger rather than a call in each writer: registry.cpp, the DDL guard,
// Citus' copies and any SQL all write these tables, and none can forget it.
PRIVACY_SQL_FUNCTION(privacy_registration_changed) {
  if (!CALLED_AS_TRIGGER(fcinfo)) {
    throw Error(sqlstate::kObjectNotInPrerequisiteState,
                "privacy._registration_changed() must be called as a trigger");
  }
  auto* trigger = reinterpret_cast<TriggerData*>(fcinfo->context);
  if (TRIGGER_FIRED_BY_TRUNCATE(trigger->tg_event)) {
    pg::pg_guard([] { CacheInvalidateRelcacheAll(); });
    return PointerGetDatum(nullptr);
  }
  announce_row(trigger, trigger->tg_trigtuple);
  if (TRIGGER_FIRED_BY_UPDATE(trigger->tg_event)) announce_row(trigger, trigger->tg_newtuple);
  return PointerGetDatum(nullptr);
}
