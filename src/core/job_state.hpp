// The job state machine: the one place that decides which status changes a job may make.
//
// Every SQL function and worker that changes privacy.jobs.status asks check_transition() first,
// so the rules of DESIGN.md section 3 live here and nowhere else:
//
//   pending    -> approved | rejected | cancelled
//   approved   -> processing | cancelled
//   processing -> completed | failed | cancelled
//   failed     -> approved            (retry)
//   completed, rejected, cancelled    are final.
//
// There is deliberately no processing -> approved: a job whose worker crashed stays `processing`
// and the launcher resumes it from its last committed batch.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace privacy::core {

// The SQL enum privacy.job_kind, in its declaration order.
enum class JobKind { Export, Erase, Purge };

// The SQL enum privacy.job_status, in its declaration order.
enum class JobStatus { Pending, Approved, Processing, Completed, Failed, Rejected, Cancelled };

// Every status, in declaration order (handy for loops and tests).
inline constexpr JobStatus kAllJobStatuses[] = {
    JobStatus::Pending,   JobStatus::Approved, JobStatus::Processing, JobStatus::Completed,
    JobStatus::Failed,    JobStatus::Rejected, JobStatus::Cancelled};

// The SQL labels: "export", "erase", "purge" / "pending", "approved", ... (lowercase).
std::string_view to_string(JobKind kind);
std::string_view to_string(JobStatus status);

// Inverse of to_string(); exact, case-sensitive match as PostgreSQL enums are. nullopt otherwise.
std::optional<JobKind> parse_job_kind(std::string_view text);
std::optional<JobStatus> parse_job_status(std::string_view text);

// True when the table above allows from -> to. A status never "transitions" to itself.
bool transition_allowed(JobStatus from, JobStatus to);

// The statuses reachable from `from` in one step, in declaration order (empty when final).
std::vector<JobStatus> allowed_from(JobStatus from);

// completed, rejected and cancelled are final; failed is not (it may be retried).
bool is_terminal(JobStatus status);

// Throws Error(SQLSTATE 55000) unless from -> to is allowed. The message names the job and both
// statuses, the detail lists what is allowed from `from`, the hint says what would succeed.
void check_transition(long long job_id, JobStatus from, JobStatus to);

// The audit_log action recorded for an allowed transition: "approved" (pending -> approved),
// "retried" (failed -> approved), "rejected", "cancelled", "started" (-> processing),
// "completed", "failed". Throws Error(SQLSTATE XX000) for a refused transition: asking for it is
// a bug in the caller, which must call check_transition() first.
std::string_view audit_action_for(JobStatus from, JobStatus to);

}  // namespace privacy::core
