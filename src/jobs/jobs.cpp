#include "jobs/jobs.hpp"

#include "audit/audit.hpp"
#include "compliance/receipts.hpp"
#include "notify/notify.hpp"
#include "pg/boundary.hpp"
#include "pg/guc.hpp"
#include "pg/shmem.hpp"
#include "pg/spi.hpp"
#include "access/tenant_scope.hpp"

namespace privacy::jobs {

using core::JobAction;
using core::JobStatus;

namespace {

// Every statement here is schema-qualified (docs/security.md): functions as pg_catalog.fn,
// operators as OPERATOR(pg_catalog.op), whatever the search_path of the unit of work.
constexpr const char* kJobColumns =
    "id, kind::pg_catalog.text, status::pg_catalog.text, finalization::pg_catalog.text,"
    " target_type::pg_catalog.text, target_id, tenant_id, requested_by, notify_email, cursor::pg_catalog.text,"
    " processed_items, failed_items, total_items, cancel_requested::pg_catalog.text,"
    " (NOT requires_approval OR decided_by IS NOT NULL)::pg_catalog.text, (started_at IS NOT NULL)::pg_catalog.text,"
    " attempts, finalization_attempts, recoverable_until::pg_catalog.text,"
    " COALESCE(recoverable_until OPERATOR(pg_catalog.<=) pg_catalog.now(), false)::pg_catalog.text, last_error,"
    " requested_on_behalf_of";

Job job_from_row(const pg::TextRow& row) {
  Job job;
  job.id = row.int8(0);
  job.kind = *core::parse_job_kind(row.text(1));
  job.state.status = *core::parse_job_status(row.text(2));
  if (row[3]) job.state.finalization = core::parse_finalization_state(*row[3]);
  job.target_type = row.text(4);
  job.target_id = row.text(5);
  if (job.target_type == "subject") job.subject = job.target_id;
  job.tenant_id = row.text(6);
  job.requested_by = row.text(7);
  job.notify_email = row[8];
  job.cursor_json = row[9];
  job.processed_items = row.int8(10);
  job.failed_items = row.int8(11);
  job.total_items = row.optional_int8(12);
  job.cancel_requested = row.boolean(13);
  job.was_approved = row.boolean(14);
  job.reached_processing = row.boolean(15);
  job.attempts = row.int4(16);
  job.finalization_attempts = row.int4(17);
  job.recoverable_until = row[18];
  job.window_closed = row.boolean(19);
  job.last_error = row[20];
  job.requested_on_behalf_of = row[21];
  return job;
}

// The recovery window an erase gets when it stops: now() + the tenant's recovery_window.
constexpr const char* kOpenWindow =
    "recoverable_until = CASE WHEN finalization IS NULL AND $3::pg_catalog.text OPERATOR(pg_catalog.=) 'awaiting_window'"
    " THEN pg_catalog.now() OPERATOR(pg_catalog.+)"
    " (SELECT CASE WHEN replay_of IS NULL THEN s.recovery_window ELSE '0'::pg_catalog.interval END"
    "    FROM privacy._tenant_settings(tenant_id) s)"  // a replay: finalized at once
                                                       // (docs/compliance.md)
    " ELSE recoverable_until END";

// The column assignments that go with an action, besides status, finalization and updated_at.
// $2 is the note (decision note, reason, result or error text) of the change, $3 the new
// finalization state.
std::string assignments_for(JobAction action) {
  switch (action) {
    case JobAction::Approve:
      return "decided_by = session_user, decided_on_behalf_of = $4, decided_at = pg_catalog.now(),"
             " decision_note = $2, queued_at = pg_catalog.now()";
    case JobAction::Retry:
      return "queued_at = pg_catalog.now(), error = NULL, last_error = NULL, finished_at = NULL,"
             " cancel_requested = false, attempts = 0, recoverable_until = NULL";
    case JobAction::Reject:
      return "decided_by = session_user, decided_on_behalf_of = $4, decided_at = pg_catalog.now(),"
             " decision_note = $2, finished_at = pg_catalog.now()";
    case JobAction::Cancel:
      return std::string(
                 "decision_note = COALESCE($2, decision_note), finished_at = pg_catalog.now(),"
                 " cancel_requested = true, worker_pid = NULL, eta = NULL, last_error = NULL, ") +
             kOpenWindow;
    case JobAction::Start:
      return "started_at = COALESCE(started_at, pg_catalog.now()), attempts = attempts OPERATOR(pg_catalog.+) 1,"
             " worker_pid = pg_catalog.pg_backend_pid(), heartbeat_at = pg_catalog.now()";
    case JobAction::Complete:
      return std::string(
                 "finished_at = pg_catalog.now(), result = $2::pg_catalog.jsonb, eta = '0'::pg_catalog.interval,"
                 " worker_pid = NULL, cursor = NULL, last_error = NULL, ") +
             kOpenWindow;
    case JobAction::Fail:
      return std::string(
                 "finished_at = pg_catalog.now(), error = $2, last_error = $2, worker_pid = NULL, eta = NULL, ") +
             kOpenWindow;
    case JobAction::CloseWindow:
      return "cursor = NULL, finalization_attempts = 0, last_error = NULL";
    case JobAction::ResumeFinalization:
      return "finalization_attempts = 0, last_error = NULL, finalized_at = NULL";
    case JobAction::HoldFinalization:
      return "worker_pid = NULL, finalization_attempts = 0, last_error = NULL";
    case JobAction::FinishFinalization:
    case JobAction::ClearItems:
      return "finalized_at = pg_catalog.now(), cursor = NULL, worker_pid = NULL, last_error = NULL";
    case JobAction::FinishWithErrors:  // the cursor stays: a table passed over may be handed back
      return "finalized_at = pg_catalog.now(), worker_pid = NULL, last_error = NULL";
  }
  return "";
}

// What the state machine needs to know about the session and the job besides its state.
core::ActionContext action_context(const Job& job, const std::optional<std::string>& on_behalf_of) {
  core::ActionContext context;
  context.requester = job.requested_by;
  if (job.requested_on_behalf_of)
    context.requester += " on behalf of " + *job.requested_on_behalf_of;
  context.distinct_approver_required = pg::guc::require_distinct_approver;
  context.was_approved = job.was_approved;
  context.kind = job.kind;
  context.reached_processing = job.reached_processing;
  context.window_closed = job.window_closed;
  // The session user is the actor of the audit trail. Code that runs for another role (a table
  // owner's trigger in a worker's batch) keeps the worker's session user, so the state machine
  // refuses approvals from inside such code altogether.
  // Four-eyes compares the humans too (docs/security.md, "Acting for a person"): the person
  // behind each side is the on_behalf_of it named, else its session user, so one person cannot
  // request and approve through two roles.
  pg::pg_guard([&] {
    std::string session_user = GetUserNameFromId(GetSessionUserId(), false);
    std::string requester = job.requested_on_behalf_of.value_or(job.requested_by);
    std::string approver = on_behalf_of.value_or(session_user);
    context.approver_is_requester = job.requested_by == session_user || requester == approver;
    context.inside_restricted_operation = InSecurityRestrictedOperation();
  });
  return context;
}

std::string finalization_text(const core::JobState& state) {
  return state.finalization ? std::string(core::to_string(*state.finalization)) : std::string();
}

}  // namespace

// pg_advisory_xact_lock_shared(class, job) called directly: it is taken in every batch, and a
// statement of its own cost more than the lock.
void enter_batch_gate(long long job_id) {
  if (job_id < PG_INT32_MIN || job_id > PG_INT32_MAX)
    throw core::Error("22003", "integer out of range");
  pg::pg_guard([&] {
    (void)DirectFunctionCall2(pg_advisory_xact_lock_shared_int4, Int32GetDatum(kDecisionGateClass),
                              Int32GetDatum(static_cast<int32>(job_id)));
  });
}

void enter_decision_gate(long long job_id) {
  pg::SpiConnection spi;
  pg::spi_execute(
      "SELECT pg_catalog.pg_advisory_xact_lock($1::pg_catalog.int4, $2::pg_catalog.int4)",
      {pg::int8_param(kDecisionGateClass), pg::int8_param(job_id)});
}

namespace {

[[noreturn]] void no_such_job(long long job_id) {
  throw core::Error(core::sqlstate::kInvalidParameter,
                    "job " + std::to_string(job_id) + " does not exist", "",
                    "See privacy.job_overview for the existing jobs.");
}

// A tenant's pacing settings (privacy._tenant_settings of `tenant_sql`) as the last
// kPacingColumns columns of a statement: one SELECT for load_with_pacing and read_pacing.
constexpr size_t kPacingColumns = 3;
std::string pacing_select(const std::string& tenant_sql) {
  return "SELECT t.rows_per_second AS pace_rate, t.cost_limit AS pace_limit,"
         " pg_catalog.date_part('epoch', t.cost_delay) OPERATOR(pg_catalog.*) 1000 AS pace_delay_ms"
         " FROM privacy._tenant_settings(" +
         tenant_sql + ") t";
}

TenantPacing pacing_from_row(const pg::TextRow& row) {
  size_t first = row.size() - kPacingColumns;
  TenantPacing pacing;
  if (row[first]) pacing.rows_per_second = row.int4(first);
  if (row[first + 1]) pacing.cost_limit = row.int4(first + 1);
  if (row[first + 2]) pacing.cost_delay_ms = row.float8(first + 2);
  return pacing;
}

}  // namespace

Job load(long long job_id, Lock lock) {
  pg::SpiConnection spi;
  bool for_update = lock == Lock::ForUpdate;
  std::string sql = std::string("SELECT ") + kJobColumns +
                    " FROM privacy.jobs WHERE id OPERATOR(pg_catalog.=) $1" +
                    (for_update ? " FOR UPDATE" : "");
  std::vector<pg::TextRow> rows = pg::spi_query_rows(sql, {pg::int8_param(job_id)}, !for_update);
  if (rows.empty()) no_such_job(job_id);
  return job_from_row(rows[0]);
}

Job load_with_pacing(long long job_id, TenantPacing& pacing) {
  pg::SpiConnection spi;
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      std::string("SELECT ") + kJobColumns + ", s.* FROM privacy.jobs LEFT JOIN LATERAL (" +
          pacing_select("jobs.tenant_id") +
          ") s ON true WHERE jobs.id OPERATOR(pg_catalog.=) $1 FOR UPDATE OF jobs",
      {pg::int8_param(job_id)}, false);
  if (rows.empty()) no_such_job(job_id);
  pacing = pacing_from_row(rows[0]);
  return job_from_row(rows[0]);
}

TenantPacing read_pacing(const std::string& tenant_id) {
  pg::SpiConnection spi;
  std::vector<pg::TextRow> rows =
      pg::spi_query_rows(pacing_select("$1::pg_catalog.text"), {pg::text_param(tenant_id)});
  return rows.empty() ? TenantPacing{} : pacing_from_row(rows[0]);
}

Job load_for_caller(long long job_id, Lock lock, const std::optional<std::string>& capability,
                    const std::string& what) {
  Job job = load(job_id, lock);
  tenant_scope::require(job.tenant_id, capability, what + " of job " + std::to_string(job_id));
  return job;
}

core::JobState transition(const Job& job, const Transition& change) {
  core::JobState to =
      core::decide(job.id, job.state, change.action, action_context(job, change.on_behalf_of));
  pg::SpiConnection spi;
  std::string finalization = finalization_text(to);
  std::string sql =
      "UPDATE privacy.jobs SET status = '" + std::string(core::to_string(to.status)) +
      "'::privacy.job_status, finalization = NULLIF($3, '')::privacy.finalization_state,"
      " updated_at = pg_catalog.now(), " +
      assignments_for(change.action) + " WHERE id OPERATOR(pg_catalog.=) $1";
  pg::spi_execute(sql, {pg::int8_param(job.id), pg::text_param(change.note),
                        pg::text_param(finalization), pg::text_param(change.on_behalf_of)});

  audit::Entry entry = job_audit_entry(job, std::string(core::audit_action(change.action)),
                                       change.audit_detail_json);
  entry.on_behalf_of = change.on_behalf_of;
  audit::append(entry);
  if (to.status != job.state.status) {
    notify::job_status_changed(
        notify::load_job_event(job.id, std::string(core::to_string(job.state.status)),
                               std::string(core::to_string(to.status))));
  }
  bool new_work = to.status == JobStatus::Approved || to.status == JobStatus::Cancelled ||
                  to.finalization == core::FinalizationState::Finalizing;
  if (new_work) pg::wake_launcher_at_commit();
  if (to.status == JobStatus::Completed || to.finalization == core::FinalizationState::Finalized ||
      to.finalization == core::FinalizationState::FinalizedWithErrors) {
    evidence::job_closed(job.id);  // a receipt when the request is finished (docs/compliance.md)
  }
  return to;
}

audit::Entry job_audit_entry(const Job& job, const std::string& action,
                             const std::string& detail_json) {
  audit::Entry entry;
  entry.action = action;
  entry.tenant_id = job.tenant_id;
  entry.job_id = job.id;
  entry.target = job.target();
  entry.detail_json = detail_json;
  return entry;
}

long long open_items(long long job_id) {
  pg::SpiConnection spi;
  return pg::spi_query_int8(
             "SELECT pg_catalog.count(*) FROM privacy.job_errors"
             " WHERE job_id OPERATOR(pg_catalog.=) $1 AND resolution IS NULL",
             {pg::int8_param(job_id)}, false)
      .value_or(0);
}

}  // namespace privacy::jobs
