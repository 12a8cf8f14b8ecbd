#include "core/job_state.hpp"

#include <string>

#include "core/error.hpp"

namespace privacy::core {

namespace {

constexpr JobKind kAllJobKinds[] = {JobKind::Export, JobKind::Erase, JobKind::Purge,
                                    JobKind::Restrict};

// "a", "a or b", "a, b or c": the English list used in error details.
std::string join_with_or(const std::vector<std::string>& words) {
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i > 0) out += (i + 1 == words.size()) ? " or " : ", ";
    out += words[i];
  }
  return out;
}

// The detail of a refused action: everything that *is* allowed from the current status, so
// the reader sees the whole rule and not only the one they broke.
std::string allowed_detail(JobStatus from) {
  std::string name(to_string(from));
  std::vector<std::string> allowed;
  for (JobAction action : actions_from(from)) allowed.emplace_back(audit_action(action));
  if (allowed.empty()) return "from " + name + " nothing is allowed: it is final";
  return "from " + name + " a job may be " + join_with_or(allowed);
}

// The hint of a refused action: what the caller can do instead. It depends mostly on where
// the job is now; the wording names the SQL functions of docs/jobs.md.
std::string refusal_hint(JobStatus from, JobAction action) {
  if (is_terminal(from)) return "a finished job never changes; submit a new request";
  if (target_status(action) == from)
    return "the job is already " + std::string(to_string(from)) + "; nothing to do";
  switch (from) {
    case JobStatus::Pending:
      if (action == JobAction::Retry) {
        return "a pending job waits for approval: someone other than the requester runs privacy.approve()";
      }
      return "approve it first with privacy.approve(), or reject or cancel it";
    case JobStatus::Approved:
      return "the job is queued and a background worker will start it; "
             "use privacy.cancel() to stop it";
    case JobStatus::Processing:
      return "the job is already running; use privacy.cancel() to stop it after the current batch";
    case JobStatus::Failed:
      return "retry it with privacy.retry(), which queues it again";
    case JobStatus::Cancelled:
      return "a cancelled job can only be queued again with privacy.retry(); otherwise submit a new request";
    default:
      return {};  // terminal statuses were handled above
  }
}

[[noreturn]] void refuse(long long job_id, JobStatus from, JobAction action) {
  throw Error(sqlstate::kObjectNotInPrerequisiteState,
              "job " + std::to_string(job_id) + " is " + std::string(to_string(from)) +
                  " and cannot be " + std::string(audit_action(action)),
              allowed_detail(from), refusal_hint(from, action));
}

// What a finalization action does, in words: "job 4's finalization is held and cannot be <verb>".
std::string finalization_verb(JobAction action) {
  switch (action) {
    case JobAction::CloseWindow:
      return "started";
    case JobAction::HoldFinalization:
      return "held";
    case JobAction::FinishFinalization:
    case JobAction::FinishWithErrors:
      return "finished";
    case JobAction::ResumeFinalization:
      return "resumed";
    case JobAction::ClearItems:
      return "cleared of flagged items";
    default:
      return std::string(audit_action(action));
  }
}

[[noreturn]] void refuse_finalization(long long job_id, const JobState& from, JobAction action) {
  std::string job = "job " + std::to_string(job_id);
  std::string state = from.finalization ? std::string(to_string(*from.finalization)) : "not begun";
  std::string hint =
      !from.finalization
          ? "only an erase that marked rows and then stopped (completed, cancelled or failed) is finalized"
      : *from.finalization == FinalizationState::Finalized
          ? "its rows are finalized; nothing is left to do"
          : "see docs/jobs.md, \"Lifecycle\", for the finalization states";
  throw Error(
      sqlstate::kObjectNotInPrerequisiteState,
      "the finalization of " + job + " is " + state + " and cannot be " + finalization_verb(action),
      job + " is " + std::string(to_string(from.status)) + ".", hint);
}

// The finalization state a finalization action leads to.
FinalizationState target_finalization(JobAction action) {
  switch (action) {
    case JobAction::CloseWindow:
    case JobAction::ResumeFinalization:
      return FinalizationState::Finalizing;
    case JobAction::HoldFinalization:
      return FinalizationState::Held;
    case JobAction::FinishWithErrors:
      return FinalizationState::FinalizedWithErrors;
    default:
      return FinalizationState::Finalized;
  }
}

// The finalization after a status action: an erase that marked rows and stops awaits its window;
// a retry begins again without one; anything else keeps what it had.
std::optional<FinalizationState> finalization_after(const JobState& from, JobAction action,
                                                    const ActionContext& context) {
  bool stops =
      action == JobAction::Cancel || action == JobAction::Complete || action == JobAction::Fail;
  bool marked_rows = context.kind == JobKind::Erase &&
                     (context.reached_processing || from.status == JobStatus::Processing);
  if (stops && marked_rows) return FinalizationState::AwaitingWindow;
  if (action == JobAction::Retry) return std::nullopt;
  return from.finalization;
}

}  // namespace

std::string_view to_string(JobKind kind) {
  switch (kind) {
    case JobKind::Export:
      return "export";
    case JobKind::Erase:
      return "erase";
    case JobKind::Purge:
      return "purge";
    case JobKind::Restrict:
      return "restrict";
  }
  return "unknown";  // unreachable for a valid enum value
}

std::string_view to_string(JobStatus status) {
  switch (status) {
    case JobStatus::Pending:
      return "pending";
    case JobStatus::Approved:
      return "approved";
    case JobStatus::Processing:
      return "processing";
    case JobStatus::Completed:
      return "completed";
    case JobStatus::Failed:
      return "failed";
    case JobStatus::Rejected:
      return "rejected";
    case JobStatus::Cancelled:
      return "cancelled";
  }
  return "unknown";  // unreachable for a valid enum value
}

std::string_view to_string(FinalizationState state) {
  switch (state) {
    case FinalizationState::AwaitingWindow:
      return "awaiting_window";
    case FinalizationState::Finalizing:
      return "finalizing";
    case FinalizationState::Held:
      return "held";
    case FinalizationState::Finalized:
      return "finalized";
    case FinalizationState::FinalizedWithErrors:
      return "finalized_with_errors";
  }
  return "unknown";  // unreachable for a valid enum value
}

std::string_view to_string(JobAction action) {
  switch (action) {
    case JobAction::Approve:
      return "approve";
    case JobAction::Reject:
      return "reject";
    case JobAction::Cancel:
      return "cancel";
    case JobAction::Retry:
      return "retry";
    case JobAction::Start:
      return "start";
    case JobAction::Complete:
      return "complete";
    case JobAction::Fail:
      return "fail";
    case JobAction::CloseWindow:
      return "close_window";
    case JobAction::HoldFinalization:
      return "hold_finalization";
    case JobAction::FinishFinalization:
      return "finish_finalization";
    case JobAction::FinishWithErrors:
      return "finish_with_errors";
    case JobAction::ResumeFinalization:
      return "resume_finalization";
    case JobAction::ClearItems:
      return "clear_items";
  }
  return "unknown";  // unreachable for a valid enum value
}

std::optional<JobKind> parse_job_kind(std::string_view text) {
  for (JobKind kind : kAllJobKinds)
    if (to_string(kind) == text) return kind;
  return std::nullopt;
}

std::optional<JobStatus> parse_job_status(std::string_view text) {
  for (JobStatus status : kAllJobStatuses)
    if (to_string(status) == text) return status;
  return std::nullopt;
}

std::optional<FinalizationState> parse_finalization_state(std::string_view text) {
  for (FinalizationState state : kAllFinalizationStates)
    if (to_string(state) == text) return state;
  return std::nullopt;
}

bool is_finalization_action(JobAction action) {
  for (JobAction finalization : kFinalizationActions)
    if (finalization == action) return true;
  return false;
}

JobStatus target_status(JobAction action) {
  switch (action) {
    case JobAction::Approve:
      return JobStatus::Approved;
    case JobAction::Reject:
      return JobStatus::Rejected;
    case JobAction::Cancel:
      return JobStatus::Cancelled;
    case JobAction::Retry:
      return JobStatus::Approved;
    case JobAction::Start:
      return JobStatus::Processing;
    case JobAction::Complete:
      return JobStatus::Completed;
    case JobAction::Fail:
      return JobStatus::Failed;
    default:
      return JobStatus::Completed;  // finalization actions keep the status (see decide)
  }
}

// The tables of the header, written out action by action so that they read like the design.
bool action_allowed_from(JobAction action, JobStatus from) {
  switch (action) {
    case JobAction::Approve:
    case JobAction::Reject:
      return from == JobStatus::Pending;
    case JobAction::Cancel:
      return from == JobStatus::Pending || from == JobStatus::Approved ||
             from == JobStatus::Processing;
    case JobAction::Retry:
      return from == JobStatus::Failed || from == JobStatus::Cancelled;
    case JobAction::Start:
      return from == JobStatus::Approved;
    case JobAction::Complete:
      return from == JobStatus::Processing;
    case JobAction::Fail:
      return from == JobStatus::Approved || from == JobStatus::Processing;
    default:
      return false;
  }
}

bool action_allowed_from(JobAction action, FinalizationState from) {
  switch (action) {
    case JobAction::CloseWindow:
      return from == FinalizationState::AwaitingWindow;
    case JobAction::HoldFinalization:
    case JobAction::FinishFinalization:
    case JobAction::FinishWithErrors:
      return from == FinalizationState::Finalizing;
    case JobAction::ResumeFinalization:
      return from == FinalizationState::Held || from == FinalizationState::FinalizedWithErrors;
    case JobAction::ClearItems:
      return from == FinalizationState::FinalizedWithErrors;
    default:
      return false;
  }
}

std::vector<JobAction> actions_from(JobStatus from) {
  std::vector<JobAction> allowed;
  for (JobAction action : kStatusActions)
    if (action_allowed_from(action, from)) allowed.push_back(action);
  return allowed;
}

bool is_terminal(JobStatus status) {
  return status == JobStatus::Completed || status == JobStatus::Rejected;
}

bool is_stopped(JobStatus status) {
  return status == JobStatus::Completed || status == JobStatus::Cancelled ||
         status == JobStatus::Failed;
}

namespace {

JobState decide_finalization(long long job_id, const JobState& from, JobAction action,
                             const ActionContext& context) {
  if (!from.finalization || !is_stopped(from.status) ||
      !action_allowed_from(action, *from.finalization)) {
    refuse_finalization(job_id, from, action);
  }
  if (action == JobAction::CloseWindow && !context.window_closed) {
    throw Error(sqlstate::kObjectNotInPrerequisiteState,
                "the recovery window of job " + std::to_string(job_id) + " has not closed yet",
                "Its rows stay hidden and restorable until privacy.jobs.recoverable_until.",
                "Wait until then; privacy.restore brings rows back meanwhile.");
  }
  return JobState{from.status, target_finalization(action)};
}

}  // namespace

JobState decide(long long job_id, const JobState& from, JobAction action,
                const ActionContext& context) {
  if (is_finalization_action(action)) return decide_finalization(job_id, from, action, context);
  if (!action_allowed_from(action, from.status)) refuse(job_id, from.status, action);
  std::string job = "job " + std::to_string(job_id);
  if (action == JobAction::Approve && context.inside_restricted_operation) {
    throw Error(
        sqlstate::kInsufficientPrivilege,
        job + " cannot be approved by code that runs on behalf of another role",
        "The approval comes from inside a security-restricted operation (a table owner's trigger, "
        "index expression or domain check in a job's batch, a materialized view refresh): "
        "its session user is not the person approving.",
        "Approve in a session of your own: SELECT privacy.approve(" + std::to_string(job_id) +
            ").");
  }
  if (action == JobAction::Approve && context.distinct_approver_required &&
      context.approver_is_requester) {
    throw Error(sqlstate::kInsufficientPrivilege,
                job + " was requested by " + context.requester + ", who may not approve it",
                "privacy.require_distinct_approver is on: approval needs a second person.",
                "Ask another member of privacy_admin to run privacy.approve(" +
                    std::to_string(job_id) + ").");
  }
  if (action == JobAction::Retry && from.status == JobStatus::Cancelled && !context.was_approved) {
    throw Error(sqlstate::kObjectNotInPrerequisiteState,
                job + " was cancelled before it was approved and cannot be retried",
                "Retrying it would queue it without the approval it needs.",
                "Submit a new request; it waits for approval like any other.");
  }
  if (action == JobAction::Retry && from.finalization &&
      *from.finalization != FinalizationState::AwaitingWindow) {
    throw Error(
        sqlstate::kObjectNotInPrerequisiteState,
        job + " is " + std::string(to_string(from.status)) +
            " and cannot be retried: its finalization has begun (" +
            std::string(to_string(*from.finalization)) + ")",
        "Its recovery window closed, so the rows it marked are being deleted or anonymized for good.",
        "Submit a new request for what is left.");
  }
  return JobState{target_status(action), finalization_after(from, action, context)};
}

JobStatus decide(long long job_id, JobStatus from, JobAction action, const ActionContext& context) {
  return decide(job_id, JobState{from, std::nullopt}, action, context).status;
}

std::string_view audit_action(JobAction action) {
  switch (action) {
    case JobAction::Approve:
      return "approved";
    case JobAction::Reject:
      return "rejected";
    case JobAction::Cancel:
      return "cancelled";
    case JobAction::Retry:
      return "retried";
    case JobAction::Start:
      return "started";
    case JobAction::Complete:
      return "completed";
    case JobAction::Fail:
      return "failed";
    case JobAction::CloseWindow:
      return "finalization_started";
    case JobAction::HoldFinalization:
      return "finalization_held";
    case JobAction::FinishFinalization:
      return "finalized";
    case JobAction::FinishWithErrors:
      return "finalized_with_errors";
    case JobAction::ResumeFinalization:
      return "finalization_resumed";
    case JobAction::ClearItems:
      return "finalized";
  }
  return "unknown";  // unreachable for a valid enum value
}

}  // namespace privacy::core
