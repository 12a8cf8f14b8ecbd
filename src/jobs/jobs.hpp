// Jobs: the one job model (docs/jobs.md). One reader of privacy.jobs (load), one place that
// changes a job's status or finalization (transition), and the runner that carries a job from
// its request to its finalization (run, jobs/job_loop.cpp).
//
// Every change goes through transition(): it asks the state machine in src/core (core::decide)
// whether the action is allowed, updates the row, writes the audit row and the notification, and
// arranges for the launcher to be woken at commit when there is new work.
#pragma once

#include "audit/audit.hpp"
#include "core/error.hpp"
#include "core/job_state.hpp"

#include <optional>
#include <string>

namespace privacy::jobs {

// Every runner of a job (worker or run_job session) holds the session advisory lock
// (kRunnerLockClass, job id) while it runs; the launcher resumes only jobs whose lock nobody
// holds (pg_locks: classid = kRunnerLockClass, objid = job id, objsubid = 2).
inline constexpr int kRunnerLockClass = 0x70726976;  // "priv"

// The decision gate of a running job: each request batch transaction takes (kDecisionGateClass, job
// id) in shared mode before it locks the job row, privacy.cancel in exclusive mode. Row locks are
// not granted in order (a batch that commits is followed by the next batch, which locks the job row
// again before a cancel that waited on it wakes up), so without the gate a cancel could wait out
// the whole job; heavyweight locks are queued in order, so the next batch waits behind the
// cancel. Both are released at the end of their transaction.
inline constexpr int kDecisionGateClass = 0x70726977;
void enter_batch_gate(long long job_id);
void enter_decision_gate(long long job_id);

// A job as the whole workflow sees it: every column of privacy.jobs that a request, a runner, a
// batch or the finalization needs, read once by load() and passed along. Nothing else reads
// the job's row.
struct Job {
  long long id = 0;
  core::JobKind kind = core::JobKind::Export;
  core::JobState state{core::JobStatus::Pending, std::nullopt};
  std::string target_type;  // "subject" or "tenant"
  std::string target_id;
  std::string tenant_id;
  std::optional<std::string> subject;  // the subject id; nullopt for a tenant purge
  std::string requested_by;
  std::optional<std::string> notify_email;
  std::optional<std::string>
      cursor_json;  // the walk's position (data/walk.hpp), committed per batch
  long long processed_items = 0;
  long long failed_items = 0;
  std::optional<long long> total_items;
  bool cancel_requested = false;
  bool was_approved = false;        // approved by someone, or submitted without needing approval
  bool reached_processing = false;  // started_at is set: an erase may have marked rows
  int attempts = 0;                 // runs of the request
  int finalization_attempts = 0;    // runs of the finalization
  std::optional<std::string> recoverable_until;  // as PostgreSQL prints it
  bool window_closed = false;                    // recoverable_until <= now()
  std::optional<std::string> last_error;
  std::optional<std::string> requested_on_behalf_of;  // the human behind requested_by, if named

  // "subject:42" / "tenant:acme", as audit rows name the target.
  std::string target() const { return target_type + ":" + target_id; }
  bool is_erase() const { return kind == core::JobKind::Erase; }
};

enum class Lock { None, ForUpdate };

// Reads a job; with Lock::ForUpdate, takes its row lock. Throws 22023 if there is none.
Job load(long long job_id, Lock lock);

// The pacing settings of a job's tenant as privacy._tenant_settings gives them (NULL: none).
struct TenantPacing {
  std::optional<int> rows_per_second;
  std::optional<int> cost_limit;
  std::optional<double> cost_delay_ms;
};

// load(job_id, Lock::ForUpdate) and the tenant's pacing, in one statement: the first of every
// batch of the job loop, which reads the tenant's current settings with its job so that
// privacy.configure_tenant takes effect at the next batch (docs/performance.md, B1).
Job load_with_pacing(long long job_id, TenantPacing& pacing);

// The same pacing settings without a job (and without its row lock): the start of a run.
TenantPacing read_pacing(const std::string& tenant_id);

// load() for an API function acting on a job for its caller: also throws 42501 (naming `what`)
// unless the session user's tenant scope allows `capability` on the job's tenant (nullopt: any
// capability; docs/security.md, "Tenant scopes").
Job load_for_caller(long long job_id, Lock lock, const std::optional<std::string>& capability,
                    const std::string& what);

// One action on a job and the few values it records.
struct Transition {
  core::JobAction action;
  std::optional<std::string> note;  // decision note, rejection/cancel reason, result or error text
  std::string audit_detail_json = "{}";
  // The human behind the session user (on_behalf_of): recorded as decided_on_behalf_of by an
  // approval or rejection, in the audit row, and compared with the requester's by four-eyes.
  std::optional<std::string> on_behalf_of;
};

// Carries out an action on a job: asks the state machine (which also enforces four-eyes
// approval: the approving session user differs from the requester while
// privacy.require_distinct_approver is on, and no approval comes from code running for another
// role), sets the status or finalization and the timestamps and fields that go with it, audits,
// notifies, and wakes the launcher at commit when it has work to do. Returns the new state.
core::JobState transition(const Job& job, const Transition& change);

// An audit entry about a job: its tenant's chain, the job id, "<target_type>:<target_id>".
audit::Entry job_audit_entry(const Job& job, const std::string& action,
                             const std::string& detail_json = "{}");

// Open (unresolved) flagged items of a job in privacy.job_errors.
long long open_items(long long job_id);

// How a run of a job talks to its process: transactions and sleeping differ between the
// background worker and CALL privacy.run_job.
class LoopHost {
 public:
  virtual ~LoopHost() = default;
  virtual void start_transaction() = 0;
  virtual void commit(bool synchronous) = 0;
  virtual void abort() = 0;
  // Sleeps up to `milliseconds`, returning early on latch; honours interrupts (SIGTERM, cancel).
  // The same for every host (jobs/job_loop.cpp): the process's latch.
  void sleep(long milliseconds);
};

// How a run ended.
struct RunOutcome {
  enum class Kind {
    Completed,  // the request is done (and, for an erase with a closed window, finalized)
    Cancelled,
    Failed,       // the job failed: error says why (committed in privacy.jobs first)
    Finalized,    // a finalization pass ended: finalized, finalized_with_errors or held
    Stopped,      // a finalization run stopped on an error and will be retried (error says why)
    NothingToDo,  // not runnable now: pending, waiting for its window, final, ...
    Busy,         // another runner holds the job
  };
  Kind kind;
  std::optional<core::Error> error;
};

// Runs whatever the job needs now, to the end, in this process, committing after each batch:
// its request (approved, or processing with a dead runner), then or else its finalization (the
// window closed, a hold ended, a table handed back). Used by the background worker and
// CALL privacy.run_job; `host` supplies what differs between them. Never throws for a job-level
// failure (the job is failed or its finalization retried later); throws only when this process
// is interrupted (SIGTERM, a cancel of the run_job session: SQLSTATE class 57).
RunOutcome run(long long job_id, LoopHost& host);

}  // namespace privacy::jobs
