// pg_privacy in a Citus cluster (docs/citus.md): jobs, legal holds, registrations, the secret,
// the launcher and the audit trail live on the coordinator; worker nodes carry data only.
// Citus installs pg_privacy on every node (it propagates CREATE EXTENSION), so the API exists on
// the workers too: there it refuses to act, and the launcher stays idle.
#pragma once

#include "pg/pg_headers.hpp"

#include <optional>
#include <string>

namespace privacy::citus_node {

// This database's node when it is a Citus worker: its Citus group, and the coordinator's
// "host:port" when this node's metadata knows it.
struct WorkerNode {
  std::string group;
  std::optional<std::string> coordinator;
};

// Whether the citus extension is created in this database (cheap: no SQL statement; answers
// false at once when citus is not preloaded).
bool citus_installed();

// The worker node this database is, or nullopt on the coordinator, a Citus node not yet added
// to a cluster (group 0) and any database without the citus extension. Needs SPI.
std::optional<WorkerNode> this_worker_node();

// On a Citus worker node: the local placement of the reference table privacy.hold_replica,
// where the coordinator's legal holds are (InvalidOid while the node has none: no hold was ever
// placed); nullopt everywhere else. Needs SPI; readable by every role.
std::optional<Oid> hold_replica_placement();

// Throws SQLSTATE 0A000 naming `action` (say "privacy.request_erase") when this database is a
// Citus worker node; does nothing elsewhere.
void refuse_on_worker_node(const std::string& action);

}  // namespace privacy::citus_node
