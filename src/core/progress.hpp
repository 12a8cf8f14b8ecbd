// Progress figures of a running job: throughput (rows per second, smoothed), ETA and percentage.
//
// The worker records them with each batch (privacy.jobs.throughput, eta, processed/total_items),
// and privacy.job_overview shows them, like PostgreSQL's pg_stat_progress_* views.
#pragma once

#include <optional>

namespace privacy::core {

// The new smoothed throughput after a batch of `rows` that took `seconds`: an exponentially
// weighted moving average, weight * (rows / seconds) + (1 - weight) * previous, so one slow
// batch (a lock wait, a checkpoint) moves the ETA a little instead of making it jump.
// Without a previous value the batch's own rate is taken as is. A batch with seconds <= 0
// carries no rate information: the previous value is returned (0 if there is none).
// Throws Error(22023) unless 0 < weight <= 1 and rows >= 0.
double next_throughput(std::optional<double> previous_rows_per_s, double rows, double seconds,
                       double weight = 0.3);

// Seconds until `remaining_items` are done at `rows_per_s`: 0 when nothing remains (whatever
// the rate), nullopt when the rate is unknown (<= 0) and items remain.
std::optional<double> eta_seconds(long long remaining_items, double rows_per_s);

// processed / total as a percentage in [0, 100]. A job with nothing to do (total <= 0) is
// 100% done. processed is clamped into [0, total], so a count that raced ahead never shows 103%.
double progress_pct(long long processed, long long total);

}  // namespace privacy::core
