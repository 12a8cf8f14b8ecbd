#include "core/progress.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.hpp"

namespace privacy::core {

std::optional<double> expected_rate(double rows_done, double elapsed_s, double limit_rows_per_s) {
  if (!(rows_done >= 0)) {
    throw Error(sqlstate::kInvalidParameter,
                "rows done must be >= 0, got " + std::to_string(rows_done));
  }
  std::optional<double> limit;
  if (limit_rows_per_s > 0) limit = limit_rows_per_s;
  if (!(rows_done > 0) || !(elapsed_s > 0)) return limit;
  double achieved = rows_done / elapsed_s;
  return limit ? std::min(achieved, *limit) : achieved;
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
