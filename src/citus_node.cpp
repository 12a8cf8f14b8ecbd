// Recognizing a Citus worker node (citus_node.hpp). Citus numbers the nodes of a cluster by
// group: the coordinator is group 0, every worker a group of its own, recorded in the worker's
// pg_dist_local_group when the coordinator adds it (citus_add_node). A node whose group is 0 is
// the coordinator or stands alone, and pg_privacy works there as on plain PostgreSQL.
#include "citus_node.hpp"

#include "pg/spi.hpp"

namespace privacy::citus_node {

std::optional<WorkerNode> this_worker_node() {
  pg::SpiConnection spi;
  // pg_dist_local_group exists only where the citus extension is created: look before reading.
  if (!pg::spi_query_text("SELECT 'citus' FROM pg_catalog.pg_extension WHERE extname = 'citus'", {}, true)) {
    return std::nullopt;
  }
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "SELECT g.groupid::text,"
      "       (SELECT n.nodename || ':' || n.nodeport FROM pg_catalog.pg_dist_node n"
      "         WHERE n.groupid = 0 ORDER BY n.nodeid LIMIT 1)"
      "  FROM pg_catalog.pg_dist_local_group g WHERE g.groupid <> 0",
      {}, true);
  if (rows.empty()) return std::nullopt;
  return WorkerNode{*rows[0][0], rows[0][1]};
}

void refuse_on_worker_node(const std::string& action) {
  std::optional<WorkerNode> worker = this_worker_node();
  if (!worker) return;
  std::string coordinator = worker->coordinator ? "the coordinator (" + *worker->coordinator + ")" : "the coordinator";
  throw core::Error(core::sqlstate::kFeatureNotSupported,
                    action + " is not available on a Citus worker node: this node is worker group " + worker->group,
                    "pg_privacy keeps jobs, legal holds, registrations and the audit trail on the Citus coordinator;"
                    " worker nodes carry data only.",
                    "Connect to " + coordinator + " and run it there.");
}

}  // namespace privacy::citus_node
