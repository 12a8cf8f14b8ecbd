// Legal holds on Citus (docs/citus.md, "Legal holds"). The coordinator's privacy.legal_holds is
// the source of truth; the hold triggers fire on the shards, on the worker nodes, so each node
// needs the holds too, and each refusal there must reach the coordinator's audit trail.
//
//  * privacy.hold_replica is a Citus reference table: every write to it reaches every node's
//    placement in the writing transaction, committed with two-phase commit. place_hold,
//    release_hold and the expiry step copy the hold they change into it (privacy._replicate_hold),
//    so a hold is in force on every node from the commit that places it, and on none before. The
//    holds cache of a worker node reads its placement (holds/cache.cpp).
//  * A refusal on a worker is queued in that node's shared memory, as on any node. The
//    coordinator's launcher takes the queues of the workers (privacy._take_blocked_events) and
//    writes them to its own audit chain, naming the distributed table, not the shard.
#include "holds/holds.hpp"

#include "audit/audit.hpp"
#include "citus/node.hpp"
#include "citus/tables.hpp"
#include "holds/shared.hpp"
#include "pg/boundary.hpp"
#include "pg/security_context.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "utils/builtins.h"
}

#include <cstring>
#include <string>

namespace privacy::holds::citus {

namespace {

using core::Error;
namespace sqlstate = core::sqlstate;

// Whether this coordinator has worker nodes (holds need copying only then).
bool has_worker_nodes() {
  if (!citus_node::citus_installed()) return false;
  return pg::spi_query_text(
             "SELECT 1 FROM pg_catalog.pg_dist_node"
             " WHERE groupid OPERATOR(pg_catalog.<>) 0 AND isactive LIMIT 1")
      .has_value();
}

// Makes privacy.hold_replica a reference table (once; the lock orders concurrent first holds).
void ensure_reference_table() {
  const char* is_reference =
      "SELECT 1 FROM pg_catalog.pg_dist_partition"
      " WHERE logicalrelid OPERATOR(pg_catalog.=) 'privacy.hold_replica'::pg_catalog.regclass";
  if (pg::spi_query_text(is_reference)) return;
  pg::spi_execute("LOCK TABLE privacy.hold_replica IN EXCLUSIVE MODE");
  if (pg::spi_query_text(is_reference)) return;
  pg::spi_query_rows("SELECT pg_catalog.create_reference_table('privacy.hold_replica')");
}

// The columns the replica keeps of a hold. Table holds keep no relation: an OID means nothing on
// another node, and table holds are refused on Citus tables (replicate()).
const char* kCopyHolds =
    "INSERT INTO privacy.hold_replica AS r (id, scope, scope_id, relation, tenant_id, reason, created_by,"
    "   created_at, active, expires_at, block_updates)"
    " SELECT h.id, h.scope, h.scope_id, NULL, h.tenant_id, h.reason, h.created_by, h.created_at, h.active,"
    "        h.expires_at, h.block_updates"
    "   FROM privacy.legal_holds h WHERE %s"
    " ON CONFLICT (id) DO UPDATE SET active = EXCLUDED.active, expires_at = EXCLUDED.expires_at,"
    "   block_updates = EXCLUDED.block_updates";

std::string copy_holds_where(const std::string& condition) {
  std::string sql = kCopyHolds;
  return sql.replace(sql.find("%s"), 2, condition);
}

// A table hold on a Citus table could not be enforced on the shards (they are other relations,
// on other nodes): refused, and the hold is not placed.
void refuse_table_hold_on_citus_table(long long hold_id) {
  std::optional<std::string> table = pg::spi_query_text(
      "SELECT h.relation::pg_catalog.text FROM privacy.legal_holds h"
      " WHERE h.id OPERATOR(pg_catalog.=) $1 AND h.scope OPERATOR(pg_catalog.=) 'table'"
      "   AND EXISTS (SELECT FROM pg_catalog.pg_dist_partition p"
      "                WHERE p.logicalrelid OPERATOR(pg_catalog.=) h.relation)",
      {pg::int8_param(hold_id)});
  if (!table) return;
  throw Error(
      sqlstate::kFeatureNotSupported,
      "a table hold on " + *table + " is not supported: it is a Citus table",
      "The hold triggers run on the shards, on the worker nodes, which know the holds of tenants and "
      "subjects only.",
      "Hold the tenants or the subjects whose rows must be kept instead (docs/citus.md).");
}

// ----- the launcher step on the coordinator -----------------------------------------------------

// A worker added after holds were placed gets the reference table from Citus; a replica that
// differs from the holds anyway (a hold placed before the first worker joined) is brought in line.
void sync_replica() {
  if (!pg::spi_query_text("SELECT 1 FROM privacy.legal_holds LIMIT 1")) return;
  ensure_reference_table();
  const char* differs =
      "SELECT 1 FROM privacy.legal_holds h"
      "  LEFT JOIN privacy.hold_replica r ON r.id OPERATOR(pg_catalog.=) h.id"
      " WHERE h.scope OPERATOR(pg_catalog.<>) 'table'"
      "   AND (r.id IS NULL OR r.active IS DISTINCT FROM h.active OR r.expires_at IS DISTINCT FROM h.expires_at)"
      " LIMIT 1";
  if (!pg::spi_query_text(differs)) return;
  pg::spi_execute(copy_holds_where("h.scope OPERATOR(pg_catalog.<>) 'table'"));
}

// Copies the fixed-size fields of a queued event back from the JSON a worker sent.
void copy_field(char* target, size_t size, const std::optional<std::string>& value) {
  std::strncpy(target, value.value_or("").c_str(), size - 1);
  target[size - 1] = '\0';
}

// Takes the refusals queued on the worker nodes and audits them on this node's chain. Asked
// only while a hold is active or was released or expired in the last minutes: refusals happen
// only then, and the launcher cycle costs no connection to the workers otherwise.
void audit_worker_refusals() {
  if (!pg::spi_query_text(
          "SELECT 1 FROM privacy.legal_holds WHERE active"
          "    OR released_at OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '10 minutes')"
          "    OR expires_at OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '10 minutes')"
          " LIMIT 1")) {
    return;
  }
  std::string taken = "[]";
  for (
      const pg::TextRow& worker : pg::spi_query_rows(
          "SELECT nodename OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) nodeport, success::pg_catalog.text, result"
          "  FROM pg_catalog.run_command_on_workers('SELECT privacy._take_blocked_events()')")) {
    if (worker.boolean(1)) {
      taken = *pg::spi_query_text(
          "SELECT ($1::pg_catalog.jsonb OPERATOR(pg_catalog.||) $2::pg_catalog.jsonb)::pg_catalog.text",
          {pg::text_param(taken), pg::text_param(worker[2])});
    } else {
      elog(LOG, "pg_privacy: could not take the hold_blocked events of Citus worker %s: %s",
           worker[0]->c_str(), worker[2].value_or("").c_str());
    }
  }
  std::vector<pg::TextRow> events = pg::spi_query_rows(
      "SELECT e->>'hold_id', e->>'at', e->>'session_user', e->>'current_user', e->>'client_addr',"
      "       e->>'application_name', e->>'tenant_id', e->>'relation', e->>'operation', e->>'dropped_before'"
      "  FROM pg_catalog.jsonb_array_elements($1::pg_catalog.jsonb) e ORDER BY (e->>'at')::pg_catalog.int8",
      {pg::text_param(taken)});
  for (const pg::TextRow& row : events) {
    shared::BlockedEvent event;
    std::memset(&event, 0, sizeof(event));
    event.hold_id = row.int8(0);
    event.at = row.int8(1);
    copy_field(event.session_user, sizeof(event.session_user), row[2]);
    copy_field(event.current_user, sizeof(event.current_user), row[3]);
    copy_field(event.client_addr, sizeof(event.client_addr), row[4]);
    copy_field(event.application_name, sizeof(event.application_name), row[5]);
    event.has_tenant = row[6].has_value();
    copy_field(event.tenant_id, sizeof(event.tenant_id), row[6]);
    copy_field(event.relation, sizeof(event.relation), row[7]);
    copy_field(event.operation, sizeof(event.operation), row[8]);
    shared::audit_blocked_event(event, static_cast<uint64>(row.optional_int8(9).value_or(0)));
  }
}

}  // namespace

// The launcher's step "Citus holds": copies the holds to the worker nodes and audits what
// the workers refused.
void citus_holds_step() {
  if (!has_worker_nodes()) return;
  sync_replica();
  audit_worker_refusals();
}

namespace {

// ----- the worker side -------------------------------------------------------------------------

// The distributed table a queued event's relation (a shard, "schema.table_102008") belongs to,
// by Citus's metadata on this node; the relation itself when it is no shard.
std::string distributed_table_of(const std::string& relation) {
  return pg::spi_query_text(
             "SELECT s.logicalrelid::pg_catalog.regclass::pg_catalog.text FROM pg_catalog.pg_dist_shard s"
             "  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.logicalrelid"
             "  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
             " WHERE s.shardid OPERATOR(pg_catalog.=)"
             "         pg_catalog.substring($1, '_([0-9]+)\"?$')::pg_catalog.int8"
             "   AND $1 OPERATOR(pg_catalog.=) (pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.'"
             "         OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname OPERATOR(pg_catalog.||) '_'"
             "                                 OPERATOR(pg_catalog.||) s.shardid::pg_catalog.text))",
             {pg::text_param(relation)})
      .value_or(relation);
}

std::string taken_events_json() {
  static shared::BlockedEvent events[shared::kQueueCapacity];
  uint64 dropped = 0;
  int count = shared::peek_blocked(events, shared::kQueueCapacity, &dropped);
  std::string json = "[";
  for (int i = 0; i < count; ++i) {
    const shared::BlockedEvent& event = events[i];
    std::string relation = event.relation[0] ? distributed_table_of(event.relation) : std::string();
    json +=
        (i ? ", " : "") +
        *pg::spi_query_text(
            "SELECT pg_catalog.jsonb_build_object('hold_id', $1::pg_catalog.int8, 'at', $2::pg_catalog.int8,"
            "  'session_user', $3::pg_catalog.text, 'current_user', $4::pg_catalog.text, 'client_addr', $5::pg_catalog.text,"
            "  'application_name', $6::pg_catalog.text, 'tenant_id', $7::pg_catalog.text, 'relation', $8::pg_catalog.text,"
            "  'operation', $9::pg_catalog.text, 'dropped_before', $10::pg_catalog.int8)::pg_catalog.text",
            {pg::int8_param(static_cast<long long>(event.hold_id)),
             pg::int8_param(static_cast<long long>(event.at)), pg::text_param(event.session_user),
             pg::text_param(event.current_user), pg::text_param(event.client_addr),
             pg::text_param(event.application_name),
             pg::text_param(event.has_tenant ? std::optional<std::string>(event.tenant_id)
                                             : std::nullopt),
             pg::text_param(relation), pg::text_param(event.operation),
             pg::int8_param(static_cast<long long>(i == 0 ? dropped : 0))});
  }
  shared::remove_blocked(count, dropped);
  return json + "]";
}

}  // namespace

}  // namespace privacy::holds::citus

namespace privacy::holds {

void replicate_to_citus_nodes(long long hold_id) {
  if (!citus::has_worker_nodes()) return;
  // A worker's metadata lists the other workers too; holds are the coordinator's.
  citus_node::refuse_on_worker_node("a change of legal holds");
  citus::refuse_table_hold_on_citus_table(hold_id);
  citus::ensure_reference_table();
  pg::spi_execute(citus::copy_holds_where("h.id OPERATOR(pg_catalog.=) $1"),
                  {pg::int8_param(hold_id)});
}

}  // namespace privacy::holds

// privacy._replicate_hold(hold_id bigint): see 74_citus.sql.
PRIVACY_SQL_FUNCTION(privacy_replicate_hold) {
  privacy::pg::PinnedSearchPath pinned;
  privacy::pg::SpiConnection spi;
  privacy::holds::replicate_to_citus_nodes(PG_GETARG_INT64(0));
  PG_RETURN_VOID();
}

// privacy._take_blocked_events(): see 74_citus.sql. '[]' on a node that is no Citus worker: the
// coordinator's launcher audits its own queue itself.
PRIVACY_SQL_FUNCTION(privacy_take_blocked_events) {
  privacy::pg::PinnedSearchPath pinned;  // run by the coordinator in a session of its own
  privacy::pg::SpiConnection spi;
  std::string json = privacy::citus_node::this_worker_node() && privacy::holds::shared::available()
                         ? privacy::holds::citus::taken_events_json()
                         : std::string("[]");
  PG_RETURN_TEXT_P(privacy::pg::pg_guard([&] { return cstring_to_text(json.c_str()); }));
}
