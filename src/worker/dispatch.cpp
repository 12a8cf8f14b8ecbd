// Job workers (docs/jobs.md, "How a job runs"): the launcher's dispatch step picks waiting jobs
// fairly across tenants and starts one dynamic background worker per job, up to
// privacy.max_workers; each worker runs the one job loop (jobs::run) and exits.
//
// Work the dispatcher starts:
//   * approved jobs, oldest queued first within each tenant;
//   * processing jobs whose runner is gone (crash, kill, restart): resumed from their cursor, but
//     only after a pause that doubles with every attempt (core::retry_delay_seconds), so that a
//     job that kills its runner cannot keep a worker slot busy (privacy.max_attempts ends it);
//   * erasures whose recovery window has closed (finalization awaiting_window);
//   * finalizations whose runner is gone, after the same pause;
//   * held finalizations, only once some table they have left is no longer held.
#include "core/backoff.hpp"
#include "core/fair_scheduler.hpp"
#include "jobs/jobs.hpp"
#include "worker/launcher.hpp"
#include "worker/dispatch.hpp"
#include "pg/boundary.hpp"
#include "pg/bgworker.hpp"
#include "pg/guc.hpp"
#include "pg/security_context.hpp"
#include "pg/shmem.hpp"
#include "pg/spi.hpp"
#include "data/walk.hpp"

extern "C" {
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

#include <cstring>
#include <map>
#include <optional>
#include <set>

namespace privacy::worker {

namespace {

constexpr const char* kModeRun = "run";
constexpr const char* kModeFinalize = "finalize";

// Transactions of a background worker: plain StartTransactionCommand/CommitTransactionCommand.
// The worker connects as the bootstrap superuser, with whatever settings its database gives it
// (ALTER DATABASE ... SET search_path): each transaction pins the search_path before anything
// runs (docs/security.md).
class WorkerHost final : public jobs::LoopHost {
 public:
  void start_transaction() override {
    pg::pg_guard([] {
      SetCurrentStatementStartTimestamp();
      StartTransactionCommand();
      PushActiveSnapshot(GetTransactionSnapshot());
    });
    try {
      pinned_.emplace();
    } catch (...) {
      pg::pg_guard([] { AbortCurrentTransaction(); });
      throw;
    }
  }
  void commit(bool) override {
    pinned_.reset();
    pg::pg_guard([] {
      PopActiveSnapshot();
      CommitTransactionCommand();
    });
  }
  void abort() override {
    if (pinned_) pinned_->discard_on_exit();
    pinned_.reset();
    pg::pg_guard([] { AbortCurrentTransaction(); });
  }

 private:
  std::optional<pg::PinnedSearchPath> pinned_;
};

// The worker slot of this process, claimed at start and freed at exit.
int my_slot = -1;

void release_slot(int, Datum) {
  pg::SharedState* state = pg::shared_state();
  if (state == nullptr || my_slot < 0) return;
  LWLockAcquire(state->lock, LW_EXCLUSIVE);
  if (state->workers[my_slot].pid == MyProcPid)
    std::memset(&state->workers[my_slot], 0, sizeof(pg::WorkerSlot));
  LWLockRelease(state->lock);
}

void claim_slot(int slot, long long job_id, const char* mode) {
  pg::SharedState* state = pg::shared_state();
  LWLockAcquire(state->lock, LW_EXCLUSIVE);
  state->workers[slot].pid = MyProcPid;
  state->workers[slot].job_id = job_id;
  std::strncpy(state->workers[slot].state, mode, pg::kStateBytes - 1);
  state->workers[slot].since = GetCurrentTimestamp();
  LWLockRelease(state->lock);
  my_slot = slot;
}

struct Candidate {
  long long job_id;
  std::string tenant_id;
  double queued_at_s;
  const char* mode;
};

// Jobs running now (from the worker slots), by id, and per tenant.
struct Running {
  std::set<long long> job_ids;
  std::map<std::string, int> per_tenant;
  std::vector<int> free_slots;
};

Running read_running() {
  Running running;
  pg::SharedState* state = pg::shared_state();
  LWLockAcquire(state->lock, LW_SHARED);
  for (int i = 0; i < state->worker_count; ++i) {
    const pg::WorkerSlot& slot = state->workers[i];
    if (slot.pid == 0) {
      running.free_slots.push_back(i);
      continue;
    }
    running.job_ids.insert(slot.job_id);
    running.per_tenant[slot.tenant_id] += 1;
  }
  LWLockRelease(state->lock);
  return running;
}

// Pause before a job whose runner died is resumed: 1 s, 2 s, 4 s, ... at most a minute.
constexpr double kRetryBaseSeconds = 1;
constexpr double kRetryCapSeconds = 60;

// A job's runner holds its advisory lock (jobs::kRunnerLockClass) while it lives.
std::string runner_alive(const std::string& job) {
  return "EXISTS (SELECT FROM pg_catalog.pg_locks l WHERE l.locktype OPERATOR(pg_catalog.=) 'advisory'"
         " AND l.classid OPERATOR(pg_catalog.=) " +
         std::to_string(jobs::kRunnerLockClass) +
         "::pg_catalog.oid AND l.objid OPERATOR(pg_catalog.=) " + job +
         ".id::pg_catalog.oid AND l.objsubid OPERATOR(pg_catalog.=) 2"
         " AND l.database OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_database"
         "                    WHERE datname OPERATOR(pg_catalog.=) pg_catalog.current_database()))";
}

// Jobs with work for a runner: (id, tenant, queued since, mode, seconds since the last
// heartbeat of a dead runner, attempts so far, held).
std::vector<Candidate> read_candidates() {
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "SELECT j.id::pg_catalog.text, j.tenant_id,"
      "       EXTRACT(epoch FROM CASE WHEN j.finalization IS NULL THEN COALESCE(j.queued_at, j.requested_at)"
      "                               ELSE j.recoverable_until END)::pg_catalog.text,"
      "       CASE WHEN j.finalization IS NULL THEN 'run' ELSE 'finalize' END,"
      "       EXTRACT(epoch FROM pg_catalog.now() OPERATOR(pg_catalog.-) j.heartbeat_at)::pg_catalog.text,"
      "       CASE WHEN j.finalization IS NULL THEN j.attempts ELSE j.finalization_attempts END::pg_catalog.text,"
      "       (j.status OPERATOR(pg_catalog.=) 'processing'::privacy.job_status"
      "        OR j.finalization IS NOT DISTINCT FROM 'finalizing'::privacy.finalization_state)::pg_catalog.text,"
      "       (j.finalization IS NOT DISTINCT FROM 'held'::privacy.finalization_state)::pg_catalog.text"
      "  FROM privacy.jobs j"
      " WHERE (j.status OPERATOR(pg_catalog.=) 'approved'::privacy.job_status"
      "        OR j.finalization OPERATOR(pg_catalog.=) 'awaiting_window'::privacy.finalization_state"
      "           AND j.recoverable_until OPERATOR(pg_catalog.<=) pg_catalog.now()"
      "        OR (j.status OPERATOR(pg_catalog.=) 'processing'::privacy.job_status"
      "            OR j.finalization OPERATOR(pg_catalog.=) ANY ('{finalizing,held}'::privacy.finalization_state[]))"
      "           AND NOT " +
      runner_alive("j") +
      ")"
      " ORDER BY 3 LIMIT 1000");
  std::vector<Candidate> candidates;
  for (const pg::TextRow& row : rows) {
    bool orphan = row.boolean(6);
    if (orphan && row[4]) {
      double pause = core::retry_delay_seconds(row.int4(5), kRetryBaseSeconds, kRetryCapSeconds);
      double since_heartbeat = row.float8(4);
      if (since_heartbeat < pause) {
        launcher::wake_within(pause - since_heartbeat);  // not after privacy.naptime
        continue;
      }
    }
    long long job_id = row.int8(0);
    if (row.boolean(7) && !walk::finalization_can_resume(jobs::load(job_id, jobs::Lock::None)))
      continue;
    candidates.push_back(Candidate{job_id, *row[1], row.float8(2),
                                   *row[3] == "finalize" ? kModeFinalize : kModeRun});
  }
  return candidates;
}

std::map<std::string, int> read_tenant_limits() {
  std::map<std::string, int> limits;
  for (const pg::TextRow& row :
       pg::spi_query_rows("SELECT tenant_id, max_concurrent_jobs FROM privacy.tenants"
                          " WHERE max_concurrent_jobs IS NOT NULL")) {
    limits[*row[0]] = row.int4(1);
  }
  return limits;
}

bool start_worker(const Candidate& candidate, int slot) {
  BackgroundWorker worker =
      pg::describe_background_worker("privacy_worker_main", "pg_privacy worker", BGW_NEVER_RESTART);
  snprintf(worker.bgw_name, BGW_MAXLEN, "pg_privacy worker for job %lld", candidate.job_id);
  snprintf(worker.bgw_extra, BGW_EXTRALEN, "%s %d", candidate.mode, slot);
  worker.bgw_main_arg = Int64GetDatum(candidate.job_id);
  worker.bgw_notify_pid = MyProcPid;

  // Reserve the slot before the worker runs so the next cycle does not start the job twice.
  pg::SharedState* state = pg::shared_state();
  LWLockAcquire(state->lock, LW_EXCLUSIVE);
  state->workers[slot].pid = -1;  // starting
  state->workers[slot].job_id = candidate.job_id;
  std::strncpy(state->workers[slot].tenant_id, candidate.tenant_id.c_str(), pg::kTenantIdBytes - 1);
  std::strncpy(state->workers[slot].state, "starting", pg::kStateBytes - 1);
  state->workers[slot].since = GetCurrentTimestamp();
  LWLockRelease(state->lock);

  BackgroundWorkerHandle* handle = nullptr;
  bool registered = pg::pg_guard([&] { return RegisterDynamicBackgroundWorker(&worker, &handle); });
  if (!registered) {
    LWLockAcquire(state->lock, LW_EXCLUSIVE);
    std::memset(&state->workers[slot], 0, sizeof(pg::WorkerSlot));
    LWLockRelease(state->lock);
    pg::pg_guard([] {
      ereport(LOG,
              (errmsg("pg_privacy: could not start a job worker: no background worker slot free"),
               errhint("Raise max_worker_processes (it must exceed privacy.max_workers + 1).")));
    });
    return false;
  }
  pid_t pid = 0;
  BgwHandleStatus status =
      pg::pg_guard([&] { return WaitForBackgroundWorkerStartup(handle, &pid); });
  if (status != BGWH_STARTED) {
    LWLockAcquire(state->lock, LW_EXCLUSIVE);
    if (state->workers[slot].pid == -1)
      std::memset(&state->workers[slot], 0, sizeof(pg::WorkerSlot));
    LWLockRelease(state->lock);
    return false;
  }
  return true;
}

// Frees slots reserved for workers that never came up (pid -1 for too long).
void reclaim_stale_slots() {
  pg::SharedState* state = pg::shared_state();
  TimestampTz now = GetCurrentTimestamp();
  LWLockAcquire(state->lock, LW_EXCLUSIVE);
  for (int i = 0; i < state->worker_count; ++i) {
    pg::WorkerSlot& slot = state->workers[i];
    if (slot.pid == -1 && TimestampDifferenceExceeds(slot.since, now, 60000))
      std::memset(&slot, 0, sizeof(slot));
  }
  LWLockRelease(state->lock);
}

}  // namespace

// The launcher's step "dispatching jobs".
void dispatch_jobs() {
  if (pg::shared_state() == nullptr) return;
  reclaim_stale_slots();
  Running running = read_running();
  if (running.free_slots.empty()) return;
  std::vector<Candidate> candidates = read_candidates();
  std::map<std::string, int> limits = read_tenant_limits();

  std::vector<core::WaitingJob> waiting;
  std::map<long long, Candidate> by_id;
  for (const Candidate& candidate : candidates) {
    if (running.job_ids.count(candidate.job_id) || by_id.count(candidate.job_id)) continue;
    waiting.push_back(
        core::WaitingJob{candidate.job_id, candidate.tenant_id, candidate.queued_at_s});
    by_id.emplace(candidate.job_id, candidate);
  }
  std::map<std::string, core::TenantLoad> load;
  for (const auto& [tenant, limit] : limits) load[tenant] = core::TenantLoad{0, limit};
  for (const auto& [tenant, count] : running.per_tenant) load[tenant].running = count;

  std::vector<long long> chosen =
      core::pick_jobs_to_start(waiting, load, static_cast<int>(running.free_slots.size()));
  size_t next_slot = 0;
  for (long long job_id : chosen) {
    if (next_slot >= running.free_slots.size()) break;
    if (!start_worker(by_id.at(job_id), running.free_slots[next_slot])) break;
    ++next_slot;
  }
}

}  // namespace privacy::worker

// Entry point of a job worker. bgw_main_arg is the job id; bgw_extra is "<mode> <slot>".
extern "C" PGDLLEXPORT void privacy_worker_main(Datum main_arg) {
  long long job_id = DatumGetInt64(main_arg);
  char mode[16] = {0};
  int slot = -1;
  sscanf(MyBgworkerEntry->bgw_extra, "%15s %d", mode, &slot);

  pqsignal(SIGTERM, die);
  BackgroundWorkerUnblockSignals();
  before_shmem_exit(privacy::worker::release_slot, 0);
  if (slot >= 0 && privacy::pg::shared_state() != nullptr)
    privacy::worker::claim_slot(slot, job_id, mode);
  BackgroundWorkerInitializeConnection(privacy::pg::guc::database, nullptr, 0);
  char application_name[64];
  snprintf(application_name, sizeof(application_name), "pg_privacy worker job %lld", job_id);
  SetConfigOption("application_name", application_name, PGC_USERSET, PGC_S_SESSION);
  pgstat_report_activity(STATE_RUNNING, application_name);

  // The job loop ends every failure in the job's state (failed, or a finalization to resume);
  // what reaches here is an interruption of this process (or a runner lock that could not even
  // be taken), after which the launcher resumes the job from its last committed batch.
  privacy::worker::WorkerHost host;
  std::string who = "pg_privacy worker for job " + std::to_string(job_id);
  bool ran = privacy::pg::background_guard(who.c_str(), [&] {
    privacy::jobs::RunOutcome outcome = privacy::jobs::run(job_id, host);
    if (outcome.error) {
      elog(LOG, "%s: %s", who.c_str(), outcome.error->what());
    }
  });
  if (!ran) proc_exit(1);
  proc_exit(0);
}
