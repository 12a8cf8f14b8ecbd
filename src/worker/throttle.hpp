// Per-tenant throttling (docs/jobs.md, "How a job runs"): one token bucket per tenant in shared memory, shared
// by every worker of that tenant (and CALL privacy.run_job sessions). Without preload each
// process keeps its own buckets.
#pragma once

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

}  // namespace privacy::throttle
