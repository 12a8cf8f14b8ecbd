// Job events (docs/notifications.md): pg_notify on privacy_events and privacy_deadlines, and the
// e-mail they queue in the outbox (privacy.notifications), in the transaction of the change. The
// launcher's mailer (notify/mailer.cpp) delivers the queued mail later.
#include "audit/audit.hpp"
#include "core/error.hpp"
#include "core/smtp_message.hpp"
#include "notify/notify.hpp"
#include "notify/outbox.hpp"
#include "pg/boundary.hpp"
#include "pg/guc.hpp"
#include "pg/shmem.hpp"
#include "pg/spi.hpp"

#include <optional>
#include <string>
#include <vector>

namespace privacy::notify {

using pg::int8_param;
using pg::text_param;

std::string json_object_sql(const std::string& pairs_sql, const std::vector<pg::SqlParam>& params) {
  return pg::spi_query_text("SELECT pg_catalog.json_build_object(" + pairs_sql + ")::text", params)
      .value_or("{}");
}

void audit_mail(const std::string& action, const std::string& outcome,
                const std::optional<std::string>& tenant_id, std::optional<long long> job_id,
                std::optional<long long> notification_id, const std::string& detail_json) {
  audit::Entry entry;
  entry.action = action;
  entry.tenant_id = tenant_id;
  entry.job_id = job_id;
  if (notification_id) entry.target = "notification " + std::to_string(*notification_id);
  entry.outcome = outcome;
  entry.detail_json = detail_json;
  audit::append(entry);
}

namespace {

constexpr const char* kChannel = "privacy_events";
constexpr const char* kDeadlineChannel = "privacy_deadlines";

// Queues an e-mail about a job. The recipient is checked first: an address that could never be
// sent to (or would inject headers) is skipped and audited instead of failing the caller.
// `what` names the address in the refusal ("notify_email"); `about` is the audit detail's key
// and value saying which mail it was ("new_status": "failed", "notice": "deadline_warning").
void queue_mail(long long job_id, const std::string& tenant_id, const std::string& recipient,
                const char* what, const std::pair<std::string, std::string>& about,
                const core::MailText& text) {
  try {
    core::validate_mail_address(recipient, what);
  } catch (const core::Error& refused) {
    audit_mail("notification_failed", "refused", tenant_id, job_id, std::nullopt,
               json_object_sql("'error', $1::text, $2::text, $3::text, 'queued', false",
                               {text_param(std::string(refused.what()) + ": " + refused.detail()),
                                text_param(about.first), text_param(about.second)}));
    return;
  }
  pg::spi_execute(
      "INSERT INTO privacy.notifications (job_id, recipient, subject, body) VALUES ($1, $2, $3, $4)",
      {int8_param(job_id), text_param(recipient), text_param(text.subject), text_param(text.body)});
  pg::wake_launcher_at_commit();  // the mailer sends it at once, not after privacy.naptime
}

void queue_mail(const JobEvent& event) {
  queue_mail(event.job_id, event.tenant_id, *event.notify_email, "notify_email",
             {"new_status", event.new_status}, core::job_mail_text(event));
}

}  // namespace

std::string event_payload(const JobEvent& event) {
  return json_object_sql(
      "'job_id', $1::bigint, 'kind', $2::text, 'tenant_id', $3::text, 'target_type', $4::text, "
      "'old_status', $5::text, 'new_status', $6::text, 'processed_items', $7::bigint, "
      "'failed_items', $8::bigint, 'total_items', $9::bigint, "
      "'at', pg_catalog.statement_timestamp()",
      {int8_param(event.job_id), text_param(event.kind), text_param(event.tenant_id),
       text_param(event.target_type), text_param(event.old_status), text_param(event.new_status),
       int8_param(event.processed_items), int8_param(event.failed_items),
       int8_param(event.total_items)});
}

void job_status_changed(const JobEvent& event) {
  pg::SpiConnection spi;
  pg::spi_execute("SELECT pg_catalog.pg_notify($1, $2)",
                  {text_param(kChannel), text_param(event_payload(event))});
  if (core::should_email(event, pg::guc::notify_min_items)) queue_mail(event);
}

void deadline_notice(const core::DeadlineEvent& event, const std::optional<std::string>& mail_to) {
  pg::SpiConnection spi;
  std::string notice = core::deadline_notice_name(event.notice);
  pg::spi_execute(
      "SELECT pg_catalog.pg_notify($3, pg_catalog.json_build_object('event', $2::text, 'job_id', id, 'kind', kind,"
      " 'tenant_id', tenant_id, 'regulation', regulation, 'status', status, 'due_at', due_at,"
      " 'at', pg_catalog.statement_timestamp())::text) FROM privacy.jobs WHERE id = $1",
      {int8_param(event.job_id), text_param(notice), text_param(kDeadlineChannel)});
  if (mail_to) {
    queue_mail(event.job_id, event.tenant_id, *mail_to,
               event.notice == core::DeadlineNotice::Extended ? "notify_email" : "privacy_contact",
               {"notice", notice}, core::deadline_mail_text(event));
  }
}

JobEvent load_job_event(long long job_id, const std::optional<std::string>& old_status,
                        const std::string& new_status) {
  pg::SpiConnection spi;
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "SELECT kind::text, tenant_id, target_type::text, target_id, processed_items::text,"
      "       failed_items::text, total_items::text, notify_email,"
      "       CASE WHEN $2 = 'rejected' THEN decision_note ELSE error END,"
      "       to_char(recoverable_until AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS \"UTC\"'),"
      "       result::text"
      "  FROM privacy.jobs WHERE id = $1",
      {int8_param(job_id), text_param(new_status)});
  if (rows.empty()) {
    throw core::Error(core::sqlstate::kNoDataFound,
                      "job " + std::to_string(job_id) + " does not exist", "",
                      "Look the job up with privacy.find_jobs().");
  }
  const pg::TextRow& row = rows[0];
  JobEvent event;
  event.job_id = job_id;
  event.kind = row[0].value_or("");
  event.tenant_id = row[1].value_or("");
  event.target_type = row[2].value_or("");
  event.target_id = row[3].value_or("");
  event.old_status = old_status;
  event.new_status = new_status;
  event.processed_items = row.optional_int8(4).value_or(0);
  event.failed_items = row.optional_int8(5).value_or(0);
  event.total_items = row.optional_int8(6);
  event.notify_email = row[7];
  event.reason_or_error = row[8];
  event.recoverable_until = row[9];
  event.result_json = row[10];
  return event;
}

}  // namespace privacy::notify

// privacy._check_mail_address(address, what): raises 22023 naming `what` unless `address` is one
// plain e-mail address (core::validate_mail_address). Internal; configure_tenant uses it.
PRIVACY_SQL_FUNCTION(privacy_check_mail_address) {
  std::string address = privacy::pg::text_arg(fcinfo, 0, "address");  // the function is STRICT
  std::string what = privacy::pg::text_arg(fcinfo, 1, "what");
  privacy::core::validate_mail_address(address, what.c_str());
  PG_RETURN_VOID();
}
