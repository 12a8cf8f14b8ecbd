#include "jobs.hpp"

#include "audit.hpp"
#include "evidence.hpp"
#include "notify.hpp"
#include "pg/guc.hpp"
#include "pg/shmem.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "access/xact.h"
}

#include <map>

namespace privacy::jobs {

using core::JobStatus;

namespace {

// Every statement here is schema-qualified (docs/security.md): functions as pg_catalog.fn,
// operators as OPERATOR(pg_catalog.op), whatever the search_path of the unit of work.
constexpr const char* kJobColumns =
    "id, kind::pg_catalog.text, status::pg_catalog.text, target_type::pg_catalog.text, target_id, tenant_id,"
    " requested_by, notify_email, cursor::pg_catalog.text, processed_items, failed_items, total_items, throughput,"
    " cancel_requested::pg_catalog.text,"
    " (NOT requires_approval OR decided_by IS NOT NULL)::pg_catalog.text";

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
  job.was_approved = *row[14] == "true";
  return job;
}

// The column assignments that go with an action, besides status and updated_at.
// $2 is the note (decision note, reason, result or error text) of the change.
std::string assignments_for(core::JobAction action) {
  switch (action) {
    case core::JobAction::Approve:
      return "decided_by = session_user, decided_at = pg_catalog.now(), decision_note = $2,"
             " queued_at = pg_catalog.now()";
    case core::JobAction::Retry:
      return "queued_at = pg_catalog.now(), error = NULL, finished_at = NULL, cancel_requested = false";
    case core::JobAction::Reject:
      return "decided_by = session_user, decided_at = pg_catalog.now(), decision_note = $2,"
             " finished_at = pg_catalog.now()";
    case core::JobAction::Cancel:
      return "decision_note = $2, finished_at = pg_catalog.now(), cancel_requested = true";
    case core::JobAction::Start:
      return "started_at = COALESCE(started_at, pg_catalog.now()), attempts = attempts OPERATOR(pg_catalog.+) 1,"
             " worker_pid = pg_catalog.pg_backend_pid(), heartbeat_at = pg_catalog.now()";
    case core::JobAction::Complete:
      return "finished_at = pg_catalog.now(), result = $2::pg_catalog.jsonb, eta = '0'::pg_catalog.interval,"
             " worker_pid = NULL, cursor = NULL,"
             " recoverable_until = CASE WHEN kind OPERATOR(pg_catalog.=) 'erase'::privacy.job_kind"
             " THEN pg_catalog.now() OPERATOR(pg_catalog.+)"
             " (SELECT CASE WHEN replay_of IS NULL THEN s.recovery_window ELSE '0'::pg_catalog.interval END"
             "    FROM privacy.tenant_settings(tenant_id) s) END";  // a replay: finalized at once (docs/compliance.md)
    case core::JobAction::Fail:
      return "finished_at = pg_catalog.now(), error = $2, worker_pid = NULL";
  }
  return "";
}

// What the state machine needs to know about the session and the job besides its status.
core::ActionContext action_context(const JobRecord& job) {
  core::ActionContext context;
  context.requester = job.requested_by;
  context.distinct_approver_required = pg::guc::require_distinct_approver;
  context.was_approved = job.was_approved;
  // The session user is the actor of the audit trail. Code that runs for another role (a table
  // owner's trigger in a worker's batch) keeps the worker's session user, so the state machine
  // refuses approvals from inside such code altogether.
  pg::pg_guard([&] {
    context.approver_is_requester = job.requested_by == GetUserNameFromId(GetSessionUserId(), false);
    context.inside_restricted_operation = InSecurityRestrictedOperation();
  });
  return context;
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
  std::string sql = std::string("SELECT ") + kJobColumns + " FROM privacy.jobs WHERE id OPERATOR(pg_catalog.=) $1" +
                    (lock ? " FOR UPDATE" : "");
  std::vector<pg::TextRow> rows = pg::spi_query_rows(sql, {pg::int8_param(job_id)}, !lock);
  if (rows.empty()) {
    throw core::Error(core::sqlstate::kInvalidParameter, "job " + std::to_string(job_id) + " does not exist",
                      "", "See privacy.job_overview for the existing jobs.");
  }
  return job_from_row(rows[0]);
}

void change_status(const JobRecord& job, const StatusChange& change) {
  core::JobStatus to = core::decide(job.id, job.status, change.action, action_context(job));
  pg::SpiConnection spi;
  std::string sql = "UPDATE privacy.jobs SET status = '" + std::string(core::to_string(to)) +
                    "'::privacy.job_status, updated_at = pg_catalog.now(), " + assignments_for(change.action) +
                    " WHERE id OPERATOR(pg_catalog.=) $1";
  pg::spi_execute(sql, {pg::int8_param(job.id), pg::text_param(change.note)});

  audit::append(job_audit_entry(job, std::string(core::audit_action(change.action)), change.audit_detail_json));
  notify::job_status_changed(
      notify::load_job_event(job.id, std::string(core::to_string(job.status)), std::string(core::to_string(to))));

  if (to == JobStatus::Approved || to == JobStatus::Cancelled) wake_launcher_at_commit();
  if (to == JobStatus::Completed) evidence::job_closed(job.id);
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
