// Retry delays for things that fail and are tried again later (outgoing e-mail,
// docs/notifications.md).
#pragma once

#include <algorithm>
#include <cmath>

namespace privacy::core {

// Seconds to wait before the next try after `attempts` failed tries: base, 2*base, 4*base, ...
// (base * 2^(attempts-1)), never more than cap. No failure yet (attempts <= 0) means no wait.
// The exponent is bounded so that huge attempt counts saturate at cap instead of overflowing.
inline double retry_delay_seconds(int attempts, double base = 30, double cap = 3600) {
  if (attempts <= 0) return 0;
  double delay = std::ldexp(base, std::min(attempts - 1, 1023));
  return std::max(0.0, std::min(delay, cap));
}

}  // namespace privacy::core
