#include "jobs.hpp"

#include "audit.hpp"
#include "notify.hpp"
#include "pg/shmem.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "access/xact.h"
}

#include <map>

namespace privacy::jobs {

using core::JobStatus;

namespace {

constexpr const char* kJobColumns =
    "id, kind::text, status::text, target_type::text, target_id, tenant_id, requested_by, notify_email,"
    " cursor::text, processed_items, failed_items, total_items, throughput, cancel_requested::text";

JobRecord job_from_row(const pg::TextRow& row) {
  JobRecord job;
  job.id = std::stoll(*row[0]);
  job.kind = *core::parse_job_kind(*row[1]);
  job.status = *core::parse_job_status(*row[2]);
  job.target_type = *row[3];
  job.target_id = *row[4];
  job.tenant_id = *row[5];
  job.requested_by = *row[6];
  job.notify_email = row[7];
  job.cursor_json = row[8];
  job.processed_items = std::stoll(*row[9]);
  job.failed_items = std::stoll(*row[10]);
  if (row[11]) job.total_items = std::stoll(*row[11]);
  if (row[12]) job.throughput = std::stod(*row[12]);
  job.cancel_requested = *row[13] == "true";
  return job;
}

// The column assignments that go with entering a status, besides status and updated_at.
// $2 is the note (decision note, reason or error text) of the change.
std::string assignments_for(JobStatus from, JobStatus to) {
  switch (to) {
    case JobStatus::Approved:
      if (from == JobStatus::Failed) return "queued_at = now(), error = NULL, finished_at = NULL";
      return "decided_by = session_user, decided_at = now(), decision_note = $2, queued_at = now()";
    case JobStatus::Rejected:
      return "decided_by = session_user, decided_at = now(), decision_note = $2, finished_at = now()";
    case JobStatus::Cancelled:
      return "decision_note = $2, finished_at = now(), cancel_requested = true";
    case JobStatus::Processing:
      return "started_at = coalesce(started_at, now()), attempts = attempts + 1,"
             " worker_pid = pg_backend_pid(), heartbeat_at = now()";
    case JobStatus::Completed:
      return "finished_at = now(), result = $2::jsonb, eta = interval '0', worker_pid = NULL, cursor = NULL,"
             " recoverable_until = CASE WHEN kind = 'erase' THEN now() +"
             " (SELECT s.recovery_window FROM privacy.tenant_settings(tenant_id) s) END";
    case JobStatus::Failed:
      return "finished_at = now(), error = $2, worker_pid = NULL";
    case JobStatus::Pending:
      break;
  }
  return "";
}

bool wake_registered = false;
bool wake_pending = false;

void wake_at_commit_callback(XactEvent event, void*) {
  if (event == XACT_EVENT_COMMIT && wake_pending) pg::wake_launcher();
  if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT) wake_pending = false;
}

std::map<core::JobKind, ExecutorFactory>& executor_registry() {
  static std::map<core::JobKind, ExecutorFactory> registry;
  return registry;
}

}  // namespace

JobRecord load_job(long long job_id, bool lock) {
  pg::SpiConnection spi;
  std::string sql = std::string("SELECT ") + kJobColumns + " FROM privacy.jobs WHERE id = $1" +
                    (lock ? " FOR UPDATE" : "");
  std::vector<pg::TextRow> rows = pg::spi_query_rows(sql, {pg::int8_param(job_id)}, !lock);
  if (rows.empty()) {
    throw core::Error(core::sqlstate::kInvalidParameter, "job " + std::to_string(job_id) + " does not exist",
                      "", "See privacy.job_overview for the existing jobs.");
  }
  return job_from_row(rows[0]);
}

void change_status(const JobRecord& job, const StatusChange& change) {
  core::check_transition(job.id, job.status, change.to);
  pg::SpiConnection spi;
  std::string sql = "UPDATE privacy.jobs SET status = '" + std::string(core::to_string(change.to)) +
                    "', updated_at = now(), " + assignments_for(job.status, change.to) + " WHERE id = $1";
  pg::spi_execute(sql, {pg::int8_param(job.id), pg::text_param(change.note)});

  audit::append(job_audit_entry(job, std::string(core::audit_action_for(job.status, change.to)),
                                change.audit_detail_json));
  notify::job_status_changed(
      notify::load_job_event(job.id, std::string(core::to_string(job.status)), std::string(core::to_string(change.to))));

  if (change.to == JobStatus::Approved || change.to == JobStatus::Cancelled) wake_launcher_at_commit();
}

audit::Entry job_audit_entry(const JobRecord& job, const std::string& action, const std::string& detail_json) {
  audit::Entry entry;
  entry.action = action;
  entry.tenant_id = job.tenant_id;
  entry.job_id = job.id;
  entry.target = job.target_type + ":" + job.target_id;
  entry.detail_json = detail_json;
  return entry;
}

JobInfo job_info(const JobRecord& job) {
  return JobInfo{job.id,          job.kind,          job.target_type,      job.target_id,
                 job.tenant_id,   job.cursor_json,   job.processed_items,  job.failed_items};
}

void wake_launcher_at_commit() {
  if (!wake_registered) {
    pg::pg_guard([] { RegisterXactCallback(wake_at_commit_callback, nullptr); });
    wake_registered = true;
  }
  wake_pending = true;
}

void register_executor(core::JobKind kind, ExecutorFactory factory) { executor_registry()[kind] = factory; }

std::unique_ptr<JobExecutor> make_executor(core::JobKind kind) {
  auto found = executor_registry().find(kind);
  if (found == executor_registry().end()) {
    throw core::Error(core::sqlstate::kInternalError,
                      "no executor for " + std::string(core::to_string(kind)) + " jobs in this build");
  }
  return found->second();
}

}  // namespace privacy::jobs
