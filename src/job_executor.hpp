// How a job of one kind is carried out, one batch at a time (DESIGN section 6).
//
// The batch loop (jobs.cpp: run_job_loop), shared by the background worker and
// CALL privacy.run_job, owns transactions, progress, throttling, cancel and the status changes.
// An executor only does the kind-specific work. It is created once per run and lives across
// the run's batch transactions on the C++ heap, so it may keep state between batches (the
// export keeps its encryption stream open); it must not keep palloc'd memory between batches.
//
// Executors register themselves from a static object:
//   static privacy::jobs::ExecutorRegistration export_registration(
//       privacy::core::JobKind::Export, [] { return std::make_unique<ExportExecutor>(); });
#pragma once

#include "core/job_state.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace privacy::jobs {

// The job as the executor needs it (a copy of its privacy.jobs row).
struct JobInfo {
  long long id;
  core::JobKind kind;
  std::string target_type;  // "subject" or "tenant"
  std::string target_id;
  std::string tenant_id;
  std::optional<std::string> cursor_json;  // position committed by the last batch, if resuming
  long long processed_items;
  long long failed_items;
};

// What one batch did; committed by the loop in the batch's own transaction.
struct BatchStep {
  long long processed = 0;   // items done in this batch
  long long failed = 0;      // items recorded in privacy.job_errors in this batch
  std::string cursor_json;   // where the next batch starts (stored in privacy.jobs.cursor)
  bool done = false;         // nothing left: the loop completes the job
};

// What begin() decided.
struct RunStart {
  long long total_items;     // for progress and ETA
  bool restart_from_scratch; // true: the loop resets cursor, processed and failed counts first
};

class JobExecutor {
 public:
  virtual ~JobExecutor() = default;
  // First transaction of a run: check preconditions (throw core::Error to fail the job), count
  // the work, decide whether a resumed job continues from job.cursor_json or starts over.
  virtual RunStart begin(const JobInfo& job) = 0;
  // One batch of at most `limit` items, inside the current transaction.
  virtual BatchStep run_batch(const JobInfo& job, int limit) = 0;
  // Last transaction of a successful run: the job's result (jsonb text).
  virtual std::string finish(const JobInfo& job) = 0;
};

using ExecutorFactory = std::unique_ptr<JobExecutor> (*)();

// Registers the executor of a kind (one per kind).
void register_executor(core::JobKind kind, ExecutorFactory factory);

// The executor for a kind; throws core::Error when none is registered.
std::unique_ptr<JobExecutor> make_executor(core::JobKind kind);

struct ExecutorRegistration {
  ExecutorRegistration(core::JobKind kind, ExecutorFactory factory) { register_executor(kind, factory); }
};

}  // namespace privacy::jobs
