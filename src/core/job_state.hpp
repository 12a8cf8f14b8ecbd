// The job state machine: the one place that decides what may happen to a job.
//
// It decides by *action*, not by target status, so that no action can borrow another's way in
// (retry reaching `approved` from `pending` would skip the four-eyes approval):
//
//   approve   pending                 -> approved    only by someone other than the requester
//                                                    (privacy.require_distinct_approver), and
//                                                    never by code run for another role
//   reject    pending                 -> rejected
//   cancel    pending | approved | processing -> cancelled
//   retry     failed | cancelled      -> approved    a cancelled job only if it had been approved
//                                                    (or needed no approval) before
//   start     approved                -> processing
//   complete  processing              -> completed
//   fail      processing              -> failed
//
// completed and rejected are final. There is deliberately no way from processing back to
// approved: a job whose worker crashed stays `processing` and the launcher resumes it from its
// last committed batch. docs/jobs.md shows the same as a diagram.
#pragma once

#include <optional>
#include <string>
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

// What someone (a person through the API, or a runner) does to a job.
enum class JobAction { Approve, Reject, Cancel, Retry, Start, Complete, Fail };

inline constexpr JobAction kAllJobActions[] = {JobAction::Approve,  JobAction::Reject, JobAction::Cancel,
                                               JobAction::Retry,    JobAction::Start,  JobAction::Complete,
                                               JobAction::Fail};

// The SQL labels: "export", "erase", "purge" / "pending", "approved", ... (lowercase), and the
// action names "approve", "reject", "cancel", "retry", "start", "complete", "fail".
std::string_view to_string(JobKind kind);
std::string_view to_string(JobStatus status);
std::string_view to_string(JobAction action);

// Inverse of to_string(); exact, case-sensitive match as PostgreSQL enums are. nullopt otherwise.
std::optional<JobKind> parse_job_kind(std::string_view text);
std::optional<JobStatus> parse_job_status(std::string_view text);

// The status an allowed action leads to.
JobStatus target_status(JobAction action);

// True when the table above lets `action` start from `from` (before the conditions of
// ActionContext are looked at).
bool action_allowed_from(JobAction action, JobStatus from);

// The actions allowed from `from`, in declaration order (empty when final).
std::vector<JobAction> actions_from(JobStatus from);

// completed and rejected are final; failed and cancelled may be retried.
bool is_terminal(JobStatus status);

// What an action may depend on besides the job's status.
struct ActionContext {
  // approve: the name of whoever requested the job, whether the approving session user is that
  // person, and whether the approval comes from code run on behalf of another role (a table
  // owner's trigger inside a job's batch, a materialized view refresh: PostgreSQL's
  // security-restricted operations), whose session user is not the person approving.
  std::string requester;
  bool approver_is_requester = false;
  bool distinct_approver_required = true;  // privacy.require_distinct_approver
  bool inside_restricted_operation = false;
  // retry of a cancelled job: it had been approved, or needed no approval, before the cancel.
  bool was_approved = true;
};

// Decides `action` on job `job_id`, which is `from`, and returns the new status. Throws
//   55000 when the action is not allowed from `from` (the message names the job, its status and
//         the action; the detail lists what is allowed; the hint says what would succeed), or
//         when a cancelled job that never passed approval is retried;
//   42501 when the requester approves their own job and a distinct approver is required, or when
//         the approval comes from inside a security-restricted operation.
JobStatus decide(long long job_id, JobStatus from, JobAction action, const ActionContext& context = {});

// The audit_log action recorded for an action: "approved", "rejected", "cancelled", "retried",
// "started", "completed", "failed" (also the past participle used in messages).
std::string_view audit_action(JobAction action);

}  // namespace privacy::core
