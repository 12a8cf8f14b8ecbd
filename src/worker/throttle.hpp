// Per-tenant throttling (docs/jobs.md, "How a job runs"): one token bucket per tenant in shared
// memory, shared by every worker of that tenant (and CALL privacy.run_job sessions). Without
// preload each process keeps its own buckets.
#pragma once

#include "core/cost_pacing.hpp"

#include <string>

namespace privacy::throttle {

// Reserves `rows` rows of the tenant's budget and returns how long (seconds) to wait before
// doing them. rows_per_second 0 means unlimited (always 0).
double reserve_seconds(const std::string& tenant_id, int rows_per_second, double rows);

// A batch size whose wait stays near a second at most, so a throttled runner still notices
// cancel and SIGTERM quickly: min(configured, rows_per_second), at least 1.
int batch_size_for(int rows_per_second, int configured_batch_size);

// The token buckets' shared area, from the shmem request and startup hooks (src/module.cpp).
void request_shared_memory();
void attach_shared_memory();

// Load-aware pacing (core/cost_pacing.hpp, docs/performance.md "Pacing"): the buffer pages this
// process used between two calls of take(), from PostgreSQL's own counters (pgBufferUsage: every
// page hit, read and dirtied, whatever statement touched it).
class PageMeter {
 public:
  PageMeter();
  core::PageCounts take();

 private:
  long long hits_ = 0;
  long long misses_ = 0;
  long long dirtied_ = 0;
};

// What the server charges per page: vacuum_cost_page_hit, _miss and _dirty.
core::PageWeights server_page_weights();

// A background job worker moves to the SCHED_IDLE scheduling class (privacy.worker_sched_idle,
// Linux) and lowers its nice value to privacy.worker_nice (docs/performance.md, "Pacing"): a
// backend that wakes up takes the CPU from it at once, and it works only on a CPU no other process
// wants. Only ever lowered (an unprivileged process cannot raise it again), and never in a
// session's backend (CALL privacy.run_job): that process goes on serving its client afterwards.
void lower_worker_priority();

// Creates the WAL segment after the one being written, if it does not exist yet (so that an
// application backend's commit does not have to). Call inside a transaction, before a batch.
void preallocate_wal();

}  // namespace privacy::throttle
