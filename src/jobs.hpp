// Jobs: reading a job, changing its status (the only place that does), and running it.
//
// Every status change goes through change_status(): it asks the state machine in src/core
// (core::decide) whether the action is allowed, updates the row, writes the audit row and the
// notification, and arranges for the launcher to be woken at commit when there is new work.
#pragma once

#include "audit.hpp"
#include "core/job_state.hpp"
#include "job_executor.hpp"

#include <optional>
#include <string>

namespace privacy::jobs {

// Every runner of a job (worker or run_job session) holds the session advisory lock
// (kRunnerLockClass, job id) while it runs; the launcher resumes only processing jobs whose lock
// nobody holds (pg_locks: classid = kRunnerLockClass, objid = job id, objsubid = 2).
inline constexpr int kRunnerLockClass = 0x70726976;  // "priv"

// The columns of privacy.jobs the workflow needs.
struct JobRecord {
  long long id;
  core::JobKind kind;
  core::JobStatus status;
  std::string target_type;
  std::string target_id;
  std::string tenant_id;
  std::string requested_by;
  std::optional<std::string> notify_email;
  std::optional<std::string> cursor_json;
  long long processed_items;
  long long failed_items;
  std::optional<long long> total_items;
  std::optional<double> throughput;
  bool cancel_requested;
  bool was_approved;  // approved by someone, or submitted without needing approval
};

// Reads a job; with lock, takes its row lock (FOR UPDATE). Throws 22023 if there is none.
JobRecord load_job(long long job_id, bool lock);

// One action on a job and the few values it records.
struct StatusChange {
  core::JobAction action;
  std::optional<std::string> note;   // decision note, rejection/cancel reason, result or error text
  std::string audit_detail_json = "{}";
};

// Carries out an action on a job: asks the state machine (which also enforces four-eyes
// approval: the approving session user differs from the requester while
// privacy.require_distinct_approver is on, and no approval comes from code running for another
// role), sets the status and the timestamps and fields that go with it, audits, notifies, and
// wakes the launcher at commit when it has work to do.
void change_status(const JobRecord& job, const StatusChange& change);

// An audit entry about a job: its tenant's chain, the job id, "<target_type>:<target_id>".
audit::Entry job_audit_entry(const JobRecord& job, const std::string& action,
                             const std::string& detail_json = "{}");

// The subject/tenant a job acts on, as the batch layer wants it.
JobInfo job_info(const JobRecord& job);

// Arranges for the launcher's latch to be set when the current transaction commits.
void wake_launcher_at_commit();

// Runs a job's batch loop to the end in this process, committing after each batch. Used by the
// background worker and CALL privacy.run_job; `host` supplies what differs between them.
class LoopHost {
 public:
  virtual ~LoopHost() = default;
  virtual void start_transaction() = 0;
  virtual void commit(bool synchronous) = 0;
  virtual void abort() = 0;
  // Sleeps up to `milliseconds`, returning early on latch; honours interrupts (SIGTERM, cancel).
  virtual void sleep(long milliseconds) = 0;
};

enum class LoopOutcome { Completed, Failed, Cancelled, NotRunnable };

LoopOutcome run_job_loop(long long job_id, LoopHost& host);

// Finalizes a completed erase job whose recovery window has closed, batch by batch, until done
// or a legal hold stops it.
LoopOutcome run_finalization_loop(long long job_id, LoopHost& host);

}  // namespace privacy::jobs
