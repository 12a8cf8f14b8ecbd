// The one job loop (docs/jobs.md, "How a job runs"), shared by the background worker and
// CALL privacy.run_job: it carries a job from its request to its finalization. One batch per
// transaction, progress committed with the batch, cancel between batches (and within throttle
// waits), throttling per tenant, and a clean state whatever happens:
//
//  * Claiming commits on its own: whatever fails afterwards fails the job with its message and an
//    audit row; nothing leaves a job approved with a runner that gave up on it.
//  * Every run counts an attempt and leaves a dead man's message in last_error ("runner stopped
//    unexpectedly (attempt N)") that only a clean end or a recorded error replaces. The launcher
//    resumes a job whose runner died after a growing pause, and a job that has used
//    privacy.max_attempts runs fails (its finalization passes over the table it was stuck on).
//  * Every exception ends in the job's state: core::Error, std::exception and anything else. Only
//    an interruption of this process (SQLSTATE class 57: shutdown, a cancel of the run_job
//    session) is passed on, leaving the job to be resumed.
#include "audit/audit.hpp"
#include "core/backoff.hpp"
#include "core/cost_pacing.hpp"
#include "core/json.hpp"
#include "core/progress.hpp"
#include "jobs/executor.hpp"
#include "jobs/jobs.hpp"
#include "pg/boundary.hpp"
#include "pg/guc.hpp"
#include "pg/spi.hpp"
#include "worker/throttle.hpp"

extern "C" {
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
}

#include <algorithm>

namespace privacy::jobs {

using core::FinalizationState;
using core::JobAction;
using core::JobStatus;

namespace {

double now_seconds() { return static_cast<double>(GetCurrentTimestamp()) / 1e6; }

// A session-level advisory lock proves that a runner is alive: the launcher resumes only jobs
// whose lock nobody holds. It is released at the end of the run or when the runner's process dies.
bool try_lock_runner(long long job_id) {
  pg::SpiConnection spi;
  return pg::spi_query_text(
             "SELECT pg_catalog.pg_try_advisory_lock($1::pg_catalog.int4, $2::pg_catalog.int4)::pg_catalog.text",
             {pg::int8_param(kRunnerLockClass), pg::int8_param(job_id)}) ==
         std::optional<std::string>("true");
}

void unlock_runner(long long job_id) {
  pg::SpiConnection spi;
  pg::spi_execute("SELECT pg_catalog.pg_advisory_unlock($1::pg_catalog.int4, $2::pg_catalog.int4)",
                  {pg::int8_param(kRunnerLockClass), pg::int8_param(job_id)});
}

// Errors that mean "this process is being stopped", not "the job is broken": the job stays as it
// is and is resumed later from its last committed batch.
bool is_interruption(const core::Error& error) { return error.sqlstate().rfind("57", 0) == 0; }

// The exception being handled, whatever it is, as a core::Error (call inside a catch block),
// mapped as at every SQL entry point (src/pg/boundary.hpp).
core::Error current_error() { return pg::current_exception_as_error(); }

// Runs `body` in a transaction of its own, committed synchronously; rolled back if it throws.
template <typename Body>
auto in_transaction(LoopHost& host, Body body) {
  host.start_transaction();
  try {
    if constexpr (std::is_void_v<decltype(body())>) {
      body();
      host.commit(true);
    } else {
      auto result = body();
      host.commit(true);
      return result;
    }
  } catch (...) {
    host.abort();
    throw;
  }
}

// Logs what could not be written to the job itself (the database refused even that).
void log_unrecorded(long long job_id, const char* what, const core::Error& error) {
  pg::pg_guard(
      [&] { elog(LOG, "pg_privacy: could not %s job %lld: %s", what, job_id, error.what()); });
}

// Records what stopped a run, in a transaction of its own (the run's was rolled back).
void record_last_error(long long job_id, const core::Error& error, LoopHost& host) {
  try {
    in_transaction(host, [&] {
      pg::SpiConnection spi;
      pg::spi_execute(
          "UPDATE privacy.jobs SET last_error = $2, updated_at = pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1",
          {pg::int8_param(job_id), pg::text_param(std::string(error.what()))});
    });
  } catch (...) {
    log_unrecorded(job_id, "record the error of", current_error());
  }
}

// Fails the request (approved or processing) in a transaction of its own.
void fail_job(long long job_id, const core::Error& error, LoopHost& host) {
  try {
    in_transaction(host, [&] {
      Job job = load(job_id, Lock::ForUpdate);
      if (job.state.status != JobStatus::Processing && job.state.status != JobStatus::Approved)
        return;
      std::string message = error.what();
      transition(job, {JobAction::Fail, message,
                       core::json_object({{"sqlstate", error.sqlstate()},
                                          {"message", message},
                                          {"detail", error.detail()}})});
    });
  } catch (...) {
    log_unrecorded(job_id, "mark failed", current_error());
  }
}

// What a runner writes into last_error when it starts: the message that stays if it dies
// without a word.
void leave_dead_mans_message(long long job_id, const char* attempts_column,
                             const std::string& what) {
  pg::SpiConnection spi;
  pg::spi_execute(
      std::string("UPDATE privacy.jobs SET last_error = 'runner stopped unexpectedly (") +
          (what.empty() ? "" : what + " ") + "attempt ' OPERATOR(pg_catalog.||) " +
          attempts_column +
          "::pg_catalog.text OPERATOR(pg_catalog.||) ')',"
          " worker_pid = pg_catalog.pg_backend_pid(), heartbeat_at = pg_catalog.now()"
          " WHERE id OPERATOR(pg_catalog.=) $1",
      {pg::int8_param(job_id)});
}

// The tenant's current rate (0 = unlimited) and load-aware pacing (docs/performance.md,
// "Pacing"), read in each batch's transaction so that privacy.configure_tenant and a reload take
// effect on a running job at its next batch.
struct TenantPace {
  int rows_per_second = 0;
  core::CostSettings cost;
};

TenantPace tenant_pace(const TenantPacing& pacing) {
  TenantPace pace;
  pace.cost = core::CostSettings{pg::guc::cost_limit, pg::guc::cost_delay_ms};
  if (pacing.rows_per_second) pace.rows_per_second = *pacing.rows_per_second;
  if (pacing.cost_limit) pace.cost.limit = *pacing.cost_limit;
  if (pacing.cost_delay_ms) pace.cost.delay_ms = *pacing.cost_delay_ms;
  return pace;
}

// The job, locked, and its tenant's pace: the first statement of each batch.
Job load_batch_job(long long job_id, TenantPace& pace) {
  TenantPacing pacing;
  Job job = load_with_pacing(job_id, pacing);
  pace = tenant_pace(pacing);
  return job;
}

// The pace at the start of a run, without the job's row lock (the first batch honours the rate
// too: at 1 row/s it takes one row, not privacy.batch_size).
TenantPace read_tenant_pace(const std::string& tenant_id) {
  return tenant_pace(read_pacing(tenant_id));
}

// SET LOCAL synchronous_commit, without a statement: it is set once or twice in every batch.
void set_commit_mode(bool synchronous) {
  pg::pg_guard([&] {
    (void)set_config_option("synchronous_commit", synchronous ? "on" : "off", PGC_USERSET,
                            PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);
  });
}

// Batch memory: everything a batch allocates in its own context, reset after the batch, so a
// run's memory stays flat however many batches it takes (transaction memory is reset by the
// commit anyway; this covers a procedure's context, which lives across its commits).
class BatchMemory {
 public:
  BatchMemory() {
    context_ = pg::pg_guard([] {
      return AllocSetContextCreate(TopMemoryContext, "pg_privacy batch", ALLOCSET_DEFAULT_SIZES);
    });
  }
  ~BatchMemory() { MemoryContextDelete(context_); }
  void enter() {
    previous_ = MemoryContextSwitchTo(context_);
    inside_ = true;
  }
  // Idempotent: an error path may leave after a normal leave already ran.
  void leave() {
    if (!inside_) return;
    inside_ = false;
    MemoryContextSwitchTo(previous_);
    MemoryContextReset(context_);
  }

 private:
  MemoryContext context_ = nullptr;
  MemoryContext previous_ = nullptr;
  bool inside_ = false;
};

// Runs one batch's transaction in batch memory; `body` returns whether to commit synchronously.
template <typename Body>
auto batch_transaction(LoopHost& host, BatchMemory& memory, Body body) {
  host.start_transaction();
  memory.enter();
  try {
    set_commit_mode(false);
    auto [result, synchronous] = body();
    if (synchronous) set_commit_mode(true);
    memory.leave();
    host.commit(synchronous);
    return result;
  } catch (...) {
    memory.leave();
    host.abort();
    throw;
  }
}

// What the loop carries from one batch to the next: the batch size the tenant's rate allows, the
// rows the throttle charges, the cost balance of load-aware pacing, and what the run has done
// since it started (for the ETA).
struct Pace {
  int rows_per_second = 0;
  int limit = 1;
  long long rows_done = 0;      // in the last batch
  long long rows_this_run = 0;  // in every batch of this run
  double run_started = 0;
  core::CostSettings cost;
  core::CostBalance balance;
  throttle::PageMeter meter;             // pages used since the last charge
  double nap_ms = 0;                     // the nap the last batch's cost asks for
  int batch_size = pg::guc::batch_size;  // before the tenant's rate caps it

  void set(const TenantPace& tenant) {
    rows_per_second = tenant.rows_per_second;
    limit = throttle::batch_size_for(rows_per_second, batch_size);
    cost = tenant.cost;
  }

  // Charges the pages used since the last charge (the batch and its bookkeeping) to the balance;
  // nap_ms is what the next throttle_wait sleeps at least (nothing after the last batch).
  void charge(bool last) {
    nap_ms =
        core::charge(balance, core::page_cost(meter.take(), throttle::server_page_weights()), cost);
    if (last) nap_ms = 0;
  }
};

// Sleeps what the tenant's token bucket or the last batch's cost (the longer) asks before the
// next batch, in slices of at most a second; between slices it looks at the job's cancel flag (a
// short read-only transaction), so a cancel is seen within a second whatever the rate. Returns
// early when a cancel is requested.
void throttle_wait(long long job_id, const std::string& tenant_id, const Pace& pace,
                   bool cancellable, LoopHost& host) {
  double wait = std::max(throttle::reserve_seconds(tenant_id, pace.rows_per_second,
                                                   static_cast<double>(pace.rows_done)),
                         pace.nap_ms / 1000.0);
  double deadline = now_seconds() + wait;
  for (double left = wait; left > 0; left = deadline - now_seconds()) {
    host.sleep(static_cast<long>(std::min(left, 1.0) * 1000.0) + 1);
    if (!cancellable || deadline - now_seconds() <= 0) continue;
    bool cancel = in_transaction(host, [&] {
      pg::SpiConnection spi;
      return pg::spi_query_text(
                 "SELECT cancel_requested::pg_catalog.text FROM privacy.jobs WHERE id OPERATOR(pg_catalog.=) $1",
                 {pg::int8_param(job_id)}) == std::optional<std::string>("true");
    });
    if (cancel) return;
  }
}

// Rows set aside for review (privacy.job_errors) in a batch: one 'items_flagged' audit row.
void audit_flagged_items(const Job& job, long long failed, const std::string& phase) {
  audit::Entry entry = job_audit_entry(
      job, "items_flagged",
      "{\"items\": " + std::to_string(failed) + ", \"phase\": " + core::json_string(phase) + "}");
  entry.outcome = "partial";
  audit::append(entry);
}

// ----- the request ---------------------------------------------------------------------------

enum class Claim { Run, NothingToDo, GaveUp };

// Claims the request for this runner, committed on its own: approved -> processing, or a
// processing job left behind by a dead runner, which resumes from its cursor, unless it has used
// privacy.max_attempts runs: then it fails with the last error.
Claim claim_request(long long job_id, std::optional<core::Error>& gave_up) {
  Job job = load(job_id, Lock::ForUpdate);
  if (job.state.status == JobStatus::Approved) {
    transition(job, {JobAction::Start, std::nullopt, "{}"});
    leave_dead_mans_message(job_id, "attempts", "");
    return Claim::Run;
  }
  if (job.state.status != JobStatus::Processing) return Claim::NothingToDo;
  std::string last = job.last_error.value_or("runner stopped unexpectedly");
  if (job.attempts >= pg::guc::max_attempts) {
    gave_up =
        core::Error("55000",
                    "job " + std::to_string(job_id) + " gave up after " +
                        std::to_string(job.attempts) + " runs; the last one ended with: " + last,
                    "privacy.max_attempts is " + std::to_string(pg::guc::max_attempts) + ".",
                    "Fix the cause, then privacy.retry(" + std::to_string(job_id) + ").");
    transition(job, {JobAction::Fail, std::string(gave_up->what()),
                     core::json_object({{"sqlstate", "55000"},
                                        {"message", gave_up->what()},
                                        {"attempts", std::to_string(job.attempts)}})});
    return Claim::GaveUp;
  }
  pg::SpiConnection spi;
  pg::spi_execute(
      "UPDATE privacy.jobs SET attempts = attempts OPERATOR(pg_catalog.+) 1, updated_at = pg_catalog.now()"
      " WHERE id OPERATOR(pg_catalog.=) $1",
      {pg::int8_param(job_id)});
  leave_dead_mans_message(job_id, "attempts", "");
  audit::append(
      job_audit_entry(job, "resumed",
                      core::json_object({{"processed_items", std::to_string(job.processed_items)},
                                         {"attempt", std::to_string(job.attempts + 1)},
                                         {"previous_run", last}})));
  return Claim::Run;
}

void record_start(long long job_id, const RunStart& start) {
  pg::SpiConnection spi;
  if (start.restart_from_scratch) {
    pg::spi_execute(
        "UPDATE privacy.jobs SET cursor = NULL, processed_items = 0, failed_items = 0"
        " WHERE id OPERATOR(pg_catalog.=) $1",
        {pg::int8_param(job_id)});
  }
  pg::spi_execute(
      "UPDATE privacy.jobs SET total_items = $2, updated_at = pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1",
      {pg::int8_param(job_id), pg::int8_param(start.total_items)});
}

// The nap the batch's cost asks for, counted in the job's row with the batch (it is taken right
// after the commit): SET items adding $naps to cost_naps and $seconds to cost_napped.
#define COUNT_NAP(naps, seconds)                                                                \
  " cost_naps = cost_naps OPERATOR(pg_catalog.+) " naps                                         \
  "::pg_catalog.int8,"                                                                          \
  " cost_napped = cost_napped OPERATOR(pg_catalog.+) pg_catalog.make_interval(secs => " seconds \
  "::pg_catalog.float8)"

// Progress, throughput, ETA and heartbeat, in the batch's own transaction. The rate is what this
// run achieved over wall-clock time, throttle waits included, capped by the tenant's rate.
void record_batch(const Job& job, const BatchStep& step, const Pace& pace) {
  long long done = job.processed_items + step.processed + job.failed_items + step.failed;
  long long remaining = std::max(0LL, job.total_items.value_or(done) - done);
  std::optional<double> rate =
      core::expected_rate(static_cast<double>(pace.rows_this_run), now_seconds() - pace.run_started,
                          pace.rows_per_second);
  std::optional<double> eta = core::eta_seconds(remaining, rate.value_or(0));
  pg::SpiConnection spi;
  pg::spi_execute(
      "UPDATE privacy.jobs SET processed_items = processed_items OPERATOR(pg_catalog.+) $2,"
      " failed_items = failed_items OPERATOR(pg_catalog.+) $3, cursor = $4::pg_catalog.jsonb, throughput = $5,"
      " eta = pg_catalog.make_interval(secs => $6::pg_catalog.float8), heartbeat_at = pg_catalog.now(),"
      " updated_at = pg_catalog.now()," COUNT_NAP("$7", "$8") " WHERE id OPERATOR(pg_catalog.=) $1",
      {pg::int8_param(job.id), pg::int8_param(step.processed), pg::int8_param(step.failed),
       pg::text_param(step.cursor_json),
       rate ? pg::float8_param(*rate) : pg::SqlParam{FLOAT8OID, (Datum)0, true},
       eta ? pg::float8_param(*eta) : pg::SqlParam{FLOAT8OID, (Datum)0, true},
       pg::int8_param(pace.nap_ms > 0 ? 1 : 0), pg::float8_param(pace.nap_ms / 1000.0)});
}

enum class BatchVerdict { Continue, Completed, Cancelled, Stopped };

// One batch of the request in its own transaction. Throws on failure (the caller fails the job).
BatchVerdict run_request_batch(long long job_id, PhaseExecutor& executor, Pace& pace,
                               LoopHost& host, BatchMemory& memory) {
  return batch_transaction(host, memory, [&]() -> std::pair<BatchVerdict, bool> {
    enter_batch_gate(job_id);  // behind a cancel that is waiting (jobs/jobs.hpp)
    throttle::preallocate_wal();
    TenantPace tenant;
    Job job = load_batch_job(job_id, tenant);
    if (job.state.status != JobStatus::Processing) return {BatchVerdict::Stopped, true};
    if (job.cancel_requested) {
      transition(job, {JobAction::Cancel, std::nullopt, "{\"after_batches\": true}"});
      return {BatchVerdict::Cancelled, true};
    }
    pace.set(tenant);
    BatchStep step = executor.run_batch(job, pace.limit);
    pace.rows_done = step.processed + step.failed;
    pace.rows_this_run += pace.rows_done;
    pace.charge(step.done);
    record_batch(job, step, pace);
    if (step.failed > 0)
      audit_flagged_items(job, step.failed, std::string(core::to_string(job.kind)));
    if (!step.done) return {BatchVerdict::Continue, false};
    std::string result = executor.finish(job);
    transition(load(job_id, Lock::ForUpdate), {JobAction::Complete, result, result});
    return {BatchVerdict::Completed, true};
  });
}

// The request of a job: claim, count, batches, completion.
RunOutcome run_request(long long job_id, LoopHost& host) {
  std::optional<core::Error> gave_up;
  Claim claim;
  try {
    claim = in_transaction(host, [&] { return claim_request(job_id, gave_up); });
  } catch (...) {
    core::Error error = current_error();
    if (is_interruption(error)) throw;
    fail_job(job_id, error, host);
    return RunOutcome{RunOutcome::Kind::Failed, error};
  }
  if (claim == Claim::NothingToDo) return RunOutcome{RunOutcome::Kind::NothingToDo, std::nullopt};
  if (claim == Claim::GaveUp) return RunOutcome{RunOutcome::Kind::Failed, gave_up};

  BatchMemory memory;
  std::unique_ptr<PhaseExecutor> executor;
  Pace pace;
  std::string tenant_id;
  try {
    in_transaction(host, [&] {
      Job job = load(job_id, Lock::None);
      tenant_id = job.tenant_id;
      executor = make_executor(job.kind);
      record_start(job_id, executor->begin(job));
      pace.set(read_tenant_pace(job.tenant_id));
    });
    pace.run_started = now_seconds();
    for (;;) {
      BatchVerdict verdict = run_request_batch(job_id, *executor, pace, host, memory);
      if (verdict == BatchVerdict::Cancelled)
        return RunOutcome{RunOutcome::Kind::Cancelled, std::nullopt};
      if (verdict == BatchVerdict::Stopped)
        return RunOutcome{RunOutcome::Kind::NothingToDo, std::nullopt};
      if (verdict == BatchVerdict::Completed)
        return RunOutcome{RunOutcome::Kind::Completed, std::nullopt};
      throttle_wait(job_id, tenant_id, pace, true, host);
    }
  } catch (...) {
    core::Error error = current_error();
    if (is_interruption(error)) {
      if (error.sqlstate() == "57014")
        record_last_error(job_id, error, host);  // a cancel, not a shutdown
      throw;
    }
    fail_job(job_id, error, host);
    return RunOutcome{RunOutcome::Kind::Failed, error};
  }
}

// ----- the finalization ----------------------------------------------------------------------

bool finalization_due(const Job& job) {
  if (!job.is_erase() || !job.state.finalization || !core::is_stopped(job.state.status))
    return false;
  switch (*job.state.finalization) {
    case FinalizationState::AwaitingWindow:
      return job.window_closed;
    case FinalizationState::Finalizing:
    case FinalizationState::Held:
      return true;
    default:
      return false;
  }
}

// Claims the finalization for this runner, committed on its own: the window closed
// (awaiting_window -> finalizing), a hold ended (held -> finalizing), or a finalization whose
// runner died. Returns false when there is nothing to do; sets `exhausted` when the runs so far
// have used privacy.max_attempts (the table they were stuck on is passed over).
bool claim_finalization(long long job_id, bool& exhausted) {
  Job job = load(job_id, Lock::ForUpdate);
  if (!finalization_due(job)) return false;
  FinalizationState state = *job.state.finalization;
  if (state == FinalizationState::AwaitingWindow)
    transition(job, {JobAction::CloseWindow, std::nullopt, "{}"});
  if (state == FinalizationState::Held)
    transition(job, {JobAction::ResumeFinalization, std::nullopt, "{\"hold_ended\": true}"});
  exhausted =
      state == FinalizationState::Finalizing && job.finalization_attempts >= pg::guc::max_attempts;
  pg::SpiConnection spi;
  pg::spi_execute(
      "UPDATE privacy.jobs SET finalization_attempts = CASE WHEN $2 THEN 1 ELSE"
      " finalization_attempts OPERATOR(pg_catalog.+) 1 END, updated_at = pg_catalog.now()"
      " WHERE id OPERATOR(pg_catalog.=) $1",
      {pg::int8_param(job_id), pg::bool_param(exhausted)});
  if (exhausted) return true;  // the dead man's message stays: it says why the table is passed over
  leave_dead_mans_message(job_id, "finalization_attempts", "finalization");
  return true;
}

// Saves the finalization's position and heartbeat with its batch (and the nap after it).
void record_finalization_batch(long long job_id, const BatchStep& step, double nap_ms = 0) {
  pg::SpiConnection spi;
  pg::spi_execute(
      "UPDATE privacy.jobs SET cursor = $2::pg_catalog.jsonb, failed_items = failed_items OPERATOR(pg_catalog.+) $3,"
      " heartbeat_at = pg_catalog.now(), updated_at = pg_catalog.now()," COUNT_NAP(
          "$4", "$5") " WHERE id OPERATOR(pg_catalog.=) $1",
      {pg::int8_param(job_id), pg::text_param(step.cursor_json), pg::int8_param(step.failed),
       pg::int8_param(nap_ms > 0 ? 1 : 0), pg::float8_param(nap_ms / 1000.0)});
}

// The end of a pass: held when tables were skipped for a hold, finalized_with_errors while
// flagged items of the job are open, finalized otherwise.
void end_pass(const Job& job, const BatchStep& step, const std::string& detail) {
  JobAction action = step.held                ? JobAction::HoldFinalization
                     : open_items(job.id) > 0 ? JobAction::FinishWithErrors
                                              : JobAction::FinishFinalization;
  transition(job, {action, std::nullopt, detail});
}

// Passes over the table the finalization was stuck on (after privacy.max_attempts failed runs),
// from the cursor committed last: flagged as a whole in privacy.job_errors, with `why`.
void pass_over_stuck_table(long long job_id, const core::Error& why, LoopHost& host) {
  in_transaction(host, [&] {
    Job job = load(job_id, Lock::ForUpdate);
    std::unique_ptr<PhaseExecutor> fresh = make_finalization_executor();
    fresh->begin(job);
    std::optional<std::string> cursor = fresh->pass_over_current(job, why);
    if (!cursor) return;
    BatchStep step;
    step.cursor_json = *cursor;
    step.failed = 1;
    record_finalization_batch(job_id, step);
    pg::SpiConnection spi;
    pg::spi_execute(
        "UPDATE privacy.jobs SET finalization_attempts = 1 WHERE id OPERATOR(pg_catalog.=) $1",
        {pg::int8_param(job_id)});
    leave_dead_mans_message(job_id, "finalization_attempts", "finalization");
    audit_flagged_items(job, 1, "finalize");
  });
}

// Finalization batches are this many times privacy.batch_size (capped by the tenant's rate like
// every batch): their rows are hidden already, so nobody waits for the row locks a batch holds,
// and the bookkeeping of a batch (the job row, the walk's look-ups, the commit) is paid a tenth as
// often (docs/performance.md, B2).
constexpr int kFinalizeBatchFactor = 10;

// The batches of a finalization pass, to its end. Throws on failure.
RunOutcome finalization_batches(long long job_id, LoopHost& host, BatchMemory& memory) {
  std::unique_ptr<PhaseExecutor> executor = make_finalization_executor();
  Pace pace;
  pace.batch_size = static_cast<int>(std::min<long long>(
      1000000, static_cast<long long>(pg::guc::batch_size) * kFinalizeBatchFactor));
  std::string tenant_id;
  in_transaction(host, [&] {
    Job job = load(job_id, Lock::None);
    tenant_id = job.tenant_id;
    executor->begin(job);
    pace.set(read_tenant_pace(job.tenant_id));
  });
  pace.run_started = now_seconds();
  for (;;) {
    bool ended = batch_transaction(host, memory, [&]() -> std::pair<bool, bool> {
      throttle::preallocate_wal();
      TenantPace tenant;
      Job job = load_batch_job(job_id, tenant);
      if (job.state.finalization != FinalizationState::Finalizing) return {true, true};
      pace.set(tenant);
      BatchStep step = executor->run_batch(job, pace.limit);
      pace.rows_done = step.processed + step.failed;
      pace.charge(step.done);
      record_finalization_batch(job_id, step, pace.nap_ms);
      if (step.failed > 0) audit_flagged_items(job, step.failed, "finalize");
      if (!step.done) return {false, false};
      end_pass(load(job_id, Lock::ForUpdate), step, executor->finish(job));
      return {true, true};
    });
    if (ended) return RunOutcome{RunOutcome::Kind::Finalized, std::nullopt};
    throttle_wait(job_id, tenant_id, pace, false, host);
  }
}

// The finalization of an erase: claim, then batches until the pass ends. A failed run records
// its error and stops (the launcher resumes it after a pause); once privacy.max_attempts runs
// have failed, the table it was stuck on is passed over and the pass goes on.
RunOutcome run_finalization(long long job_id, LoopHost& host) {
  bool exhausted = false;
  bool claimed;
  try {
    claimed = in_transaction(host, [&] { return claim_finalization(job_id, exhausted); });
  } catch (...) {
    core::Error error = current_error();
    if (is_interruption(error)) throw;
    record_last_error(job_id, error, host);
    return RunOutcome{RunOutcome::Kind::Stopped, error};
  }
  if (!claimed) return RunOutcome{RunOutcome::Kind::NothingToDo, std::nullopt};
  BatchMemory memory;
  std::optional<core::Error> stuck;
  if (exhausted) {
    Job job = in_transaction(host, [&] { return load(job_id, Lock::None); });
    stuck = core::Error(core::sqlstate::kObjectNotInPrerequisiteState,
                        job.last_error.value_or("runner stopped unexpectedly"));
  }
  for (;;) {
    try {
      if (stuck) pass_over_stuck_table(job_id, *stuck, host);
      stuck.reset();
      return finalization_batches(job_id, host, memory);
    } catch (...) {
      core::Error error = current_error();
      if (is_interruption(error)) {
        if (error.sqlstate() == "57014") record_last_error(job_id, error, host);
        throw;
      }
      record_last_error(job_id, error, host);
      Job job = in_transaction(host, [&] { return load(job_id, Lock::None); });
      if (job.finalization_attempts < pg::guc::max_attempts)
        return RunOutcome{RunOutcome::Kind::Stopped, error};
      stuck = error;
    }
  }
}

// ----- the run -------------------------------------------------------------------------------

// Runs `body` holding the job's runner lock; Busy when another runner holds it.
template <typename Body>
RunOutcome with_runner_lock(long long job_id, LoopHost& host, Body body) {
  bool locked = in_transaction(host, [&] { return try_lock_runner(job_id); });
  if (!locked) return RunOutcome{RunOutcome::Kind::Busy, std::nullopt};
  RunOutcome outcome;
  try {
    outcome = body();
  } catch (...) {
    in_transaction(host, [&] { unlock_runner(job_id); });
    throw;
  }
  in_transaction(host, [&] { unlock_runner(job_id); });
  return outcome;
}

RunOutcome run_locked(long long job_id, LoopHost& host) {
  Job job;
  try {
    job = in_transaction(host, [&] { return load(job_id, Lock::None); });
  } catch (...) {
    core::Error error = current_error();
    if (is_interruption(error)) throw;
    return RunOutcome{RunOutcome::Kind::NothingToDo, error};
  }
  if (job.state.status == JobStatus::Approved || job.state.status == JobStatus::Processing) {
    RunOutcome request = run_request(job_id, host);
    if (request.kind != RunOutcome::Kind::Completed || !job.is_erase()) return request;
    // An erase whose window is zero is finalized in the same run.
    Job done = in_transaction(host, [&] { return load(job_id, Lock::None); });
    if (!finalization_due(done)) return request;
    RunOutcome finalization = run_finalization(job_id, host);
    return finalization.kind == RunOutcome::Kind::Stopped ? finalization : request;
  }
  if (finalization_due(job)) return run_finalization(job_id, host);
  return RunOutcome{RunOutcome::Kind::NothingToDo, std::nullopt};
}

}  // namespace

std::unique_ptr<PhaseExecutor> make_executor(core::JobKind kind) {
  switch (kind) {  // no default: the compiler names a kind without an executor
    case core::JobKind::Erase:
      return make_erase_executor();
    case core::JobKind::Restrict:
      return make_restrict_executor();
    case core::JobKind::Purge:
      return make_purge_executor();
    case core::JobKind::Export:
      return make_export_executor();
  }
  throw core::Error(core::sqlstate::kInternalError,
                    "no executor for job kind " + std::to_string(static_cast<int>(kind)));
}

void LoopHost::sleep(long milliseconds) {
  pg::pg_guard([&] {
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, milliseconds,
                    PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
  });
}

RunOutcome run(long long job_id, LoopHost& host) {
  throttle::lower_worker_priority();
  return with_runner_lock(job_id, host, [&] { return run_locked(job_id, host); });
}

}  // namespace privacy::jobs
