// Recognizing a Citus worker node (citus/node.hpp). Citus numbers the nodes of a cluster by
// group: the coordinator is group 0, every worker a group of its own, recorded in the worker's
// pg_dist_local_group when the coordinator adds it (citus_add_node). A node whose group is 0 is
// the coordinator or stands alone, and pg_privacy works there as on plain PostgreSQL.
#include "citus/node.hpp"

#include "pg/spi.hpp"

extern "C" {
#include "catalog/namespace.h"
#include "commands/extension.h"
#include "utils/lsyscache.h"
#include "utils/guc.h"
#include "utils/varlena.h"
}

namespace privacy::citus_node {

namespace {

// Whether shared_preload_libraries names citus ("citus", "$libdir/citus", "citus.so"). Citus
// refuses to be loaded any other way, so without it no database of this server is a Citus node.
bool citus_preloaded() {
  return pg::pg_guard([] {
    const char* setting = GetConfigOption("shared_preload_libraries", true, false);
    if (setting == nullptr || strstr(setting, "citus") == nullptr) return false;
    char* copy = pstrdup(setting);
    List* libraries = NIL;
    bool found = false;
    if (SplitDirectoriesString(copy, ',', &libraries)) {
      ListCell* cell;
      foreach (cell, libraries) {
        const char* name = last_dir_separator(static_cast<char*>(lfirst(cell)));
        name = name != nullptr ? name + 1 : static_cast<char*>(lfirst(cell));
        if (strcmp(name, "citus") == 0 || strcmp(name, "citus.so") == 0) found = true;
      }
    }
    list_free_deep(libraries);
    pfree(copy);
    return found;
  });
}

}  // namespace

// Whether the citus extension is created in this database. Every audit append asks
// (audit::append), so the common answer "no" costs no SQL statement and no catalog access:
// first the preload setting, then a catalog index lookup (docs/performance.md, B9).
bool citus_installed() {
  if (!citus_preloaded()) return false;
  return pg::pg_guard([] { return OidIsValid(get_extension_oid("citus", true)); });
}

std::optional<WorkerNode> this_worker_node() {
  // pg_dist_local_group exists only where the citus extension is created: look before reading.
  if (!citus_installed()) return std::nullopt;
  pg::SpiConnection spi;
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "SELECT g.groupid::text,"
      "       (SELECT n.nodename || ':' || n.nodeport FROM pg_catalog.pg_dist_node n"
      "         WHERE n.groupid = 0 ORDER BY n.nodeid LIMIT 1)"
      "  FROM pg_catalog.pg_dist_local_group g WHERE g.groupid <> 0",
      {}, true);
  if (rows.empty()) return std::nullopt;
  return WorkerNode{*rows[0][0], rows[0][1]};
}

std::optional<Oid> hold_replica_placement() {
  if (!citus_installed()) return std::nullopt;
  // Catalog cache lookups, not SQL: the caller may be any role (a trigger fires for whoever
  // writes) without USAGE on schema privacy, and Citus hides shards from SQL queries of pg_class.
  auto relation_in_privacy = [](const std::string& name) {
    return pg::pg_guard([&] {
      Oid schema = get_namespace_oid("privacy", true);
      return OidIsValid(schema) ? get_relname_relid(name.c_str(), schema) : InvalidOid;
    });
  };
  pg::SpiConnection spi;
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "SELECT (SELECT s.shardid::pg_catalog.text FROM pg_catalog.pg_dist_shard s"
      "         WHERE s.logicalrelid OPERATOR(pg_catalog.=) $1::pg_catalog.oid LIMIT 1)"
      "  FROM pg_catalog.pg_dist_local_group g WHERE g.groupid OPERATOR(pg_catalog.<>) 0",
      {pg::oid_param(relation_in_privacy("hold_replica"))}, true);
  if (rows.empty()) return std::nullopt;
  if (!rows[0][0]) return InvalidOid;
  return relation_in_privacy("hold_replica_" + *rows[0][0]);
}

void refuse_on_worker_node(const std::string& action) {
  std::optional<WorkerNode> worker = this_worker_node();
  if (!worker) return;
  std::string coordinator =
      worker->coordinator ? "the coordinator (" + *worker->coordinator + ")" : "the coordinator";
  throw core::Error(
      core::sqlstate::kFeatureNotSupported,
      action + " is not available on a Citus worker node: this node is worker group " +
          worker->group,
      "pg_privacy keeps jobs, legal holds, registrations and the audit trail on the Citus coordinator;"
      " worker nodes carry data only.",
      "Connect to " + coordinator + " and run it there.");
}

}  // namespace privacy::citus_node
