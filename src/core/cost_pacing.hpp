// Load-aware pacing of job workers, autovacuum's way (docs/performance.md, "Pacing"): the
// buffer pages a worker touches cost it, a page found in shared buffers `page_hit`, one read
// from the kernel `page_miss`, one it dirtied `page_dirty` (PostgreSQL's vacuum_cost_page_*
// weights), and once the cost accumulated since the last nap reaches `limit`, the worker naps
// delay_ms * balance / limit before its next batch. Naps are proportional to the cost, so a
// worker that is charged once per batch (not once per page, as VACUUM is) keeps the same long-run
// ratio of work to rest: at most `limit` cost units per `delay_ms` of napping.
//
// Pure arithmetic: the worker reads the page counts around each batch (src/worker/throttle.cpp) and
// sleeps what charge() returns, together with the tenant's row rate (the longer of the two
// waits).
#pragma once

namespace privacy::core {

// Buffer pages a piece of work used (differences of PostgreSQL's pgBufferUsage counters).
struct PageCounts {
  double hits = 0;
  double misses = 0;
  double dirtied = 0;
};

// What each kind of page costs: vacuum_cost_page_hit, vacuum_cost_page_miss and
// vacuum_cost_page_dirty of the server.
struct PageWeights {
  double page_hit = 1;
  double page_miss = 2;
  double page_dirty = 20;
};

// When to nap and for how long. delay_ms 0 turns pacing off.
struct CostSettings {
  int limit = 0;        // cost units between naps, >= 1
  double delay_ms = 0;  // nap per `limit` units, >= 0
};

// The valid ranges, shared by the GUCs, privacy.configure_tenant and the checks here.
inline constexpr int kCostLimitMin = 1;
inline constexpr int kCostLimitMax = 1000000;
inline constexpr double kCostDelayMaxMs = 100;

// The cost not yet napped off, and what the naps came to (for the job's progress).
struct CostBalance {
  double balance = 0;
  long long naps = 0;
  double napped_ms = 0;
};

// The cost of the pages used; counts below zero (a counter reset) cost nothing.
// Throws Error(22023) for negative or non-finite weights.
double page_cost(const PageCounts& used, const PageWeights& weights);

// Adds `cost` to the balance. Returns the nap in milliseconds: 0 while the balance is below the
// limit; else delay_ms * balance / limit, after which the balance starts again from 0 (what the
// nap paid for) and naps / napped_ms count it. With pacing off (delay_ms 0) the balance is
// dropped and nothing is charged.
// Throws Error(22023) for settings outside the ranges above or a negative or non-finite cost.
double charge(CostBalance& balance, double cost, const CostSettings& settings);

}  // namespace privacy::core
