// Per-tenant throttle: a token bucket counted in rows.
//
// One bucket per tenant lives in shared memory and is shared by every worker of that tenant
// (docs/jobs.md, "How a job runs"), so it is a plain struct that can be copied byte for byte; the
// caller holds the shared-memory lock around configure() and reserve(). Times are seconds on any
// clock the caller chooses (the worker uses a monotonic clock), passed in so tests can fake it.
//
// How a worker uses it, per batch:
//   configure(bucket, tenant_rows_per_second, now);   // cheap; picks up setting changes
//   double wait = reserve(bucket, batch_rows, now);   // book the rows now ...
//   sleep(wait); run the batch;                       // ... and pay for them before working
//
// reserve() lets tokens go negative (debt): a batch larger than the burst is allowed, and the
// debt makes the next caller wait exactly as long as those rows cost. So the long-run rate is
// exact whatever the batch size and however many workers share the bucket.
//
// A zero-filled bucket (fresh shared memory) has rate 0, which means unlimited.
#pragma once

#include <type_traits>

namespace privacy::core {

struct TokenBucket {
  double rows_per_second;  // the refill rate; 0 = unlimited
  double burst;            // the most tokens the bucket holds: one second's worth, at least 1
  double tokens;           // rows that may run now; negative = debt still to wait off
  double last_refill_s;    // the clock value tokens were last brought up to date at
  bool initialized;        // false until the first configure()
};

static_assert(std::is_trivially_copyable_v<TokenBucket>,
              "TokenBucket lives in shared memory and must be copyable byte for byte");
static_assert(std::is_standard_layout_v<TokenBucket>,
              "TokenBucket lives in shared memory and must have a plain C layout");

// Sets the rate (rows per second; 0 = unlimited) and burst = max(rate * 1 s, 1).
// A first call (or the first call after being unlimited) starts with a full bucket. A later
// call first credits the time elapsed at the old rate, then clamps tokens to the new burst;
// debt is kept, so changing the rate never forgives work already done.
// Throws Error(22023) for a negative or non-finite rate.
void configure(TokenBucket& bucket, double rows_per_second, double now_s);

// Books `rows` rows at time now_s and returns how many seconds the caller must wait before
// doing that work (0 if the bucket had enough tokens). Unlimited buckets always return 0 and
// are not changed. A clock that went backwards adds no tokens.
// Throws Error(22023) for negative or non-finite rows.
double reserve(TokenBucket& bucket, double rows, double now_s);

}  // namespace privacy::core
