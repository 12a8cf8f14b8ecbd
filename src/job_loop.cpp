// The one batch loop (DESIGN section 6), shared by the background worker and
// CALL privacy.run_job: one batch per transaction, progress committed with the batch, cancel
// and hold checks between batches, throttling per tenant, and a clean status at the end.
#include "audit.hpp"
#include "core/json.hpp"
#include "core/progress.hpp"
#include "finalize.hpp"
#include "holds.hpp"
#include "jobs.hpp"
#include "pg/guc.hpp"
#include "pg/spi.hpp"
#include "throttle.hpp"

extern "C" {
#include "utils/guc.h"
#include "utils/timestamp.h"
}

namespace privacy::jobs {

using core::JobStatus;

namespace {

double now_seconds() { return static_cast<double>(GetCurrentTimestamp()) / 1e6; }

// A session-level advisory lock proves that a runner is alive: the launcher resumes only
// processing jobs whose lock nobody holds. It is released at the end of the run or when the
// runner's process dies.
bool try_lock_runner(long long job_id) {
  pg::SpiConnection spi;
  return pg::spi_query_text("SELECT pg_catalog.pg_try_advisory_lock($1::pg_catalog.int4, $2::pg_catalog.int4)::pg_catalog.text",
                            {pg::int8_param(kRunnerLockClass), pg::int8_param(job_id)}) == std::optional<std::string>("true");
}

void unlock_runner(long long job_id) {
  pg::SpiConnection spi;
  pg::spi_execute("SELECT pg_catalog.pg_advisory_unlock($1::pg_catalog.int4, $2::pg_catalog.int4)",
                  {pg::int8_param(kRunnerLockClass), pg::int8_param(job_id)});
}

// Errors that mean "this process is being stopped", not "the job is broken": the job stays
// processing and is resumed later from its last committed batch.
bool is_interruption(const core::Error& error) { return error.sqlstate().rfind("57", 0) == 0; }

// Marks a job failed in a transaction of its own (the batch's was rolled back).
void fail_job(long long job_id, const core::Error& error, LoopHost& host) {
  host.start_transaction();
  try {
    JobRecord job = load_job(job_id, true);
    if (job.status == JobStatus::Processing) {
      std::string message = error.what();
      change_status(job, {core::JobAction::Fail, message,
                          core::json_object({{"sqlstate", error.sqlstate()}, {"message", message},
                                             {"detail", error.detail()}})});
    }
    host.commit(true);
  } catch (const core::Error& nested) {
    host.abort();
    pg::pg_guard([&] { elog(LOG, "pg_privacy: could not mark job %lld failed: %s", job_id, nested.what()); });
  }
}

// The tenant's current rate (0 = unlimited), read in each batch's transaction so that
// privacy.configure_tenant takes effect on a running job at its next batch.
int read_rows_per_second(const std::string& tenant_id) {
  pg::SpiConnection spi;
  std::optional<long long> rate =
      pg::spi_query_int8("SELECT rows_per_second FROM privacy.tenant_settings($1::pg_catalog.text)", {pg::text_param(tenant_id)});
  return static_cast<int>(rate.value_or(0));
}

// Claims the job for this runner: approved -> processing, or a processing job left behind by a
// dead runner, which resumes from its cursor. Returns false when there is nothing to run.
bool claim_job(long long job_id) {
  JobRecord job = load_job(job_id, true);
  if (job.status == JobStatus::Approved) {
    change_status(job, {core::JobAction::Start, std::nullopt, "{}"});
    return true;
  }
  if (job.status != JobStatus::Processing) return false;
  pg::SpiConnection spi;
  pg::spi_execute("UPDATE privacy.jobs SET worker_pid = pg_catalog.pg_backend_pid(), heartbeat_at = pg_catalog.now(),"
                  " attempts = attempts OPERATOR(pg_catalog.+) 1, updated_at = pg_catalog.now()"
                  " WHERE id OPERATOR(pg_catalog.=) $1",
                  {pg::int8_param(job_id)});
  audit::append(job_audit_entry(job, "resumed", "{\"processed_items\": " + std::to_string(job.processed_items) + "}"));
  return true;
}

void record_start(long long job_id, const RunStart& start) {
  pg::SpiConnection spi;
  if (start.restart_from_scratch) {
    pg::spi_execute("UPDATE privacy.jobs SET cursor = NULL, processed_items = 0, failed_items = 0"
                    " WHERE id OPERATOR(pg_catalog.=) $1",
                    {pg::int8_param(job_id)});
  }
  pg::spi_execute("UPDATE privacy.jobs SET total_items = $2, updated_at = pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1",
                  {pg::int8_param(job_id), pg::int8_param(start.total_items)});
}

// Progress, throughput (moving average), ETA and heartbeat, in the batch's own transaction.
void record_batch(const JobRecord& job, const BatchStep& step, double seconds) {
  double throughput = core::next_throughput(job.throughput, static_cast<double>(step.processed + step.failed), seconds);
  long long done = job.processed_items + step.processed + job.failed_items + step.failed;
  long long remaining = job.total_items.value_or(done) - done;
  std::optional<double> eta = core::eta_seconds(remaining < 0 ? 0 : remaining, throughput);
  pg::SpiConnection spi;
  pg::spi_execute(
      "UPDATE privacy.jobs SET processed_items = processed_items OPERATOR(pg_catalog.+) $2,"
      " failed_items = failed_items OPERATOR(pg_catalog.+) $3, cursor = $4::pg_catalog.jsonb, throughput = $5,"
      " eta = pg_catalog.make_interval(secs => $6::pg_catalog.float8), heartbeat_at = pg_catalog.now(),"
      " updated_at = pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1",
      {pg::int8_param(job.id), pg::int8_param(step.processed), pg::int8_param(step.failed),
       pg::text_param(step.cursor_json), pg::float8_param(throughput),
       eta ? pg::float8_param(*eta) : pg::SqlParam{FLOAT8OID, (Datum)0, true}});
}

// Rows set aside for review (privacy.job_errors) in a batch: one 'items_flagged' audit row.
void audit_flagged_items(const JobRecord& job, long long failed) {
  audit::Entry entry = job_audit_entry(job, "items_flagged", "{\"items\": " + std::to_string(failed) + "}");
  entry.outcome = "partial";
  audit::append(entry);
}

// SET LOCAL synchronous_commit, without a statement: it is set once or twice in every batch.
void set_commit_mode(bool synchronous) {
  pg::pg_guard([&] {
    (void)set_config_option("synchronous_commit", synchronous ? "on" : "off", PGC_USERSET, PGC_S_SESSION,
                            GUC_ACTION_LOCAL, true, 0, false);
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

enum class BatchVerdict { Continue, Completed, Cancelled, Stopped };

// What the loop carries from one batch to the next.
struct BatchPace {
  int limit;                // rows the next batch may take
  int rows_per_second = 0;  // the tenant's rate, as read by the last batch
  long long rows_done = 0;  // rows the last batch handled (what the throttle charges)
  double last_batch_end;    // for the throughput average
};

// One batch in its own transaction. Throws on failure (the caller fails the job).
BatchVerdict run_one_batch(long long job_id, JobExecutor& executor, BatchPace& pace, LoopHost& host,
                           BatchMemory& memory) {
  host.start_transaction();
  memory.enter();
  try {
    set_commit_mode(false);
    JobRecord job = load_job(job_id, true);
    if (job.status != JobStatus::Processing) {
      memory.leave();
      host.commit(true);
      return BatchVerdict::Stopped;
    }
    if (job.cancel_requested) {
      set_commit_mode(true);
      change_status(job, {core::JobAction::Cancel, std::nullopt, "{\"after_batches\": true}"});
      memory.leave();
      host.commit(true);
      return BatchVerdict::Cancelled;
    }
    if (job.kind != core::JobKind::Export) {
      std::optional<std::string> subject = job.target_type == "subject" ? std::optional<std::string>(job.target_id) : std::nullopt;
      holds::ensure_not_held(std::string(core::to_string(job.kind)) + " job " + std::to_string(job.id), job.tenant_id, subject);
    }
    pace.rows_per_second = read_rows_per_second(job.tenant_id);
    JobInfo info = job_info(job);
    BatchStep step = executor.run_batch(info, pace.limit);
    double now = now_seconds();
    record_batch(job, step, now - pace.last_batch_end);
    pace.last_batch_end = now;
    pace.rows_done = step.processed + step.failed;
    if (step.failed > 0) audit_flagged_items(job, step.failed);
    if (step.done) {
      std::string result = executor.finish(info);
      set_commit_mode(true);
      change_status(load_job(job_id, true), {core::JobAction::Complete, result, result});
      memory.leave();
      host.commit(true);
      return BatchVerdict::Completed;
    }
    memory.leave();
    host.commit(false);
    return BatchVerdict::Continue;
  } catch (...) {
    memory.leave();
    host.abort();
    throw;
  }
}

// After an erase whose recovery window is zero: finalize in the same run.
void finalize_if_due(long long job_id, LoopHost& host, BatchMemory& memory) {
  finalize::Finalizer finalizer(job_id);
  for (;;) {
    host.start_transaction();
    memory.enter();
    finalize::Progress progress;
    try {
      set_commit_mode(false);
      progress = finalizer.step(pg::guc::batch_size);
    } catch (...) {
      memory.leave();
      host.abort();
      throw;
    }
    memory.leave();
    host.commit(progress == finalize::Progress::Done);
    if (progress != finalize::Progress::More) return;
  }
}

LoopOutcome run_claimed_job(long long job_id, LoopHost& host) {
  BatchMemory memory;
  std::unique_ptr<JobExecutor> executor;
  std::string tenant_id;
  core::JobKind kind;
  host.start_transaction();
  try {
    if (!claim_job(job_id)) {
      host.commit(true);
      return LoopOutcome::NotRunnable;
    }
    JobRecord job = load_job(job_id, false);
    tenant_id = job.tenant_id;
    kind = job.kind;
    executor = make_executor(job.kind);
    record_start(job_id, executor->begin(job_info(job)));
    host.commit(true);
  } catch (const core::Error& error) {
    host.abort();
    if (is_interruption(error)) throw;
    fail_job(job_id, error, host);
    return LoopOutcome::Failed;
  }

  // Throttling charges each batch's actual rows to the tenant's bucket after the batch and waits
  // before the next one, so the long-run rate is exact and no extra transaction is needed.
  BatchPace pace{pg::guc::batch_size, 0, 0, now_seconds()};
  for (;;) {
    try {
      BatchVerdict verdict = run_one_batch(job_id, *executor, pace, host, memory);
      if (verdict == BatchVerdict::Continue) {
        double wait = throttle::reserve_seconds(tenant_id, pace.rows_per_second, static_cast<double>(pace.rows_done));
        if (wait > 0) host.sleep(static_cast<long>(wait * 1000.0) + 1);
        pace.limit = throttle::batch_size_for(pace.rows_per_second, pg::guc::batch_size);
        continue;
      }
      if (verdict == BatchVerdict::Cancelled) return LoopOutcome::Cancelled;
      if (verdict == BatchVerdict::Stopped) return LoopOutcome::NotRunnable;
      if (kind == core::JobKind::Erase) finalize_if_due(job_id, host, memory);
      return LoopOutcome::Completed;
    } catch (const core::Error& error) {
      if (is_interruption(error)) throw;
      fail_job(job_id, error, host);
      return LoopOutcome::Failed;
    }
  }
}

// Runs `body` holding the job's runner lock; NotRunnable when another runner holds it.
template <typename Body>
LoopOutcome with_runner_lock(long long job_id, LoopHost& host, Body body) {
  host.start_transaction();
  bool locked = false;
  try {
    locked = try_lock_runner(job_id);
    host.commit(true);
  } catch (...) {
    host.abort();
    throw;
  }
  if (!locked) return LoopOutcome::NotRunnable;
  LoopOutcome outcome;
  try {
    outcome = body();
  } catch (...) {
    host.start_transaction();
    unlock_runner(job_id);
    host.commit(true);
    throw;
  }
  host.start_transaction();
  unlock_runner(job_id);
  host.commit(true);
  return outcome;
}

}  // namespace

LoopOutcome run_job_loop(long long job_id, LoopHost& host) {
  return with_runner_lock(job_id, host, [&] { return run_claimed_job(job_id, host); });
}

LoopOutcome run_finalization_loop(long long job_id, LoopHost& host) {
  return with_runner_lock(job_id, host, [&] {
    BatchMemory memory;
    finalize_if_due(job_id, host, memory);
    return LoopOutcome::Completed;
  });
}

}  // namespace privacy::jobs
