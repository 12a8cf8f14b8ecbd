// The job state machine: the one place that decides what may happen to a job, from the request
// to the finalization of an erasure (docs/jobs.md, "Lifecycle").
//
// A job has a status, the outcome of the request, and (erase jobs that reached processing only)
// a finalization state, what happens to the rows the erase marked. It decides by *action*, not by
// target state, so that no action can borrow another's way in (retry reaching `approved` from
// `pending` would skip the four-eyes approval):
//
//   approve   pending                 -> approved    only by someone other than the requester
//                                                    (privacy.require_distinct_approver), and
//                                                    never by code run for another role
//   reject    pending                 -> rejected
//   cancel    pending | approved | processing -> cancelled
//   retry     failed | cancelled      -> approved    a cancelled job only if it had been approved
//                                                    (or needed no approval) before; an erase only
//                                                    while its finalization has not begun
//   start     approved                -> processing
//   complete  processing              -> completed
//   fail      approved | processing   -> failed      (approved: it could not even start)
//
// An erase that stops (complete, cancel or fail) after it reached processing has marked rows:
// its finalization becomes awaiting_window. retry sets it back to none. Then:
//
//   close_window         awaiting_window              -> finalizing   once the window has closed
//   hold_finalization    finalizing                   -> held         the pass skipped held tables
//   finish_finalization  finalizing                   -> finalized
//   finish_with_errors   finalizing                   -> finalized_with_errors
//   resume_finalization  held | finalized_with_errors -> finalizing   a hold ended / a table
//                                                                     handed back by retry_items
//   clear_items          finalized_with_errors        -> finalized    the last flagged item was
//                                                                     resolved or retried
//
// completed and rejected are final statuses. There is deliberately no way from processing back
// to approved: a job whose worker crashed stays `processing` and the launcher resumes it from its
// last committed batch.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace privacy::core {

// The SQL enum privacy.job_kind, in its declaration order.
enum class JobKind { Export, Erase, Purge, Restrict };

// The SQL enum privacy.job_status, in its declaration order.
enum class JobStatus { Pending, Approved, Processing, Completed, Failed, Rejected, Cancelled };

// The SQL enum privacy.finalization_state, in its declaration order.
enum class FinalizationState { AwaitingWindow, Finalizing, Held, Finalized, FinalizedWithErrors };

// Every status, in declaration order (handy for loops and tests).
inline constexpr JobStatus kAllJobStatuses[] = {
    JobStatus::Pending, JobStatus::Approved, JobStatus::Processing, JobStatus::Completed,
    JobStatus::Failed,  JobStatus::Rejected, JobStatus::Cancelled};

inline constexpr FinalizationState kAllFinalizationStates[] = {
    FinalizationState::AwaitingWindow, FinalizationState::Finalizing, FinalizationState::Held,
    FinalizationState::Finalized, FinalizationState::FinalizedWithErrors};

// What someone (a person through the API, or a runner) does to a job. The first seven change
// the status, the others the finalization.
enum class JobAction {
  Approve,
  Reject,
  Cancel,
  Retry,
  Start,
  Complete,
  Fail,
  CloseWindow,
  HoldFinalization,
  FinishFinalization,
  FinishWithErrors,
  ResumeFinalization,
  ClearItems
};

inline constexpr JobAction kStatusActions[] = {
    JobAction::Approve, JobAction::Reject,   JobAction::Cancel, JobAction::Retry,
    JobAction::Start,   JobAction::Complete, JobAction::Fail};
inline constexpr JobAction kFinalizationActions[] = {
    JobAction::CloseWindow,      JobAction::HoldFinalization,   JobAction::FinishFinalization,
    JobAction::FinishWithErrors, JobAction::ResumeFinalization, JobAction::ClearItems};

// Where a job stands: its status and, for an erase that marked rows, its finalization.
struct JobState {
  JobStatus status;
  std::optional<FinalizationState> finalization;
  bool operator==(const JobState& other) const {
    return status == other.status && finalization == other.finalization;
  }
  bool operator!=(const JobState& other) const { return !(*this == other); }
};

// The SQL labels: "export", "erase", "purge" / "pending", "approved", ... / "awaiting_window",
// ... (lowercase), and the action names "approve", ..., "close_window", ..., "clear_items".
std::string_view to_string(JobKind kind);
std::string_view to_string(JobStatus status);
std::string_view to_string(FinalizationState state);
std::string_view to_string(JobAction action);

// Inverse of to_string(); exact, case-sensitive match as PostgreSQL enums are. nullopt otherwise.
std::optional<JobKind> parse_job_kind(std::string_view text);
std::optional<JobStatus> parse_job_status(std::string_view text);
std::optional<FinalizationState> parse_finalization_state(std::string_view text);

bool is_finalization_action(JobAction action);

// The status a status action leads to (a finalization action leaves the status as it is).
JobStatus target_status(JobAction action);

// True when the table above lets a status action start from `from` (before the conditions of
// ActionContext are looked at). False for finalization actions.
bool action_allowed_from(JobAction action, JobStatus from);

// True when the table lets a finalization action start from `from`. False for status actions.
bool action_allowed_from(JobAction action, FinalizationState from);

// The status actions allowed from `from`, in declaration order (empty when final).
std::vector<JobAction> actions_from(JobStatus from);

// completed and rejected are final; failed and cancelled may be retried.
bool is_terminal(JobStatus status);

// A stopped erase (completed, cancelled or failed) whose rows may still be finalized or restored.
bool is_stopped(JobStatus status);

// What an action may depend on besides the job's state.
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
  // cancel, complete, fail: an erase that reached processing (in this run or an earlier one)
  // has marked rows, so its finalization begins: awaiting_window.
  JobKind kind = JobKind::Export;
  bool reached_processing = false;
  // close_window: the job's recoverable_until has passed.
  bool window_closed = false;
};

// Decides `action` on job `job_id`, which is in state `from`, and returns the new state. Throws
//   55000 when the action is not allowed from `from` (the message names the job, its state and
//         the action; the detail lists what is allowed; the hint says what would succeed), when
//         a cancelled job that never passed approval is retried, when an erase whose
//         finalization has begun is retried, or when the window of an erase is closed early;
//   42501 when the requester approves their own job and a distinct approver is required, or when
//         the approval comes from inside a security-restricted operation.
JobState decide(long long job_id, const JobState& from, JobAction action,
                const ActionContext& context = {});

// The same for a job without finalization (status actions only): the new status.
JobStatus decide(long long job_id, JobStatus from, JobAction action,
                 const ActionContext& context = {});

// The audit_log action recorded for an action: "approved", "rejected", "cancelled", "retried",
// "started", "completed", "failed" (also the past participle used in messages), and
// "finalization_started", "finalization_held", "finalized", "finalized_with_errors",
// "finalization_resumed", "finalized" (clear_items: the job is now finalized).
std::string_view audit_action(JobAction action);

}  // namespace privacy::core
