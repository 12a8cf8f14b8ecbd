// Soft-delete through row-level security (docs/soft-delete.md), and privacy.restore.
//
// Why RESTRICTIVE: permissive policies are OR-ed together, so a permissive "not erased" policy
// would widen a table's own tenant-isolation policy. Restrictive policies are AND-ed with the
// result of the permissive ones, so privacy_hide_erased can only ever hide rows.
// Why FORCE: without it the table owner bypasses every policy, and applications often connect as
// the owner. Superusers and BYPASSRLS roles still see everything; the batches rely on that.
#include "data/softdelete.hpp"
#include "data/relation_order.hpp"

#include "audit/audit.hpp"
#include "data/batch.hpp"
#include "citus/node.hpp"
#include "core/json.hpp"
#include "data/ddl_guard.hpp"
#include "jobs/jobs.hpp"
#include "data/registry.hpp"
#include "pg/boundary.hpp"
#include "pg/spi.hpp"
#include "data/walk.hpp"

#include <set>

namespace privacy::softdelete {

void add_erased_column(const std::string& qualified, const std::string& key_columns_sql) {
  ddl_guard::OwnDdl own;
  pg::spi_execute("ALTER TABLE " + qualified + " ADD COLUMN privacy_erased_by bigint");
  pg::spi_execute("CREATE INDEX ON " + qualified + " (privacy_erased_by, " + key_columns_sql +
                  ") WHERE privacy_erased_by IS NOT NULL");
}

void drop_erased_column(const std::string& qualified) {
  ddl_guard::OwnDdl own;
  // Dropping the column drops the partial index on it too.
  pg::spi_execute("ALTER TABLE " + qualified + " DROP COLUMN IF EXISTS privacy_erased_by");
}

void hide_erased_rows(const std::string& qualified, bool had_rls, bool had_force_rls) {
  ddl_guard::OwnDdl own;
  pg::spi_execute("CREATE POLICY privacy_hide_erased ON " + qualified +
                  " AS RESTRICTIVE FOR ALL TO PUBLIC USING (privacy_erased_by IS NULL)");
  if (!had_rls) {
    pg::spi_execute("CREATE POLICY privacy_passthrough ON " + qualified +
                    " AS PERMISSIVE FOR ALL TO PUBLIC USING (true) WITH CHECK (true)");
  }
  pg::spi_execute("ALTER TABLE " + qualified + " ENABLE ROW LEVEL SECURITY");
  pg::spi_execute("ALTER TABLE " + qualified + " FORCE ROW LEVEL SECURITY");
  if (had_rls && !had_force_rls) {
    std::string message = "row level security of " + qualified +
                          " is now FORCEd: its owner is subject to its policies too";
    pg::pg_guard([&] {
      ereport(
          NOTICE,
          (errmsg("%s", message.c_str()),
           errdetail(
               "An application connecting as the owner now sees only what the table's policies allow it.")));
    });
  }
}

void show_all_rows(const std::string& qualified, bool had_rls, bool had_force_rls) {
  ddl_guard::OwnDdl own;
  pg::spi_execute("DROP POLICY IF EXISTS privacy_hide_erased ON " + qualified);
  if (!had_rls) pg::spi_execute("DROP POLICY IF EXISTS privacy_passthrough ON " + qualified);
  pg::spi_execute("ALTER TABLE " + qualified + (had_force_rls ? " FORCE" : " NO FORCE") +
                  " ROW LEVEL SECURITY");
  pg::spi_execute("ALTER TABLE " + qualified + (had_rls ? " ENABLE" : " DISABLE") +
                  " ROW LEVEL SECURITY");
}

}  // namespace privacy::softdelete

namespace {

using privacy::core::Error;
namespace sqlstate = privacy::core::sqlstate;
namespace pg = privacy::pg;

// A relation's name for messages (its OID when it no longer exists).
std::string relation_text(Oid relation) {
  return pg::spi_query_text("SELECT $1::pg_catalog.oid::pg_catalog.regclass::pg_catalog.text",
                            {pg::int8_param(static_cast<long long>(relation))})
      .value_or(std::to_string(relation));
}

// The relations privacy.restore may bring rows back in: within the recovery window every one
// (or the one asked for); after it only those a legal hold keeps from finalization, the tables a
// hold covers and the registered tables they reference (docs/legal-holds.md, "Holds and recovery
// windows"). Throws 55000 when there is none.
std::vector<privacy::registry::TableInfo> restorable_tables(const privacy::jobs::Job& job,
                                                            Oid relation) {
  using privacy::core::FinalizationState;
  std::string name = "job " + std::to_string(job.id);
  if (job.kind != privacy::core::JobKind::Erase || !privacy::core::is_stopped(job.state.status)) {
    throw Error(
        sqlstate::kObjectNotInPrerequisiteState,
        name + " is a " + std::string(privacy::core::to_string(job.state.status)) + " " +
            std::string(privacy::core::to_string(job.kind)) +
            " job; only erase jobs that stopped (completed, cancelled or failed) can be restored",
        "",
        job.state.status == privacy::core::JobStatus::Processing ||
                job.state.status == privacy::core::JobStatus::Approved
            ? "Cancel it with privacy.cancel; its marked rows can be restored once it stops."
            : "Only the rows an erase marked can be restored.");
  }
  bool finalized = job.state.finalization == FinalizationState::Finalized ||
                   job.state.finalization == FinalizationState::FinalizedWithErrors;
  std::vector<Oid> candidates;
  if (relation != InvalidOid) {
    candidates.push_back(relation);
  } else {
    candidates = privacy::relation_order::in_foreign_key_order();
  }
  std::set<Oid> kept = privacy::walk::kept_by_holds(job, privacy::relation_order::graph());
  std::vector<privacy::registry::TableInfo> tables;
  for (Oid candidate : candidates) {
    std::optional<privacy::registry::TableInfo> table = privacy::registry::load_table(candidate);
    if (!table) {
      throw Error(sqlstate::kInvalidParameter,
                  "relation " + relation_text(candidate) + " is not registered", "",
                  "SELECT relation FROM privacy.registered_tables lists the registered tables.");
    }
    if ((!job.window_closed && !finalized) || kept.count(candidate)) tables.push_back(*table);
  }
  if (!tables.empty() || (relation == InvalidOid && !job.window_closed && !finalized))
    return tables;
  if (finalized) {
    throw Error(sqlstate::kObjectNotInPrerequisiteState,
                name + " was finalized; its rows are gone for good" +
                    (job.state.finalization == FinalizationState::FinalizedWithErrors
                         ? " (but for its flagged items)"
                         : ""),
                "", "");
  }
  throw Error(
      sqlstate::kObjectNotInPrerequisiteState,
      name + " can no longer be restored" +
          (relation != InvalidOid ? " in " + relation_text(relation) : std::string()) +
          ": its recovery window closed at " + job.recoverable_until.value_or("?"),
      "After the window, only rows a legal hold kept from finalization can be restored.",
      "Lengthen the window for future jobs with privacy.configure_tenant(..., recovery_window => ...).");
}

}  // namespace

// privacy.restore(job_id bigint, relation regclass DEFAULT NULL, keys jsonb DEFAULT NULL)
// Brings back the rows an erase job hid, while its recovery window is open, and afterwards those
// a legal hold kept from finalization.
PRIVACY_SQL_FUNCTION(privacy_restore) {
  privacy::citus_node::refuse_on_worker_node("privacy.restore");
  if (PG_ARGISNULL(0)) throw Error(sqlstate::kInvalidParameter, "job_id must not be NULL");
  long long job_id = PG_GETARG_INT64(0);
  Oid relation = PG_ARGISNULL(1) ? InvalidOid : PG_GETARG_OID(1);
  std::optional<std::string> keys;
  if (!PG_ARGISNULL(2)) {
    keys = pg::pg_guard(
        [&] { return DatumGetCString(DirectFunctionCall1(jsonb_out, PG_GETARG_DATUM(2))); });
  }
  pg::SpiConnection spi;
  if (keys && relation == InvalidOid) {
    throw Error(sqlstate::kInvalidParameter,
                "restoring chosen keys needs the relation they belong to", "",
                "Pass relation => 'the_table' together with keys.");
  }
  privacy::jobs::Job job = privacy::jobs::load_for_caller(job_id, privacy::jobs::Lock::ForUpdate,
                                                          std::string("decide"), "privacy.restore");
  long long total = 0;
  std::string per_relation;
  for (const privacy::registry::TableInfo& table : restorable_tables(job, relation)) {
    long long count = privacy::batch::restore_rows(job, table, keys);
    total += count;
    per_relation += (per_relation.empty() ? "" : ", ") + privacy::core::json_string(table.display) +
                    ": " + std::to_string(count);
  }
  std::string detail = "{\"rows\": " + std::to_string(total) + ", \"relations\": {" + per_relation +
                       "}, \"selected_keys\": " + (keys ? "true" : "false") +
                       ", \"after_window\": " + (job.window_closed ? "true" : "false") + "}";
  privacy::audit::append(privacy::jobs::job_audit_entry(job, "restored", detail));
  return Int64GetDatum(total);
}
