// Progress figures of a running job: throughput (rows per second), ETA and percentage.
//
// The runner records them with each batch (privacy.jobs.throughput, eta, processed/total_items),
// and privacy.job_overview shows them, like PostgreSQL's pg_stat_progress_* views.
#pragma once

#include <optional>

namespace privacy::core {

// The rate a job can be expected to keep from now on (rows per second): what its run has
// achieved over wall-clock time since it started, throttle waits and lock waits included, but
// never more than the tenant's limit (limit_rows_per_s <= 0: no limit). A rate measured over
// the run's batch execution time alone, or a moving average of fast first batches (the token
// bucket allows one second of burst), promised 5-10x too much under a throttle.
// Before anything is done (rows_done or elapsed_s <= 0) the limit is all there is; nullopt
// when there is none either. Throws Error(22023) when rows_done is negative.
std::optional<double> expected_rate(double rows_done, double elapsed_s, double limit_rows_per_s);

// Seconds until `remaining_items` are done at `rows_per_s`: 0 when nothing remains (whatever
// the rate), nullopt when the rate is unknown (<= 0) and items remain.
std::optional<double> eta_seconds(long long remaining_items, double rows_per_s);

// processed / total as a percentage in [0, 100]. A job with nothing to do (total <= 0) is
// 100% done. processed is clamped into [0, total], so a count that raced ahead never shows 103%.
double progress_pct(long long processed, long long total);

}  // namespace privacy::core
