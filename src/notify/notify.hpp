// Notifications (src/notify/: events.cpp, mailer.cpp; docs/notifications.md): the public API.
//
// The job workflow calls job_status_changed() from the one place where a job's status changes,
// inside the transaction that changes it. It
//   (a) sends pg_notify('privacy_events', <json>), which PostgreSQL delivers to listeners when
//       that transaction commits (and never if it rolls back), and
//   (b) queues an e-mail in privacy.notifications when core::should_email() says so.
// Nothing here talks to the network: the launcher's "mailer" step (notify/mailer.cpp) delivers the
// queued mail later, so a slow or dead mail server never blocks or fails a job.
#pragma once

#include "core/job_mail.hpp"

#include <optional>
#include <string>

namespace privacy::notify {

// The event: job_id, kind, tenant_id, target_type, target_id, old_status, new_status,
// processed_items, failed_items, total_items, notify_email, reason_or_error, recoverable_until,
// result_json (see core/job_mail.hpp).
using JobEvent = core::JobEvent;

// Sends the event and queues the e-mail, in the caller's transaction (opens its own SPI
// connection if needed). An unusable notify_email does not fail the caller: the mail is
// skipped and the skip audited ('notification_failed'). Database errors are thrown as usual.
void job_status_changed(const JobEvent& event);

// A deadline notice (src/compliance/deadlines.cpp): sends pg_notify('privacy_deadlines', <json>)
// with the job's id, kind, tenant, regulation, status and due_at and "event" (deadline_warning,
// deadline_overdue, deadline_extended), and queues core::deadline_mail_text() to `mail_to` (the
// tenant's privacy contact, or the request's notify_email for an extension) when given. In the
// caller's transaction; an unusable address is skipped and audited as for status mail.
void deadline_notice(const core::DeadlineEvent& event, const std::optional<std::string>& mail_to);

// Convenience: the event for job `job_id` as its privacy.jobs row stands now (reason_or_error is
// decision_note for a rejection, error otherwise), with the given old and new status.
// recoverable_until is written as "2030-01-02 03:04:05 UTC" whatever the session's DateStyle.
JobEvent load_job_event(long long job_id, const std::optional<std::string>& old_status,
                        const std::string& new_status);

// The JSON text sent on the privacy_events channel for an event (documented payload).
std::string event_payload(const JobEvent& event);

// For privacy.worker_status(): the mailer's state ("disabled" or "ready") and a one-line detail
// with the outbox counts. Runs SQL; call inside a transaction.
struct MailerStatus {
  std::string state;
  std::string detail;
};
MailerStatus mailer_status();

// The launcher's step "mailer": delivers the queued mail (notify/mailer.cpp). Needs SPI.
void send_due_mail();

}  // namespace privacy::notify
