#include "core/cost_pacing.hpp"

#include "core/error.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace privacy::core {

namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw Error(sqlstate::kInvalidParameter, message);
}

double non_negative(double count) { return std::isfinite(count) && count > 0 ? count : 0; }

}  // namespace

double page_cost(const PageCounts& used, const PageWeights& weights) {
  for (double weight : {weights.page_hit, weights.page_miss, weights.page_dirty}) {
    require(std::isfinite(weight) && weight >= 0,
            "page cost weights must be finite and not negative");
  }
  return non_negative(used.hits) * weights.page_hit +
         non_negative(used.misses) * weights.page_miss +
         non_negative(used.dirtied) * weights.page_dirty;
}

double charge(CostBalance& balance, double cost, const CostSettings& settings) {
  require(std::isfinite(cost) && cost >= 0, "a cost must be finite and not negative");
  require(settings.limit >= kCostLimitMin && settings.limit <= kCostLimitMax,
          "cost_limit must be between " + std::to_string(kCostLimitMin) + " and " +
              std::to_string(kCostLimitMax) + ", not " + std::to_string(settings.limit));
  require(std::isfinite(settings.delay_ms) && settings.delay_ms >= 0 &&
              settings.delay_ms <= kCostDelayMaxMs,
          "cost_delay must be between 0 and " + std::to_string(static_cast<int>(kCostDelayMaxMs)) +
              " ms");
  if (settings.delay_ms == 0) {
    balance.balance = 0;
    return 0;
  }
  balance.balance += cost;
  if (balance.balance < settings.limit) return 0;
  double nap = settings.delay_ms * balance.balance / settings.limit;
  balance.balance = 0;
  balance.naps += 1;
  balance.napped_ms += nap;
  return nap;
}

}  // namespace privacy::core
