// The request and decision API (docs/jobs.md, "Requesting and deciding"): request_export /
// request_erase / request_purge, approve, reject, cancel, retry, extend_deadline, preview. Each
// call returns at once; the work happens in the background. Status changes go through
// jobs::transition.
#include "audit/audit.hpp"
#include "citus/node.hpp"
#include "core/json.hpp"
#include "export/export.hpp"
#include "data/batch.hpp"
#include "data/relation_order.hpp"
#include "holds/holds.hpp"
#include "notify/notify.hpp"
#include "jobs/jobs.hpp"
#include "compliance/deadlines.hpp"
#include "pg/guc.hpp"
#include "pg/shmem.hpp"
#include "pg/spi.hpp"
#include "data/registry.hpp"
#include "jobs/requests.hpp"
#include "access/tenant_scope.hpp"

extern "C" {
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
}

namespace {

using privacy::core::Error;
using privacy::core::JobAction;
using privacy::core::JobKind;
using privacy::core::JobStatus;
namespace sqlstate = privacy::core::sqlstate;
namespace pg = privacy::pg;
namespace jobs = privacy::jobs;

void validate_email(const std::optional<std::string>& email) {
  if (!email) return;
  bool has_at = email->find('@') != std::string::npos;
  bool has_bad = email->find_first_of(" \r\n<>,;") != std::string::npos;
  if (!has_at || has_bad) {
    throw Error(sqlstate::kInvalidParameter,
                "notify_email \"" + *email + "\" is not an e-mail address", "",
                "Pass one address like dpo@example.com, or NULL for no e-mail.");
  }
}

const char* kReasonHint = "Say why: the request reference, the legal basis, who asked.";

// An erasure must be able to anonymize every 'anonymize' table: its subject column takes a rule
// (docs/soft-delete.md, "Anonymization rules"). Refused now, at submission, never at finalization.
void ensure_anonymizable(const std::string& tenant_id, const std::string& subject_id) {
  for (Oid relation : privacy::relation_order::in_foreign_key_order()) {
    std::optional<privacy::registry::TableInfo> table = privacy::registry::load_table(relation);
    if (!table) continue;
    std::optional<Error> refusal =
        privacy::registry::anonymization_refusal(*table, tenant_id, subject_id);
    if (refusal) throw *refusal;
  }
}

// The audit row of a new job: 'submitted', or 'erasure_replayed' for a replay of an erasure.
privacy::audit::Entry submission_entry(const privacy::requests::Request& request, long long job_id,
                                       const std::string& requires_approval) {
  privacy::audit::Entry entry;
  entry.tenant_id = request.tenant_id;
  entry.job_id = job_id;
  entry.target = request.target_type + ":" + request.target_id;
  std::string kind_json = privacy::core::json_string(privacy::core::to_string(request.kind));
  if (!request.replay) {
    entry.action = "submitted";
    entry.detail_json =
        "{\"kind\": " + kind_json + ", \"requires_approval\": " + requires_approval + "}";
  } else {
    entry.action = "erasure_replayed";
    entry.detail_json =
        "{\"kind\": " + kind_json +
        ", \"ledger_seq\": " + std::to_string(request.replay->ledger_seq) +
        ", \"entry_hash\": " + privacy::core::json_string(request.replay->entry_hash) +
        ", \"original_job\": " + std::to_string(request.replay->original_job) +
        ", \"requires_approval\": " + requires_approval + "}";
  }
  return entry;
}

long long submit_for_subject(FunctionCallInfo fcinfo, JobKind kind) {
  std::string tenant =
      pg::nonblank_text_arg(fcinfo, 0, "tenant_id", "Pass the tenant the subject belongs to.");
  std::string subject =
      pg::nonblank_text_arg(fcinfo, 1, "subject_id", "Pass the data subject's identifier.");
  std::string reason = pg::nonblank_text_arg(fcinfo, 2, "reason", kReasonHint);
  return privacy::requests::submit(
      {kind, tenant, "subject", subject, reason, pg::optional_text_arg(fcinfo, 3),
       pg::optional_enum_arg(fcinfo, 4), std::nullopt, pg::optional_text_arg(fcinfo, 5)});
}

// An erase would skip the rows a restriction hides (its mark is the restriction's job id), and
// finalization would leave them: the restriction is lifted first (docs/jobs.md, "Restriction of
// processing").
void refuse_while_restricted(const privacy::requests::Request& request) {
  std::optional<std::string> restriction = pg::spi_query_text(
      "SELECT id::pg_catalog.text FROM privacy.jobs"
      " WHERE kind OPERATOR(pg_catalog.=) 'restrict' AND lifted_at IS NULL"
      "   AND tenant_id OPERATOR(pg_catalog.=) $1 AND target_id OPERATOR(pg_catalog.=) $2"
      "   AND status OPERATOR(pg_catalog.<>) ALL ('{rejected}'::privacy.job_status[])"
      " ORDER BY id LIMIT 1",
      {pg::text_param(request.tenant_id), pg::text_param(request.target_id)}, false);
  if (!restriction) return;
  throw Error(sqlstate::kObjectNotInPrerequisiteState,
              "cannot erase subject \"" + request.target_id + "\" of tenant \"" +
                  request.tenant_id + "\": restriction job " + *restriction +
                  " is in effect (or still open)",
              "An erasure would pass over the rows the restriction hides.",
              "Lift it first: SELECT privacy.lift_restriction(" + *restriction +
                  "); or cancel it if it has not run.");
}

}  // namespace

namespace privacy::requests {

// Inserts the job row (pending or approved by the tenant's approval policy, a replay too: see
// docs/compliance.md), with its regulation and due date (src/compliance/deadlines.cpp), audits and
// notifies it.
long long submit(const Request& request) {
  std::string kind_text(privacy::core::to_string(request.kind));
  privacy::citus_node::refuse_on_worker_node("privacy.request_" + kind_text);
  privacy::tenant_scope::require(request.tenant_id, std::string("request"),
                                 "privacy.request_" + kind_text);
  privacy::tenant_scope::check_on_behalf_of(request.on_behalf_of);
  validate_email(request.notify_email);
  std::optional<std::string> subject = request.target_type == "subject"
                                           ? std::optional<std::string>(request.target_id)
                                           : std::nullopt;
  if (request.kind == JobKind::Export) privacy::exports::ensure_recipient_available();
  if (request.kind != JobKind::Export) {
    privacy::holds::ensure_not_held(kind_text + " of " + request.target_type + " \"" +
                                        request.target_id + "\" of tenant \"" + request.tenant_id +
                                        "\"",
                                    request.tenant_id, subject);
  }
  pg::SpiConnection spi;
  if (request.kind == JobKind::Erase && request.target_type == "subject")
    refuse_while_restricted(request);
  if (request.kind == JobKind::Erase) ensure_anonymizable(request.tenant_id, request.target_id);
  std::optional<long long> registered =
      pg::spi_query_int8("SELECT pg_catalog.count(*) FROM privacy.registered_tables");
  if (registered.value_or(0) == 0) {
    throw Error(
        sqlstate::kObjectNotInPrerequisiteState,
        "cannot accept a " + kind_text + " request: no table is registered with pg_privacy", "",
        "Register the tables holding personal data first: SELECT privacy.register_table('public.users', 'user_id', 'tenant_id');");
  }
  privacy::deadlines::NewDeadline deadline =
      privacy::deadlines::for_new_request(request.tenant_id, request.regulation);
  std::optional<std::string> replay_of;
  if (request.replay) replay_of = request.replay->entry_hash;
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "INSERT INTO privacy.jobs (kind, target_type, target_id, tenant_id, reason, notify_email,"
      "                          requires_approval, status, queued_at, due_at, regulation, replay_of,"
      "                          requested_on_behalf_of)"
      " SELECT $1::privacy.job_kind, $2::privacy.target_type, $3, $4, $5, $6, needs,"
      "        CASE WHEN needs THEN 'pending' ELSE 'approved' END::privacy.job_status,"
      "        CASE WHEN needs THEN NULL ELSE pg_catalog.now() END, $7::pg_catalog.timestamptz,"
      "        $8::privacy.regulation, $9, $10"
      "   FROM privacy._tenant_settings($4) s,"
      "        LATERAL (SELECT $1::privacy.job_kind OPERATOR(pg_catalog.=) ANY (s.approval_required) AS needs) n"
      " RETURNING id::pg_catalog.text, status::pg_catalog.text, requires_approval::pg_catalog.text",
      {pg::text_param(kind_text), pg::text_param(request.target_type),
       pg::text_param(request.target_id), pg::text_param(request.tenant_id),
       pg::text_param(request.reason), pg::text_param(request.notify_email),
       pg::text_param(deadline.due_at), pg::text_param(deadline.regulation),
       pg::text_param(replay_of), pg::text_param(request.on_behalf_of)},
      false);
  const pg::TextRow& inserted = rows.at(0);
  long long job_id = inserted.int8(0);
  std::string status = inserted.text(1);
  bool queued = status == "approved";

  privacy::audit::Entry entry = submission_entry(request, job_id, inserted.text(2));
  entry.on_behalf_of = request.on_behalf_of;
  privacy::audit::append(entry);
  privacy::notify::job_status_changed(
      privacy::notify::load_job_event(job_id, std::nullopt, status));
  if (queued) pg::wake_launcher_at_commit();
  return job_id;
}

}  // namespace privacy::requests

PRIVACY_SQL_FUNCTION(privacy_request_export) {
  return Int64GetDatum(submit_for_subject(fcinfo, JobKind::Export));
}
PRIVACY_SQL_FUNCTION(privacy_request_erase) {
  return Int64GetDatum(submit_for_subject(fcinfo, JobKind::Erase));
}
PRIVACY_SQL_FUNCTION(privacy_request_restrict) {
  return Int64GetDatum(submit_for_subject(fcinfo, JobKind::Restrict));
}

PRIVACY_SQL_FUNCTION(privacy_request_purge) {
  std::string tenant =
      pg::nonblank_text_arg(fcinfo, 0, "tenant_id", "Pass the tenant whose data is purged.");
  std::string target_type = pg::enum_arg(fcinfo, 1, "target_type", "Pass 'subject' or 'tenant'.");
  std::string target = pg::nonblank_text_arg(
      fcinfo, 2, "target_id", "Pass the subject id, or the tenant id for a tenant purge.");
  std::string reason = pg::nonblank_text_arg(fcinfo, 3, "reason", kReasonHint);
  if (target_type == "tenant" && target != tenant) {
    throw Error(
        sqlstate::kInvalidParameter,
        "a tenant purge must name the tenant itself: target_id \"" + target +
            "\" is not tenant \"" + tenant + "\"",
        "", "Call privacy.request_purge('" + tenant + "', 'tenant', '" + tenant + "', reason).");
  }
  return Int64GetDatum(privacy::requests::submit(
      {JobKind::Purge, tenant, target_type, target, reason, pg::optional_text_arg(fcinfo, 4),
       pg::optional_enum_arg(fcinfo, 5), std::nullopt, pg::optional_text_arg(fcinfo, 6)}));
}

// Four-eyes approval: the state machine refuses an approval by the requester (jobs::transition).
PRIVACY_SQL_FUNCTION(privacy_approve) {
  privacy::citus_node::refuse_on_worker_node("privacy.approve");
  jobs::Job job = jobs::load_for_caller(pg::int8_arg(fcinfo, 0, "job_id"), jobs::Lock::ForUpdate,
                                        std::string("decide"), "privacy.approve");
  std::optional<std::string> note = pg::optional_text_arg(fcinfo, 1);
  std::optional<std::string> on_behalf_of = pg::optional_text_arg(fcinfo, 2);
  privacy::tenant_scope::check_on_behalf_of(on_behalf_of);
  jobs::transition(
      job, {JobAction::Approve, note, privacy::core::json_object({{"note", note}}), on_behalf_of});
  return (Datum)0;
}

PRIVACY_SQL_FUNCTION(privacy_reject) {
  privacy::citus_node::refuse_on_worker_node("privacy.reject");
  jobs::Job job = jobs::load_for_caller(pg::int8_arg(fcinfo, 0, "job_id"), jobs::Lock::ForUpdate,
                                        std::string("decide"), "privacy.reject");
  std::string reason = pg::nonblank_text_arg(
      fcinfo, 1, "reason", "Say why the request is rejected; the requester is told.");
  std::optional<std::string> on_behalf_of = pg::optional_text_arg(fcinfo, 2);
  privacy::tenant_scope::check_on_behalf_of(on_behalf_of);
  jobs::transition(job, {JobAction::Reject, reason,
                         privacy::core::json_object({{"reason", reason}}), on_behalf_of});
  return (Datum)0;
}

// Pending and approved jobs are cancelled at once; a processing job is asked to stop and its
// runner cancels it after the batch in flight, or within a second while it waits for its
// throttle (what is done stays done, and restorable).
PRIVACY_SQL_FUNCTION(privacy_cancel) {
  privacy::citus_node::refuse_on_worker_node("privacy.cancel");
  jobs::enter_decision_gate(
      pg::int8_arg(fcinfo, 0, "job_id"));  // ahead of the job's next batch (jobs/jobs.hpp)
  jobs::Job job = jobs::load_for_caller(pg::int8_arg(fcinfo, 0, "job_id"), jobs::Lock::ForUpdate,
                                        std::string("decide"), "privacy.cancel");
  std::string reason = pg::nonblank_text_arg(fcinfo, 1, "reason", "Say why the job is cancelled.");
  std::optional<std::string> on_behalf_of = pg::optional_text_arg(fcinfo, 2);
  privacy::tenant_scope::check_on_behalf_of(on_behalf_of);
  if (job.state.status != JobStatus::Processing) {
    jobs::transition(job, {JobAction::Cancel, reason,
                           privacy::core::json_object({{"reason", reason}}), on_behalf_of});
    return (Datum)0;
  }
  pg::SpiConnection spi;
  pg::spi_execute(
      "UPDATE privacy.jobs SET cancel_requested = true, decision_note = $2, updated_at = pg_catalog.now()"
      " WHERE id OPERATOR(pg_catalog.=) $1",
      {pg::int8_param(job.id), pg::text_param(reason)});
  privacy::audit::Entry entry = jobs::job_audit_entry(
      job, "cancel_requested", privacy::core::json_object({{"reason", reason}}));
  entry.on_behalf_of = on_behalf_of;
  privacy::audit::append(entry);
  pg::wake_launcher_at_commit();
  return (Datum)0;
}

// Queues a failed or cancelled job again; it resumes from its last committed batch. Never a way
// around approval: a pending job is refused, and so is a cancelled one that was never approved.
// An erase is retried only while its finalization has not begun (docs/jobs.md, "Lifecycle").
PRIVACY_SQL_FUNCTION(privacy_retry) {
  privacy::citus_node::refuse_on_worker_node("privacy.retry");
  jobs::Job job = jobs::load_for_caller(pg::int8_arg(fcinfo, 0, "job_id"), jobs::Lock::ForUpdate,
                                        std::string("decide"), "privacy.retry");
  jobs::transition(job, {JobAction::Retry, std::nullopt, "{\"resume\": true}"});
  return (Datum)0;
}

// Moves the due date as far as the job's regulation allows; the rules are src/core/deadline.hpp.
PRIVACY_SQL_FUNCTION(privacy_extend_deadline) {
  privacy::citus_node::refuse_on_worker_node("privacy.extend_deadline");
  jobs::Job job = jobs::load_for_caller(pg::int8_arg(fcinfo, 0, "job_id"), jobs::Lock::ForUpdate,
                                        std::string("decide"), "privacy.extend_deadline");
  if (PG_ARGISNULL(1))
    throw Error(sqlstate::kInvalidParameter, "by must not be NULL", "",
                "Pass an interval such as '14 days'.");
  const Interval* by = PG_GETARG_INTERVAL_P(1);
  std::string reason = pg::nonblank_text_arg(fcinfo, 2, "reason", kReasonHint);
  if (privacy::core::is_terminal(job.state.status) || job.state.status == JobStatus::Cancelled) {
    throw Error(sqlstate::kObjectNotInPrerequisiteState,
                "job " + std::to_string(job.id) + " is " +
                    std::string(privacy::core::to_string(job.state.status)) +
                    " and has no deadline left to extend",
                "", "Only open jobs have a deadline.");
  }
  privacy::deadlines::extend(job, privacy::core::Period{by->month, by->day, by->time}, reason);
  return (Datum)0;
}

// Per registered relation that exists: how many rows the job would touch, and whether a hold
// applies. A registration whose table is gone is left out (unregister_table removes it).
PRIVACY_SQL_FUNCTION(privacy_preview) {
  jobs::Job job = jobs::load_for_caller(pg::int8_arg(fcinfo, 0, "job_id"), jobs::Lock::None,
                                        std::string("decide"), "privacy.preview");
  pg::pg_guard([&] { InitMaterializedSRF(fcinfo, 0); });
  auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
  privacy::batch::Operation operation =
      job.kind == JobKind::Erase || job.kind == JobKind::Restrict ? privacy::batch::Operation::Mark
      : job.kind == JobKind::Purge                                ? privacy::batch::Operation::Purge
                                                                  : privacy::batch::Operation::Read;
  for (Oid relation : privacy::relation_order::in_foreign_key_order()) {
    std::optional<privacy::registry::TableInfo> table = privacy::registry::load_table(relation);
    if (!table) continue;
    long long rows = privacy::batch::count_rows(job, *table, operation, std::nullopt);
    bool held = privacy::holds::find_hold(job.tenant_id, job.subject, relation).has_value();
    Datum values[3] = {ObjectIdGetDatum(relation), Int64GetDatum(rows), BoolGetDatum(held)};
    bool nulls[3] = {false, false, false};
    pg::pg_guard([&] { tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls); });
  }
  return (Datum)0;
}
