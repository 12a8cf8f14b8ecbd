// Legal holds (docs/legal-holds.md): the one place that answers "is this data held?".
// Everything that removes or changes subject data asks here: request submission, every job
// batch, finalization, and the enforcement triggers on registered tables (holds/trigger.cpp).
// The answer comes from a per-backend cache of the active holds (holds/cache.hpp) that is
// re-read only when a hold was placed, released or expired since.
#pragma once

#include "pg/pg_headers.hpp"

#include <optional>
#include <string>

namespace privacy::holds {

struct HoldInfo {
  long long id;
  std::string scope;     // "tenant", "subject" or "table"
  std::string scope_id;  // tenant id, subject id, or the table's name when the hold was placed
  std::optional<std::string> tenant_id;
  std::string reason;
  std::string created_by;
  std::string created_at;
  bool block_updates;
};

// The first (lowest id) active, unexpired hold that covers a target: a whole tenant, a subject
// within it (subject_id nullopt means "any subject of the tenant", as for a tenant purge), and,
// when relation is valid, the table itself. Holds committed by other sessions are seen at once,
// whatever the caller's isolation level. Records nothing.
std::optional<HoldInfo> find_hold(const std::string& tenant_id,
                                  const std::optional<std::string>& subject_id,
                                  Oid relation = InvalidOid);

// Throws PV001 naming the hold, its reason and who placed it, when find_hold finds one, after
// queueing a hold_blocked audit row (report_blocked). `what` says what was refused, e.g.
// "erase of subject 42 of tenant acme". Use find_hold to skip held data silently instead.
void ensure_not_held(const std::string& what, const std::string& tenant_id,
                     const std::optional<std::string>& subject_id, Oid relation = InvalidOid);

// The PV001 error for a hold (shared by every path that refuses).
[[noreturn]] void raise_hold_error(const std::string& what, const HoldInfo& hold);

// Records that `operation` was refused by `hold`, in a way that survives the refused
// transaction's rollback: a shared-memory queue the launcher writes to the audit log as a
// hold_blocked row carrying this session's identity. Without preload (or in a database other
// than privacy.database) it can only write a LOG line to the server log.
void report_blocked(const std::string& operation, const std::optional<std::string>& tenant_id,
                    Oid relation, const HoldInfo& hold);

// The first (lowest id) active, unexpired hold that could cover rows of registered table
// `relation`: a table hold on it, or any tenant or subject hold. Read with the latest snapshot.
// Whatever removes a table's enforcement (unregister_table, DETACH PARTITION) asks here first.
// Opens its own SPI connection.
std::optional<HoldInfo> hold_on_table(Oid relation);

// How sync may wait for a table's lock before attaching the triggers.
enum class Attach {
  kWait,    // wait (place_hold, register_table: the hold must be enforced when it commits)
  kIfFree,  // only if the lock is free at once (release, expiry, the launcher's catch-up)
};

// Attaches the enforcement triggers to a registered table while an active, unexpired hold could
// cover its rows (any tenant or subject hold; a table hold naming it) and drops them when none
// does, so tables without holds pay nothing (docs/legal-holds.md, "Cost when nothing is held").
// Decides after locking the table, on the latest snapshot. Dropping never waits for its ACCESS
// EXCLUSIVE lock: a busy table keeps its (then inert) triggers until the launcher's next cycle.
// Returns false when the table had to be left as it was. Opens its own SPI connection.
bool sync_triggers(Oid relation, Attach attach = Attach::kWait);

// sync_triggers for every registered table, in OID order; returns how many were left as they were.
int sync_all_triggers(Attach attach);

// For register_table, after inserting the registration: first waits for uncommitted changes of
// privacy.legal_holds (a hold being placed lists the registered tables only after its INSERT, and
// so may miss this one), then syncs with Attach::kWait.
void sync_triggers_of_new_table(Oid relation);

// Copies hold `hold_id` as it is now to every Citus node, in the caller's transaction
// (citus/holds.cpp, docs/citus.md "Legal holds"); does nothing without Citus worker nodes.
// Refuses (0A000) a table hold on a Citus table. Needs SPI.
void replicate_to_citus_nodes(long long hold_id);

// The launcher's expiry step: marks holds past expires_at inactive (audited hold_expired) and
// syncs the triggers. Needs an SPI connection. Also privacy._expire_holds() (superuser).
void expire_holds();

// The launcher's step "hold_blocked audit": audits the hold_blocked events other backends queued
// in shared memory (holds/holds.cpp). Needs SPI.
void write_blocked_events();

// The launcher's step "hold triggers": attaches and detaches triggers that release, expiry or a
// direct edit of privacy.legal_holds left behind on a busy table (holds/sync.cpp). Needs SPI.
void reconcile_triggers();

namespace citus {
// The launcher's step "Citus holds" (citus/holds.cpp): copies the holds to the Citus worker
// nodes and audits what the workers refused. Does nothing without worker nodes. Needs SPI.
void citus_holds_step();
}  // namespace citus

// One of the enforcement triggers (docs/legal-holds.md, "The triggers"). Everything that
// creates, recognizes or checks them (attach_triggers, sync, the tamper guard) reads kHoldTriggers.
struct HoldTriggerSpec {
  const char* name;      // pg_trigger.tgname
  const char* function;  // privacy._hold_guard or privacy._hold_guard_truncate
  const char* events;    // CREATE TRIGGER text between the name and "ON table"
  const char* per;       // the rest before EXECUTE FUNCTION: REFERENCING ... FOR EACH ...
  int tgtype;            // pg_trigger.tgtype of that definition
  bool old_table;        // REFERENCING OLD TABLE (pg_trigger.tgoldtable set)
  bool new_table;        // REFERENCING NEW TABLE
  char enabled;          // pg_trigger.tgenabled: 'A' (ENABLE ALWAYS) or 'R' (ENABLE REPLICA)
  bool on_partitioned;   // partitioned tables get it too; row triggers go on leaf partitions only
};

// The enforcement triggers, each on every relation of a registered table's tree it applies to:
//  * privacy_hold_guard_delete / _update: AFTER DELETE / AFTER UPDATE FOR EACH ROW, ENABLE ALWAYS,
//    on the table or each leaf partition: every DELETE and UPDATE, of a session or of the logical
//    replication apply worker (which fires row triggers only). AFTER, so no old row is locked for
//    it (a BEFORE ROW trigger makes PostgreSQL lock every old row first); per row, so no row is
//    copied either: PostgreSQL queues one small event per changed row (about 12 bytes, the row's
//    address) and hands the trigger the row at the end of the statement. The statement triggers
//    with transition tables of 0.1.0 copied every row into a tuplestore, which cost a bulk DELETE
//    more than the check itself (docs/performance.md, B5);
//  * privacy_hold_guard_truncate: BEFORE TRUNCATE FOR EACH STATEMENT, ALWAYS, on every relation of
//    the tree (TRUNCATE fires no row trigger, and only the statement triggers of the tables it
//    names: PostgreSQL does not clone statement triggers into partitions).
// Row triggers go on leaf partitions only: on a partitioned table PostgreSQL would clone them
// into each partition created later, as the role creating the partition, which may not execute
// privacy._hold_guard; pg_privacy attaches them to new partitions itself (data/partitions.cpp).
extern const HoldTriggerSpec kHoldTriggers[3];

// The names of kHoldTriggers, and of the hold triggers earlier versions attached
// (privacy_hold_guard_replica), as SQL literals for an IN (...) list: what detach drops and what
// sync counts, so a trigger of an earlier version is replaced.
std::string hold_trigger_names_sql();

// Whether a trigger of this name on a relation (partitioned or not) is one pg_privacy no longer
// attaches there: a retired name, or a row trigger's name on a partitioned table (0.1.0 attached
// statement triggers under those names to partitioned tables). attach_triggers drops them.
bool stale_hold_trigger(const char* name, bool partitioned);

// A SQL condition that is true when `trigger` (a pg_trigger row) is one of kHoldTriggers, in
// order: its definition, ENABLE state, function and arguments (the SQL expressions
// subject_sql, tenant_sql: the registered columns, tenant '' when there is none), no WHEN
// clause, no column list. One definition for the tamper guard and attach_triggers.
std::string trigger_in_order_sql(const std::string& trigger, const std::string& subject_sql,
                                 const std::string& tenant_sql);

// Creates the enforcement triggers (kHoldTriggers) on every relation of a registered table's
// tree where they are missing or not in order (called by sync_triggers). pg_privacy attaches the
// triggers of partitions created later itself (data/partitions.cpp). Idempotent. Needs an SPI
// connection (opens its own) and the privilege to create triggers on the table (the extension's
// SECURITY DEFINER functions have it). Throws 42703 when a column does not exist.
void attach_triggers(Oid relation, const std::string& tenant_column_or_empty,
                     const std::string& subject_column);

// Drops the enforcement triggers from the table and each of its partitions, if present (called by
// sync_triggers, unregister_table and for a detached partition). Idempotent.
void detach_triggers(Oid relation);

}  // namespace privacy::holds
