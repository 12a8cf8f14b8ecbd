// What a run of a job does in one phase, one batch at a time: the request of a kind (an erase
// marks rows, a purge deletes them, an export reads them: data/erase_and_purge.cpp,
// export/export.cpp) or the finalization of an erase (data/finalize.cpp). All of them walk the
// relations with data/walk.hpp.
//
// The loop (jobs/job_loop.cpp), shared by the background worker and CALL privacy.run_job, owns
// transactions, progress, throttling, cancel and the transitions. An executor is created once
// per run and lives across the run's batch transactions on the C++ heap, so it may keep state
// between batches (the export keeps its encryption stream open); it must not keep palloc'd
// memory between batches.
//
// make_executor() (jobs/job_loop.cpp) picks the request executor of a job's kind with one `switch`.
#pragma once

#include "jobs/jobs.hpp"

#include <memory>
#include <optional>
#include <string>

namespace privacy::jobs {

// What one batch did; committed by the loop in the batch's own transaction.
struct BatchStep {
  long long processed = 0;  // items done in this batch
  long long failed = 0;     // items recorded in privacy.job_errors in this batch
  std::string cursor_json;  // where the next batch starts (stored in privacy.jobs.cursor)
  bool done = false;        // nothing left: the loop ends the phase
  bool held = false;        // finalization: done, but tables a legal hold covers were skipped
};

// What begin() decided.
struct RunStart {
  long long total_items;      // for progress and ETA
  bool restart_from_scratch;  // true: the loop resets cursor, processed and failed counts first
};

class PhaseExecutor {
 public:
  virtual ~PhaseExecutor() = default;
  // First transaction of a run: check preconditions (throw core::Error to fail the job), count
  // the work, decide whether a resumed job continues from its cursor or starts over.
  virtual RunStart begin(const Job& job) = 0;
  // One batch of at most `limit` items, inside the current transaction.
  virtual BatchStep run_batch(const Job& job, int limit) = 0;
  // Last transaction of a phase whose batches are all done: its result (jsonb text).
  virtual std::string finish(const Job& job) = 0;
  // The finalization, after privacy.max_attempts runs failed with `why`: passes over the table
  // it was working on (flagged in privacy.job_errors as a whole, row_key NULL) and returns the
  // cursor to save; nullopt when there is nothing to pass over. Other phases never pass over.
  virtual std::optional<std::string> pass_over_current(const Job& job, const core::Error& why) {
    return std::nullopt;
  }
};

// The request executor for a kind (jobs/job_loop.cpp): the one place a kind picks its executor.
std::unique_ptr<PhaseExecutor> make_executor(core::JobKind kind);

// The executors of each kind: erase marks rows, purge deletes them (data/erase_and_purge.cpp),
// export reads them into the encrypted file (export/export.cpp).
std::unique_ptr<PhaseExecutor> make_erase_executor();
std::unique_ptr<PhaseExecutor> make_purge_executor();
std::unique_ptr<PhaseExecutor> make_restrict_executor();  // data/erase_and_purge.cpp
std::unique_ptr<PhaseExecutor> make_export_executor();

// The finalization's executor (data/finalize.cpp).
std::unique_ptr<PhaseExecutor> make_finalization_executor();

}  // namespace privacy::jobs
