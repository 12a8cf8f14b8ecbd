// What a job status change tells people: the event itself, whether it deserves an e-mail, and
// the e-mail's subject and text (docs/notifications.md).
//
// Pure C++ (no PostgreSQL): unit-tested in test/unit/job_mail_test.cpp. src/notify/events.cpp sends
// the event and queues the mail; this file only decides and words it.
#pragma once

#include <optional>
#include <string>

namespace privacy::core {

// One status change of one job, as the job workflow reports it (notify::job_status_changed).
// Times are text as PostgreSQL prints timestamptz; result_json is the job's result jsonb.
struct JobEvent {
  long long job_id = 0;
  std::string kind;  // export, erase, purge
  std::string tenant_id;
  std::string target_type;  // subject, tenant
  std::string target_id;
  std::optional<std::string> old_status;  // nullopt: the job was just created
  std::string new_status;
  long long processed_items = 0;
  long long failed_items = 0;
  std::optional<long long> total_items;
  std::optional<std::string> notify_email;
  std::optional<std::string> reason_or_error;    // rejection reason or failure message
  std::optional<std::string> recoverable_until;  // erasures: until when rows can be restored
  std::optional<std::string> result_json;
};

// The e-mail rules:
//  * completed: when total_items >= notify_min_items (a small job is not worth a mail);
//  * failed:    always (someone has to act);
//  * rejected:  always (the requester learns the reason);
//  * anything else (pending, approved, processing, cancelled): never.
// And only when the request named a notify_email.
bool should_email(const JobEvent& event, long long notify_min_items);

struct MailText {
  std::string subject;  // one line
  std::string body;     // '\n' line ends
};

// The subject and text of the e-mail for an event. It names the job, tenant and target, the
// outcome and counts, what to review, how to continue (restore window, download command), and
// nothing else: no row of a data subject ever appears in a notification.
MailText job_mail_text(const JobEvent& event);

// Deadline notices (docs/notifications.md, "Deadlines"): a job's due date is near (warning) or
// has passed (overdue), both to the tenant's privacy contact; or its deadline was extended, to
// the request's notify_email (GDPR Art. 12(3) and CCPA 1798.130(a)(2) want the requester told,
// with the reason).
enum class DeadlineNotice { Warning, Overdue, Extended };

struct DeadlineEvent {
  DeadlineNotice notice = DeadlineNotice::Warning;
  long long job_id = 0;
  std::string kind;
  std::string tenant_id;
  std::string target_type;
  std::string target_id;
  std::string regulation;  // gdpr, ccpa, other
  std::string status;
  std::string requested_at;                    // as shown to people, e.g. "2024-01-31 10:00:00 UTC"
  std::string due_at;                          // the due date now (after the extension)
  std::optional<std::string> previous_due_at;  // Extended: before the extension
  std::optional<std::string> reason;           // Extended: why
};

// The SQL name of a notice: "deadline_warning", "deadline_overdue", "deadline_extended" (the
// audit action and the "event" of the privacy_deadlines payload).
std::string deadline_notice_name(DeadlineNotice notice);

MailText deadline_mail_text(const DeadlineEvent& event);

}  // namespace privacy::core
