// Restriction of processing (GDPR Art. 18; docs/jobs.md, "Restriction of processing"). A
// 'restrict' job marks the subject's rows with its own id through the erase's Mark batches
// (src/data/erase_and_purge.cpp), so the RLS policy that hides erased rows hides them too; nothing
// finalizes them. privacy.lift_restriction clears the mark again.
#include "audit/audit.hpp"
#include "data/batch.hpp"
#include "data/relation_order.hpp"
#include "citus/node.hpp"
#include "core/json.hpp"
#include "jobs/jobs.hpp"
#include "pg/boundary.hpp"
#include "pg/spi.hpp"
#include "data/registry.hpp"
#include "access/tenant_scope.hpp"

namespace {

using privacy::core::Error;
using privacy::core::JobKind;
using privacy::core::JobStatus;
namespace sqlstate = privacy::core::sqlstate;
namespace pg = privacy::pg;
namespace jobs = privacy::jobs;

}  // namespace

// privacy.lift_restriction(job bigint, on_behalf_of text DEFAULT NULL): the number of rows shown
// again.
PRIVACY_SQL_FUNCTION(privacy_lift_restriction) {
  privacy::citus_node::refuse_on_worker_node("privacy.lift_restriction");
  long long job_id = pg::int8_arg(fcinfo, 0, "job", "Pass the id of the restrict job to lift.");
  std::optional<std::string> on_behalf_of = pg::optional_text_arg(fcinfo, 1);
  privacy::tenant_scope::check_on_behalf_of(on_behalf_of);
  pg::SpiConnection spi;
  jobs::Job job = jobs::load_for_caller(job_id, jobs::Lock::ForUpdate, std::string("decide"),
                                        "privacy.lift_restriction");
  std::string name = "job " + std::to_string(job_id);
  if (job.kind != JobKind::Restrict) {
    throw Error(sqlstate::kInvalidParameter,
                name + " is a " + std::string(privacy::core::to_string(job.kind)) +
                    " job, not a restriction",
                "", "Pass the id of a restrict job (privacy.find_jobs(kind => 'restrict')).");
  }
  std::optional<std::string> lifted = pg::spi_query_text(
      "SELECT pg_catalog.concat_ws(' ', lifted_by, 'at', lifted_at) FROM privacy.jobs"
      " WHERE id OPERATOR(pg_catalog.=) $1 AND lifted_at IS NOT NULL",
      {pg::int8_param(job_id)}, false);
  if (lifted) {
    throw Error(sqlstate::kObjectNotInPrerequisiteState,
                "restriction " + name + " was already lifted", "Lifted by " + *lifted + ".",
                "Nothing to lift.");
  }
  if (!privacy::core::is_stopped(job.state.status)) {
    throw Error(sqlstate::kObjectNotInPrerequisiteState,
                "restriction " + name + " is " +
                    std::string(privacy::core::to_string(job.state.status)) +
                    " and cannot be lifted now",
                "",
                job.state.status == JobStatus::Processing
                    ? "Wait until it completes (privacy.job_overview), or cancel it first."
                    : "It has not hidden anything yet: cancel it instead (privacy.cancel).");
  }
  long long total = 0;
  std::string per_relation;
  for (Oid relation : privacy::relation_order::in_foreign_key_order()) {
    std::optional<privacy::registry::TableInfo> table = privacy::registry::load_table(relation);
    if (!table) continue;
    long long count = privacy::batch::restore_rows(job, *table, std::nullopt);
    total += count;
    per_relation += (per_relation.empty() ? "" : ", ") +
                    privacy::core::json_string(table->display) + ": " + std::to_string(count);
  }
  pg::spi_execute(
      "UPDATE privacy.jobs SET lifted_at = pg_catalog.now(), lifted_by = session_user,"
      " lifted_on_behalf_of = $2, updated_at = pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1",
      {pg::int8_param(job_id), pg::text_param(on_behalf_of)});
  privacy::audit::Entry entry = jobs::job_audit_entry(
      job, "restriction_lifted",
      "{\"rows\": " + std::to_string(total) + ", \"relations\": {" + per_relation + "}}");
  entry.on_behalf_of = on_behalf_of;
  privacy::audit::append(entry);
  return Int64GetDatum(total);
}
