#include "core/token_bucket.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.hpp"

namespace privacy::core {

namespace {

bool is_unlimited(const TokenBucket& bucket) { return bucket.rows_per_second <= 0; }

// Brings tokens up to date with the time elapsed since the last refill, never above the burst.
// If the clock went backwards (now before last_refill_s) nothing is added and last_refill_s is
// kept, so time is never counted twice once the clock catches up again.
void refill(TokenBucket& bucket, double now_s) {
  double elapsed = now_s - bucket.last_refill_s;
  if (elapsed <= 0) return;
  bucket.tokens = std::min(bucket.burst, bucket.tokens + elapsed * bucket.rows_per_second);
  bucket.last_refill_s = now_s;
}

void require_finite_non_negative(double value, const char* what) {
  if (std::isfinite(value) && value >= 0) return;
  throw Error(sqlstate::kInvalidParameter,
              std::string("token bucket ") + what + " must be a finite number >= 0, got " +
                  std::to_string(value),
              {}, "use 0 for no limit");
}

}  // namespace

void configure(TokenBucket& bucket, double rows_per_second, double now_s) {
  require_finite_non_negative(rows_per_second, "rows_per_second");
  bool starts_full = !bucket.initialized || is_unlimited(bucket);
  if (!starts_full) refill(bucket, now_s);  // credit elapsed time at the old rate

  bucket.rows_per_second = rows_per_second;
  bucket.burst = std::max(rows_per_second * 1.0, 1.0);
  if (starts_full) {
    bucket.tokens = bucket.burst;
    bucket.last_refill_s = now_s;
  } else {
    bucket.tokens = std::min(bucket.tokens, bucket.burst);
  }
  bucket.initialized = true;
}

double reserve(TokenBucket& bucket, double rows, double now_s) {
  require_finite_non_negative(rows, "rows");
  if (is_unlimited(bucket)) return 0;
  refill(bucket, now_s);
  bucket.tokens -= rows;
  if (bucket.tokens >= 0) return 0;
  return -bucket.tokens / bucket.rows_per_second;
}

}  // namespace privacy::core
