#include "compliance/deadlines.hpp"

#include "audit/audit.hpp"
#include "core/json.hpp"
#include "notify/notify.hpp"
#include "pg/guc.hpp"
#include "pg/spi.hpp"

namespace privacy::deadlines {

namespace {

using core::CivilTime;
using core::Period;

// SQL for the wall-clock text of a timestamptz in the tenant's zone (s.time_zone of
// privacy._tenant_settings), in the one form core::parse_civil_time reads, whatever the session's
// DateStyle.
std::string civil(const std::string& expression) {
  return "pg_catalog.to_char((" + expression +
         ") AT TIME ZONE s.time_zone, 'YYYY-MM-DD HH24:MI:SS.US')";
}

// The same for people: "2024-02-29 10:00:00 Europe/Berlin".
std::string shown(const std::string& expression) {
  return "pg_catalog.to_char((" + expression +
         ") AT TIME ZONE s.time_zone, 'YYYY-MM-DD HH24:MI:SS')"
         " OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) s.time_zone";
}
// The tenant's deadline (an interval) as the three parts PostgreSQL keeps: months, days and the
// microseconds of the time part, independent of IntervalStyle.
constexpr const char* kDeadlineParts =
    "(EXTRACT(year FROM s.deadline) OPERATOR(pg_catalog.*) 12 OPERATOR(pg_catalog.+) EXTRACT(month FROM s.deadline))"
    "::pg_catalog.int4::pg_catalog.text,"
    " EXTRACT(day FROM s.deadline)::pg_catalog.int4::pg_catalog.text,"
    " ((EXTRACT(epoch FROM s.deadline) OPERATOR(pg_catalog.-) EXTRACT(epoch FROM pg_catalog.date_trunc('day', s.deadline)))"
    " OPERATOR(pg_catalog.*) 1000000)::pg_catalog.int8::pg_catalog.text";

Period period_from(const pg::TextRow& row, size_t first) {
  return Period{row.int4(first), row.int4(first + 1), row.int8(first + 2)};
}

core::Regulation regulation_from(const std::optional<std::string>& text) {
  std::optional<core::Regulation> regulation = core::parse_regulation(text.value_or(""));
  if (!regulation)
    throw core::Error(core::sqlstate::kInternalError,
                      "unknown regulation \"" + text.value_or("") + "\"");
  return *regulation;
}

// The job's deadline as core sees it, and what a notice says about it.
struct JobDeadline {
  core::DeadlineCase deadline;
  core::DeadlineEvent event;
  std::optional<std::string> notify_email;
};

JobDeadline load_job_deadline(const jobs::Job& job) {
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "SELECT j.regulation::pg_catalog.text, s.time_zone, " + civil("j.requested_at") + ", " +
          civil("j.due_at") + ", " + civil("pg_catalog.now()") + ", " + kDeadlineParts +
          ", j.deadline_extensions::pg_catalog.text, j.status::pg_catalog.text, " +
          shown("j.requested_at") + ", " + shown("j.due_at") +
          "  FROM privacy.jobs j CROSS JOIN LATERAL privacy._tenant_settings(j.tenant_id) s"
          " WHERE j.id OPERATOR(pg_catalog.=) $1",
      {pg::int8_param(job.id)});
  const pg::TextRow& row = rows.at(0);
  JobDeadline loaded;
  core::DeadlineCase& deadline = loaded.deadline;
  deadline.job_id = job.id;
  deadline.regulation = regulation_from(row[0]);
  deadline.time_zone = *row[1];
  deadline.received = core::parse_civil_time(*row[2]);
  deadline.due = core::parse_civil_time(*row[3]);
  deadline.now = core::parse_civil_time(*row[4]);
  deadline.other_deadline = period_from(row, 5);
  deadline.extensions_used = row.int4(8);
  core::DeadlineEvent& event = loaded.event;
  event.job_id = job.id;
  event.kind = std::string(core::to_string(job.kind));
  event.tenant_id = job.tenant_id;
  event.target_type = job.target_type;
  event.target_id = job.target_id;
  event.regulation = *row[0];
  event.status = *row[9];
  event.requested_at = *row[10];
  event.due_at = *row[11];
  loaded.notify_email = job.notify_email;
  return loaded;
}

}  // namespace

NewDeadline for_new_request(const std::string& tenant_id,
                            const std::optional<std::string>& requested) {
  pg::SpiConnection spi;
  std::vector<pg::TextRow> rows =
      pg::spi_query_rows("SELECT COALESCE($2, s.regulation::pg_catalog.text), s.time_zone, " +
                             civil("pg_catalog.now()") + ", " + kDeadlineParts +
                             " FROM privacy._tenant_settings($1) s",
                         {pg::text_param(tenant_id), pg::text_param(requested)});
  const pg::TextRow& row = rows.at(0);
  core::Regulation regulation = regulation_from(row[0]);
  CivilTime due = core::due_date(regulation, core::parse_civil_time(*row[2]), period_from(row, 3));
  std::optional<std::string> due_at =
      pg::spi_query_text("SELECT ($1::pg_catalog.timestamp AT TIME ZONE $2)::pg_catalog.text",
                         {pg::text_param(core::to_string(due)), pg::text_param(*row[1])});
  return NewDeadline{*row[0], *due_at};
}

void extend(const jobs::Job& job, const Period& by, const std::string& reason) {
  pg::SpiConnection spi;
  JobDeadline loaded = load_job_deadline(job);
  CivilTime extended = core::extended_due_date(loaded.deadline, by);
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "UPDATE privacy.jobs j SET due_at = $2::pg_catalog.timestamp AT TIME ZONE s.time_zone,"
      " deadline_extensions = j.deadline_extensions OPERATOR(pg_catalog.+) 1, deadline_warned_at = NULL,"
      " overdue_notified_at = NULL, updated_at = pg_catalog.now()"
      " FROM privacy._tenant_settings($3) s WHERE j.id OPERATOR(pg_catalog.=) $1"
      " RETURNING " +
          shown("j.due_at"),
      {pg::int8_param(job.id), pg::text_param(core::to_string(extended)),
       pg::text_param(job.tenant_id)});
  core::DeadlineEvent event = loaded.event;
  event.notice = core::DeadlineNotice::Extended;
  event.previous_due_at = event.due_at;
  event.due_at = *rows.at(0)[0];
  event.reason = reason;

  audit::append(jobs::job_audit_entry(
      job, "deadline_extended",
      core::json_object({{"regulation", event.regulation},
                         {"previous_due_at", event.previous_due_at},
                         {"due_at", event.due_at},
                         {"extension", std::to_string(loaded.deadline.extensions_used + 1)},
                         {"reason", reason}})));
  notify::deadline_notice(event, loaded.notify_email);
}

namespace {

constexpr int kNoticesPerCycle = 100;

}  // namespace

// The launcher step: for open requests whose due date is near (privacy.deadline_warning) or has
// passed, sends each notice once per due date: a privacy_deadlines event, an e-mail to the
// tenant's privacy contact, and an audit row. An overdue request that was never warned gets the
// overdue notice only. Rows a worker holds locked are left for the next cycle.
void send_deadline_notices() {
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "SELECT j.id::pg_catalog.text, (j.due_at OPERATOR(pg_catalog.<=) pg_catalog.now())::pg_catalog.text,"
      "       s.privacy_contact"
      "  FROM privacy.jobs j CROSS JOIN LATERAL privacy._tenant_settings(j.tenant_id) s"
      " WHERE j.status OPERATOR(pg_catalog.=) ANY ('{pending,approved,processing,failed}'::privacy.job_status[])"
      "   AND ((j.due_at OPERATOR(pg_catalog.<=) pg_catalog.now() AND j.overdue_notified_at IS NULL)"
      "        OR (j.due_at OPERATOR(pg_catalog.>) pg_catalog.now() AND j.deadline_warned_at IS NULL"
      "            AND j.due_at OPERATOR(pg_catalog.<=)"
      "                (pg_catalog.now() OPERATOR(pg_catalog.+) pg_catalog.make_interval(secs => $1))))"
      " ORDER BY j.due_at LIMIT $2 FOR UPDATE OF j SKIP LOCKED",
      {pg::float8_param(pg::guc::deadline_warning_s), pg::int8_param(kNoticesPerCycle)});
  for (const pg::TextRow& row : rows) {
    long long job_id = row.int8(0);
    bool overdue = row.boolean(1);
    pg::spi_execute(overdue ? "UPDATE privacy.jobs SET overdue_notified_at = pg_catalog.now(),"
                              " deadline_warned_at = COALESCE(deadline_warned_at, pg_catalog.now())"
                              " WHERE id OPERATOR(pg_catalog.=) $1"
                            : "UPDATE privacy.jobs SET deadline_warned_at = pg_catalog.now()"
                              " WHERE id OPERATOR(pg_catalog.=) $1",
                    {pg::int8_param(job_id)});
    jobs::Job job = jobs::load(job_id, jobs::Lock::None);
    JobDeadline loaded = load_job_deadline(job);
    loaded.event.notice = overdue ? core::DeadlineNotice::Overdue : core::DeadlineNotice::Warning;
    audit::append(jobs::job_audit_entry(
        job, core::deadline_notice_name(loaded.event.notice),
        core::json_object({{"due_at", loaded.event.due_at}, {"privacy_contact", row[2]}})));
    notify::deadline_notice(loaded.event, row[2]);
  }
}

}  // namespace privacy::deadlines
