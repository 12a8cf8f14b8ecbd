// Deadlines of requests (docs/compliance.md, "Deadlines"): when a new request is due, extending
// a deadline, and the launcher step that sends the notices. The rules themselves (calendar
// months, CCPA days, how far an extension may go) are src/core/deadline.hpp; this file applies
// them in the tenant's time zone, records, audits and notifies.
#pragma once

#include "core/deadline.hpp"
#include "jobs/jobs.hpp"

#include <optional>
#include <string>

namespace privacy::deadlines {

// The regulation a new request of `tenant_id` is answered under (`requested`, else the
// tenant's) and when it is due, received now: due_at as timestamptz text for the INSERT.
struct NewDeadline {
  std::string regulation;
  std::string due_at;
};
NewDeadline for_new_request(const std::string& tenant_id,
                            const std::optional<std::string>& requested);

// privacy.extend_deadline: moves the job's due_at by `by` as far as its regulation allows
// (core::extended_due_date, which throws 22023 / 55000 otherwise), counts the extension, lets the
// notices go out again for the new due date, audits 'deadline_extended' with the reason, and
// tells the requester (privacy_deadlines event, e-mail to notify_email). The job must be locked.
void extend(const jobs::Job& job, const core::Period& by, const std::string& reason);

// The launcher's step "deadline notices": sends the warning and overdue notices that are due.
// Needs SPI.
void send_deadline_notices();

}  // namespace privacy::deadlines
