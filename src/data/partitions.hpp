// Partitions of registered tables (docs/soft-delete.md, "Partitioned tables").
//
// Row-level security is per relation: a query that names a partition directly applies that
// partition's policies, not its parent's. So every partition of a registered partitioned table
// (at every level) carries the same protection as the table itself: the policies, ENABLE + FORCE
// ROW LEVEL SECURITY, and the hold triggers while a hold could cover the table (holds/holds.hpp,
// kHoldTriggers; the column privacy_erased_by reaches partitions through PostgreSQL itself).
// privacy.registered_partitions lists them with their previous RLS state.
//
// Registration protects the partitions that exist; the DDL guard (data/ddl_guard.cpp) calls
// follow_tree_changes() after every command that may have created, attached or detached one.
#pragma once

#include "pg/pg_headers.hpp"
#include "pg/spi.hpp"

#include <string>
#include <vector>

namespace privacy::partitions {

// One partition as registration sees it.
struct Partition {
  Oid relid = InvalidOid;
  std::string qualified;   // "schema"."name", quoted
  std::string display;     // regclass text, for messages
  char kind = 'r';         // pg_class.relkind: 'r', 'p', or 'f' for a foreign table
  bool rls = false;        // relrowsecurity now
  bool force_rls = false;  // relforcerowsecurity now
};

// The relations of a table's partition tree: the table first, then every partition at every
// level (for a table that is not partitioned, the table alone). Reads the catalog as it is: the
// caller holds whatever lock it needs. PostgreSQL calls only, through pg_guard.
std::vector<Oid> tree_of(Oid table);

// One relation of a registered table's tree.
struct TreeMember {
  Oid table;     // the registered table
  Oid relation;  // the table itself or one of its partitions
};

// Every relation of every registered table that still exists: each table, then its partitions at
// every level (parents before children); tables in OID order. Needs SPI. on_active_snapshot:
// list the registered tables on the caller's active snapshot (holds_sync pushes the latest one).
std::vector<TreeMember> registered_trees(bool on_active_snapshot = false);

// The members as two parameters for `unnest($n::oid[], $m::oid[]) AS m(table_oid, relid)`.
// Catalog queries take the trees this way rather than from pg_partition_tree(), whose estimate
// of 1000 rows per call makes the planner JIT-compile them (over a second per query).
std::vector<pg::SqlParam> tree_params(const std::vector<TreeMember>& members);

// The partitions of `table` at every level, the table itself excluded. Needs SPI.
std::vector<Partition> partitions_of(Oid table);

// Protects each partition of a table being registered (its registered_tables row exists) and
// records it in privacy.registered_partitions. Needs SPI.
void protect_all(Oid table, const std::vector<Partition>& partitions);

// For unregister_table: every registered partition of `table` that still exists gets back its
// previous RLS state (the rows in registered_partitions go with the table's registration).
void release_all(Oid table);

// After a DDL command that created or altered `changed` (relations in partition trees or table
// inheritance), for the registered tables whose trees it touched: refuses what pg_privacy cannot
// protect (a registered table becoming a partition, table inheritance, a foreign-table
// partition), releases partitions that were detached (refusing the DETACH while they hold erased
// rows awaiting finalization or a hold could cover them), protects partitions that were created
// or attached, and brings the hold triggers of those tables in line. Other tables are left alone,
// so a command is never refused for what happened elsewhere. Needs SPI.
void follow_tree_changes(const std::vector<Oid>& changed);

}  // namespace privacy::partitions
