#include "core/job_state.hpp"

#include <string>

#include "core/error.hpp"

namespace privacy::core {

namespace {

constexpr JobKind kAllJobKinds[] = {JobKind::Export, JobKind::Erase, JobKind::Purge};

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
  if (target_status(action) == from) return "the job is already " + std::string(to_string(from)) + "; nothing to do";
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
              "job " + std::to_string(job_id) + " is " + std::string(to_string(from)) + " and cannot be " +
                  std::string(audit_action(action)),
              allowed_detail(from), refusal_hint(from, action));
}

}  // namespace

std::string_view to_string(JobKind kind) {
  switch (kind) {
    case JobKind::Export: return "export";
    case JobKind::Erase: return "erase";
    case JobKind::Purge: return "purge";
  }
  return "unknown";  // unreachable for a valid enum value
}

std::string_view to_string(JobStatus status) {
  switch (status) {
    case JobStatus::Pending: return "pending";
    case JobStatus::Approved: return "approved";
    case JobStatus::Processing: return "processing";
    case JobStatus::Completed: return "completed";
    case JobStatus::Failed: return "failed";
    case JobStatus::Rejected: return "rejected";
    case JobStatus::Cancelled: return "cancelled";
  }
  return "unknown";  // unreachable for a valid enum value
}

std::string_view to_string(JobAction action) {
  switch (action) {
    case JobAction::Approve: return "approve";
    case JobAction::Reject: return "reject";
    case JobAction::Cancel: return "cancel";
    case JobAction::Retry: return "retry";
    case JobAction::Start: return "start";
    case JobAction::Complete: return "complete";
    case JobAction::Fail: return "fail";
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

JobStatus target_status(JobAction action) {
  switch (action) {
    case JobAction::Approve: return JobStatus::Approved;
    case JobAction::Reject: return JobStatus::Rejected;
    case JobAction::Cancel: return JobStatus::Cancelled;
    case JobAction::Retry: return JobStatus::Approved;
    case JobAction::Start: return JobStatus::Processing;
    case JobAction::Complete: return JobStatus::Completed;
    case JobAction::Fail: return JobStatus::Failed;
  }
  return JobStatus::Failed;  // unreachable for a valid enum value
}

// The table of the header, written out action by action so that it reads like the design.
bool action_allowed_from(JobAction action, JobStatus from) {
  switch (action) {
    case JobAction::Approve:
    case JobAction::Reject:
      return from == JobStatus::Pending;
    case JobAction::Cancel:
      return from == JobStatus::Pending || from == JobStatus::Approved || from == JobStatus::Processing;
    case JobAction::Retry:
      return from == JobStatus::Failed || from == JobStatus::Cancelled;
    case JobAction::Start:
      return from == JobStatus::Approved;
    case JobAction::Complete:
    case JobAction::Fail:
      return from == JobStatus::Processing;
  }
  return false;
}

std::vector<JobAction> actions_from(JobStatus from) {
  std::vector<JobAction> allowed;
  for (JobAction action : kAllJobActions)
    if (action_allowed_from(action, from)) allowed.push_back(action);
  return allowed;
}

bool is_terminal(JobStatus status) { return status == JobStatus::Completed || status == JobStatus::Rejected; }

JobStatus decide(long long job_id, JobStatus from, JobAction action, const ActionContext& context) {
  if (!action_allowed_from(action, from)) refuse(job_id, from, action);
  std::string job = "job " + std::to_string(job_id);
  if (action == JobAction::Approve && context.inside_restricted_operation) {
    throw Error(sqlstate::kInsufficientPrivilege,
                job + " cannot be approved by code that runs on behalf of another role",
                "The approval comes from inside a security-restricted operation (a table owner's trigger, "
                "index expression or domain check in a job's batch, a materialized view refresh): "
                "its session user is not the person approving.",
                "Approve in a session of your own: SELECT privacy.approve(" + std::to_string(job_id) + ").");
  }
  if (action == JobAction::Approve && context.distinct_approver_required && context.approver_is_requester) {
    throw Error(sqlstate::kInsufficientPrivilege,
                job + " was requested by " + context.requester + ", who may not approve it",
                "privacy.require_distinct_approver is on: approval needs a second person.",
                "Ask another member of privacy_admin to run privacy.approve(" + std::to_string(job_id) + ").");
  }
  if (action == JobAction::Retry && from == JobStatus::Cancelled && !context.was_approved) {
    throw Error(sqlstate::kObjectNotInPrerequisiteState,
                job + " was cancelled before it was approved and cannot be retried",
                "Retrying it would queue it without the approval it needs.",
                "Submit a new request; it waits for approval like any other.");
  }
  return target_status(action);
}

std::string_view audit_action(JobAction action) {
  switch (action) {
    case JobAction::Approve: return "approved";
    case JobAction::Reject: return "rejected";
    case JobAction::Cancel: return "cancelled";
    case JobAction::Retry: return "retried";
    case JobAction::Start: return "started";
    case JobAction::Complete: return "completed";
    case JobAction::Fail: return "failed";
  }
  return "unknown";  // unreachable for a valid enum value
}

}  // namespace privacy::core
