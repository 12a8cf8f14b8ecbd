#include "core/progress.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.hpp"

namespace privacy::core {

double next_throughput(std::optional<double> previous_rows_per_s, double rows, double seconds,
                       double weight) {
  if (!(weight > 0 && weight <= 1)) {
    throw Error(sqlstate::kInvalidParameter,
                "throughput weight must be in (0, 1], got " + std::to_string(weight));
  }
  if (!(rows >= 0)) {
    throw Error(sqlstate::kInvalidParameter,
                "rows of a batch must be >= 0, got " + std::to_string(rows));
  }
  if (!(seconds > 0)) return previous_rows_per_s.value_or(0);
  double sample = rows / seconds;
  if (!previous_rows_per_s) return sample;
  return weight * sample + (1 - weight) * *previous_rows_per_s;
}

std::optional<double> eta_seconds(long long remaining_items, double rows_per_s) {
  if (remaining_items <= 0) return 0.0;
  if (!(rows_per_s > 0)) return std::nullopt;
  return static_cast<double>(remaining_items) / rows_per_s;
}

double progress_pct(long long processed, long long total) {
  if (total <= 0) return 100.0;
  long long done = std::clamp(processed, 0LL, total);
  return 100.0 * static_cast<double>(done) / static_cast<double>(total);
}

}  // namespace privacy::core
