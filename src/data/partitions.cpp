// Partitions of registered tables (data/partitions.hpp, docs/soft-delete.md "Partitioned tables").
#include "data/partitions.hpp"

#include "audit/audit.hpp"
#include "holds/holds.hpp"
#include "pg/boundary.hpp"
#include "pg/spi.hpp"
#include "data/softdelete.hpp"

extern "C" {
#include "catalog/pg_inherits.h"
}

#include <set>

namespace privacy::partitions {

using core::Error;
namespace sqlstate = core::sqlstate;

namespace {

std::string qualified_name(Oid relid) {
  return *pg::spi_query_text(
      "SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)"
      "  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
      " WHERE c.oid = $1::oid",
      {pg::oid_param(relid)});
}

// Hides the erased rows of one partition and records it with its previous RLS state.
void protect(Oid table, const Partition& partition) {
  softdelete::hide_erased_rows(partition.qualified, partition.rls, partition.force_rls);
  pg::spi_execute(
      "INSERT INTO privacy.registered_partitions (relation, registered_table, had_rls, had_force_rls)"
      " VALUES ($1::oid::pg_catalog.regclass, $2::oid::pg_catalog.regclass, $3, $4)",
      {pg::oid_param(partition.relid), pg::oid_param(table), pg::bool_param(partition.rls),
       pg::bool_param(partition.force_rls)});
}

void audit_partition(const std::string& action, Oid table, const std::string& partition,
                     bool had_rls, bool had_force_rls) {
  std::string detail = *pg::spi_query_text(
      "SELECT pg_catalog.jsonb_build_object('table', $1::oid::pg_catalog.regclass::text,"
      "  'rls', $2::boolean, 'force_rls', $3::boolean)::text",
      {pg::oid_param(table), pg::bool_param(had_rls), pg::bool_param(had_force_rls)});
  audit::append({action, std::nullopt, std::nullopt, partition, "ok", detail});
}

// A registered table that became a partition (ATTACH PARTITION) or an inheritance child: its rows
// would be read through a parent whose policies pg_privacy does not control.
void refuse_registered_table_as_child(const std::vector<Oid>& relations) {
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "SELECT r.relation::text, i.inhparent::pg_catalog.regclass::text"
      "  FROM privacy.registered_tables r JOIN pg_catalog.pg_inherits i ON i.inhrelid = r.relation"
      " WHERE r.relation::oid = ANY ($1::oid[]) ORDER BY r.relation::oid LIMIT 1",
      {pg::oid_array_param(relations)});
  if (rows.empty()) return;
  const std::string& table = *rows[0][0];
  throw Error(sqlstate::kFeatureNotSupported,
              "registered table " + table + " cannot become a partition or inheritance child of " +
                  *rows[0][1],
              "Rows read through " + *rows[0][1] +
                  " would not be filtered by the row level security of " + table + ".",
              "Unregister it first (privacy.unregister_table('" + table + "')); registering " +
                  *rows[0][1] + " then protects it as a partition.");
}

// Classic inheritance (not partitioning) involving one of `relations` and a registered table or
// partition: a child's rows would be read through the parent's policies only.
void refuse_inheritance(const std::vector<Oid>& relations) {
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "WITH protected AS (SELECT relation::oid AS relid FROM privacy.registered_tables"
      "                   UNION SELECT relation::oid FROM privacy.registered_partitions)"
      " SELECT i.inhrelid::pg_catalog.regclass::text, i.inhparent::pg_catalog.regclass::text"
      "   FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class child ON child.oid = i.inhrelid"
      "  WHERE NOT child.relispartition"
      "    AND (i.inhparent = ANY ($1::oid[]) OR i.inhrelid = ANY ($1::oid[]))"
      "    AND (i.inhparent IN (SELECT relid FROM protected) OR i.inhrelid IN (SELECT relid FROM protected))"
      "  ORDER BY i.inhrelid LIMIT 1",
      {pg::oid_array_param(relations)});
  if (rows.empty()) return;
  throw Error(
      sqlstate::kFeatureNotSupported,
      "table " + *rows[0][0] + " cannot inherit from " + *rows[0][1] +
          ": tables registered with pg_privacy do not take part in table inheritance",
      "Rows read through an inheritance parent are not filtered by the child's row level security.",
      "Use declarative partitioning (PARTITION BY, PARTITION OF) instead.");
}

// Refuses to detach a partition whose rows would escape: erased rows awaiting finalization (no
// job finalizes a table that is not registered) or rows a hold could cover.
void refuse_detach_while_needed(Oid table, Oid partition, const std::string& partition_display) {
  std::string qualified = qualified_name(partition);
  std::vector<pg::TextRow> marked = pg::spi_query_rows(
      "SELECT count(*)::text, pg_catalog.string_agg(DISTINCT privacy_erased_by::text, ', ')"
      "  FROM " +
      qualified + " WHERE privacy_erased_by IS NOT NULL");
  std::string table_display = pg::relation_display(table);
  if (*marked[0][0] != "0") {
    throw Error(sqlstate::kObjectNotInPrerequisiteState,
                "partition " + partition_display + " of registered table " + table_display +
                    " still has " + *marked[0][0] +
                    " erased rows awaiting finalization and cannot be detached",
                "Rows are marked by job(s) " + marked[0][1].value_or("") + ".",
                "Restore them with privacy.restore(job_id, '" + table_display +
                    "') or wait until the jobs are finalized, then detach the partition.");
  }
  std::optional<holds::HoldInfo> hold = holds::hold_on_table(table);
  if (hold) {
    holds::report_blocked("DETACH PARTITION", hold->tenant_id, partition, *hold);
    holds::raise_hold_error(
        "DETACH of partition " + partition_display + " of registered table " + table_display,
        *hold);
  }
}

// A partition that left its registered table's tree: back to its previous RLS state, without the
// hold triggers. It keeps the (empty) column privacy_erased_by, so it can be attached again.
void release_detached(Oid table, Oid partition, bool had_rls, bool had_force_rls) {
  bool exists = pg::spi_query_text("SELECT 1 FROM pg_catalog.pg_class WHERE oid = $1::oid",
                                   {pg::oid_param(partition)})
                    .has_value();
  std::string display = pg::relation_display(partition);
  if (exists) {
    refuse_detach_while_needed(table, partition, display);
    softdelete::show_all_rows(qualified_name(partition), had_rls, had_force_rls);
    holds::detach_triggers(partition);
  }
  pg::spi_execute("DELETE FROM privacy.registered_partitions WHERE relation = $1::oid",
                  {pg::oid_param(partition)});
  audit_partition("partition_detached", table, display, had_rls, had_force_rls);
}

Partition partition_from_row(const pg::TextRow& row) {
  Partition partition;
  partition.relid = pg::oid_from_text(row[0]);
  partition.qualified = *row[1];
  partition.display = *row[2];
  partition.kind = (*row[3])[0];
  partition.rls = row.boolean(4);
  partition.force_rls = row.boolean(5);
  return partition;
}

// The columns partition_from_row reads, for a relation c in schema n.
constexpr const char* kPartitionColumns =
    "c.oid::text, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),"
    " c.oid::pg_catalog.regclass::text, c.relkind::text, c.relrowsecurity::text, c.relforcerowsecurity::text";

// A partition created or attached under a registered table: protected like its siblings.
void protect_new(Oid table, const Partition& partition) {
  if (partition.kind == 'f') {
    throw Error(
        sqlstate::kWrongObjectType,
        "foreign table " + partition.display + " cannot be a partition of registered table " +
            pg::relation_display(table),
        "Foreign tables have no row level security, so pg_privacy cannot hide their erased rows.",
        "Keep the rows in a local partition, or unregister the table first.");
  }
  protect(table, partition);
  audit_partition("partition_added", table, partition.display, partition.rls, partition.force_rls);
}

}  // namespace

std::vector<Oid> tree_of(Oid table) {
  List* members = pg::pg_guard([&] { return find_all_inheritors(table, NoLock, nullptr); });
  std::vector<Oid> relations;
  for (int i = 0; i < list_length(members); ++i) relations.push_back(list_nth_oid(members, i));
  return relations;
}

std::vector<TreeMember> registered_trees(bool on_active_snapshot) {
  std::vector<TreeMember> members;
  for (const pg::TextRow& row : pg::spi_query_rows(
           "SELECT r.relation::oid::text FROM privacy.registered_tables r"
           "  JOIN pg_catalog.pg_class c ON c.oid = r.relation ORDER BY r.relation::oid",
           {}, on_active_snapshot)) {
    Oid table = pg::oid_from_text(row[0]);
    for (Oid relation : tree_of(table)) members.push_back(TreeMember{table, relation});
  }
  return members;
}

std::vector<pg::SqlParam> tree_params(const std::vector<TreeMember>& members) {
  std::vector<Oid> tables, relations;
  for (const TreeMember& member : members) {
    tables.push_back(member.table);
    relations.push_back(member.relation);
  }
  return {pg::oid_array_param(tables), pg::oid_array_param(relations)};
}

std::vector<Partition> partitions_of(Oid table) {
  std::vector<Partition> partitions;
  for (const pg::TextRow& row :
       pg::spi_query_rows(std::string("SELECT ") + kPartitionColumns +
                              "  FROM pg_catalog.pg_partition_tree($1::oid::pg_catalog.regclass) t"
                              "  JOIN pg_catalog.pg_class c ON c.oid = t.relid"
                              "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
                              " WHERE t.level > 0 ORDER BY t.level, t.relid",
                          {pg::oid_param(table)})) {
    partitions.push_back(partition_from_row(row));
  }
  return partitions;
}

void protect_all(Oid table, const std::vector<Partition>& partitions) {
  for (const Partition& partition : partitions) protect(table, partition);
}

void release_all(Oid table) {
  for (const pg::TextRow& row : pg::spi_query_rows(
           "SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),"
           "       p.had_rls::text, p.had_force_rls::text"
           "  FROM privacy.registered_partitions p JOIN pg_catalog.pg_class c ON c.oid = p.relation"
           "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
           " WHERE p.registered_table = $1::oid ORDER BY p.relation::oid",
           {pg::oid_param(table)})) {
    softdelete::show_all_rows(*row[0], row.boolean(1), row.boolean(2));
  }
}

void follow_tree_changes(const std::vector<Oid>& changed) {
  // The trees the command touched: those of the topmost tables above the changed relations.
  std::vector<Oid> tops;
  for (const pg::TextRow& row : pg::spi_query_rows(
           "SELECT DISTINCT coalesce(pg_catalog.pg_partition_root(t.relid)::oid, t.relid)::text"
           "  FROM unnest($1::oid[]) t(relid)",
           {pg::oid_array_param(changed)})) {
    tops.push_back(pg::oid_from_text(row[0]));
  }
  std::vector<Oid> touched = changed;
  for (Oid top : tops) {
    std::vector<Oid> tree = tree_of(top);
    touched.insert(touched.end(), tree.begin(), tree.end());
  }
  refuse_registered_table_as_child(touched);
  refuse_inheritance(touched);

  std::vector<TreeMember> trees;
  for (const pg::TextRow& row :
       pg::spi_query_rows("SELECT relation::oid::text FROM privacy.registered_tables"
                          " WHERE relation::oid = ANY ($1::oid[]) ORDER BY relation::oid",
                          {pg::oid_array_param(tops)})) {
    Oid table = pg::oid_from_text(row[0]);
    for (Oid relation : tree_of(table)) trees.push_back(TreeMember{table, relation});
  }
  if (trees.empty()) return;
  std::vector<pg::SqlParam> tree = tree_params(trees);
  // Registered partitions that left their table's tree (detached), then partitions in a
  // registered table's tree that are not registered yet (created or attached).
  std::vector<pg::TextRow> detached = pg::spi_query_rows(
      "SELECT p.relation::oid::text, p.registered_table::oid::text, p.had_rls::text, p.had_force_rls::text"
      "  FROM privacy.registered_partitions p"
      " WHERE p.registered_table::oid = ANY ($1::oid[])"
      "   AND NOT EXISTS (SELECT FROM unnest($1::oid[], $2::oid[]) m(table_oid, relid)"
      "                    WHERE m.relid = p.relation AND m.table_oid = p.registered_table)"
      " ORDER BY p.relation::oid",
      tree);
  for (const pg::TextRow& row : detached) {
    release_detached(pg::oid_from_text(row[1]), pg::oid_from_text(row[0]), row.boolean(2),
                     row.boolean(3));
  }
  std::vector<pg::TextRow> added = pg::spi_query_rows(
      std::string("SELECT m.table_oid::text, ") + kPartitionColumns +
          "  FROM unnest($1::oid[], $2::oid[]) WITH ORDINALITY m(table_oid, relid, position)"
          "  JOIN pg_catalog.pg_class c ON c.oid = m.relid AND c.relispartition"
          "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
          " WHERE m.relid <> m.table_oid"
          "   AND NOT EXISTS (SELECT FROM privacy.registered_partitions p WHERE p.relation = m.relid)"
          " ORDER BY m.position",
      tree);
  std::set<Oid> grown;
  for (const pg::TextRow& row : added) {
    Oid table = pg::oid_from_text(row[0]);
    protect_new(table, partition_from_row(pg::TextRow(row.begin() + 1, row.end())));
    grown.insert(table);
  }
  // The new partitions need the hold triggers while a hold could cover their table. (A hold being
  // placed meanwhile holds a lock on the table that the DDL had to wait for, or waits for the DDL
  // and then sees the new partition: holds/sync.cpp.)
  for (Oid table : grown) {
    if (holds::hold_on_table(table)) holds::sync_triggers(table, holds::Attach::kWait);
  }
}

}  // namespace privacy::partitions
