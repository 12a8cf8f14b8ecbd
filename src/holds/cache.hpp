// Each backend's copy of the active legal holds, used by the row trigger and by find_hold.
//
// The copy is re-read from privacy.legal_holds only when it may be stale:
//  * with the library preloaded: when the shared generation counter moved (a hold was placed,
//    released or expired and that transaction committed), when this transaction changed holds
//    itself, or when the earliest expires_at among the cached holds has passed;
//  * without preload (no shared memory): once per statement (keyed by local transaction id,
//    statement start time and command id), and when an expiry passes.
// It is read with the latest snapshot (not the transaction's), bypassing privileges, so a
// REPEATABLE READ transaction still sees a hold committed after it started.
#pragma once

#include "holds/holds.hpp"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace privacy::holds {

// What is about to be removed or changed.
struct HoldTarget {
  Oid relation = InvalidOid;              // InvalidOid: no particular table
  std::optional<std::string> tenant_id;   // nullopt: unknown (a table without tenant column);
                                          // then every tenant and subject hold is assumed
                                          // to possibly cover the row (fail safe)
  std::optional<std::string> subject_id;  // nullopt: any subject of the tenant
  bool updates_only = false;              // an UPDATE: holds with block_updates = false
                                          // do not cover it
};

// True when the cache is current and holds no active hold: the trigger's fast path, one atomic
// read when preloaded.
bool known_to_have_no_holds();

// The covering hold with the lowest id, or nullopt. Refreshes the cache first when needed.
std::optional<HoldInfo> covering_hold(const HoldTarget& target);

// The active holds that could cover rows of this relation (table holds naming it or a
// partitioned table above it, and any tenant or subject hold): the TRUNCATE check uses them to
// decide whether to look at the rows.
struct RelationHolds {
  std::optional<HoldInfo> whole_table;          // a table hold without tenant
  std::vector<std::string> table_hold_tenants;  // table holds limited to a tenant
  std::vector<std::string> held_tenants;        // tenant holds
  std::vector<std::pair<std::string, std::string>> held_subjects;  // (tenant, subject)
};
RelationHolds holds_for_relation(Oid relation);

// Forgets the cached holds (called at the end of a transaction that changed them).
void invalidate_cache();

}  // namespace privacy::holds
