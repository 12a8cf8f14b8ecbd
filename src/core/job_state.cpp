#include "core/job_state.hpp"

#include <string>

#include "core/error.hpp"

namespace privacy::core {

namespace {

constexpr JobKind kAllJobKinds[] = {JobKind::Export, JobKind::Erase, JobKind::Purge};

// "a", "a or b", "a, b or c": the English list used in error details.
std::string join_with_or(const std::vector<JobStatus>& statuses) {
  std::string out;
  for (size_t i = 0; i < statuses.size(); ++i) {
    if (i > 0) out += (i + 1 == statuses.size()) ? " or " : ", ";
    out += to_string(statuses[i]);
  }
  return out;
}

// The detail of a refused transition: everything that *is* allowed from the current status, so
// the reader sees the whole rule and not only the one they broke.
std::string allowed_detail(JobStatus from) {
  std::string name(to_string(from));
  std::vector<JobStatus> allowed = allowed_from(from);
  if (allowed.empty()) return "from " + name + " nothing is allowed: it is final";
  return "from " + name + " a job may become " + join_with_or(allowed);
}

// The hint of a refused transition: what the caller can do instead. It depends mostly on where
// the job is now; the wording names SQL functions of DESIGN.md section 4.
std::string refusal_hint(JobStatus from, JobStatus to) {
  if (is_terminal(from)) return "a finished job never changes; submit a new request";
  if (from == to) return "the job is already " + std::string(to_string(to)) + "; nothing to do";
  switch (from) {
    case JobStatus::Pending:
      return "approve it first with privacy.approve(), or reject or cancel it";
    case JobStatus::Approved:
      return "the job is queued and a background worker will start it; "
             "use privacy.cancel() to stop it";
    case JobStatus::Processing:
      return "the job is already running; use privacy.cancel() to stop it after the current batch";
    case JobStatus::Failed:
      return "retry it with privacy.retry(), which queues it again";
    default:
      return {};  // terminal statuses were handled above
  }
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

// The transition table of DESIGN.md section 3, written out case by case so that it reads like
// the design text.
bool transition_allowed(JobStatus from, JobStatus to) {
  switch (from) {
    case JobStatus::Pending:
      return to == JobStatus::Approved || to == JobStatus::Rejected || to == JobStatus::Cancelled;
    case JobStatus::Approved:
      return to == JobStatus::Processing || to == JobStatus::Cancelled;
    case JobStatus::Processing:
      return to == JobStatus::Completed || to == JobStatus::Failed || to == JobStatus::Cancelled;
    case JobStatus::Failed:
      return to == JobStatus::Approved;
    case JobStatus::Completed:
    case JobStatus::Rejected:
    case JobStatus::Cancelled:
      return false;
  }
  return false;
}

std::vector<JobStatus> allowed_from(JobStatus from) {
  std::vector<JobStatus> allowed;
  for (JobStatus to : kAllJobStatuses)
    if (transition_allowed(from, to)) allowed.push_back(to);
  return allowed;
}

bool is_terminal(JobStatus status) {
  return status == JobStatus::Completed || status == JobStatus::Rejected ||
         status == JobStatus::Cancelled;
}

void check_transition(long long job_id, JobStatus from, JobStatus to) {
  if (transition_allowed(from, to)) return;
  std::string message = "job " + std::to_string(job_id) + " is " + std::string(to_string(from)) +
                        " and cannot become " + std::string(to_string(to));
  throw Error(sqlstate::kObjectNotInPrerequisiteState, message, allowed_detail(from),
              refusal_hint(from, to));
}

std::string_view audit_action_for(JobStatus from, JobStatus to) {
  if (!transition_allowed(from, to)) {
    throw Error(sqlstate::kInternalError,
                "no audit action for the refused transition " + std::string(to_string(from)) +
                    " -> " + std::string(to_string(to)),
                allowed_detail(from), "call check_transition() before auditing a transition");
  }
  switch (to) {
    case JobStatus::Approved: return from == JobStatus::Failed ? "retried" : "approved";
    case JobStatus::Rejected: return "rejected";
    case JobStatus::Cancelled: return "cancelled";
    case JobStatus::Processing: return "started";
    case JobStatus::Completed: return "completed";
    case JobStatus::Failed: return "failed";
    case JobStatus::Pending: break;  // nothing transitions to pending
  }
  return "unknown";  // unreachable: transition_allowed() never allows -> pending
}

}  // namespace privacy::core
