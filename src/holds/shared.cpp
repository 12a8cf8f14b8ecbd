#include "holds/shared.hpp"

#include "holds/cache.hpp"
#include "pg/shmem.hpp"

extern "C" {
#include "port/atomics.h"
#include "storage/shmem.h"
#include "storage/spin.h"
}

#include <cstring>

namespace privacy::holds::shared {

namespace {

struct HoldsArea {
  pg_atomic_uint64 generation;
  slock_t queue_lock;  // protects everything below; held only to copy a few entries
  int head;            // index of the oldest event
  int count;           // events in the queue
  uint64 dropped;      // events lost because the queue was full, not yet reported
  BlockedEvent events[kQueueCapacity];
};

HoldsArea* area = nullptr;

void init_area(void* memory) {
  auto* fresh = static_cast<HoldsArea*>(memory);
  std::memset(fresh, 0, sizeof(HoldsArea));
  pg_atomic_init_u64(&fresh->generation, 1);  // backends start at 0: their first check reloads
  SpinLockInit(&fresh->queue_lock);
}

bool pending_bump = false;
bool callback_registered = false;

// Commit: publish the change (bump) before the locks of the committing transaction are
// released, so a writer that waited for place_hold's SHARE lock sees the new generation.
// Abort: nothing to publish, but this backend's cache may hold our own rolled-back rows.
void on_transaction_end(XactEvent event, void*) {
  if (!pending_bump) return;
  switch (event) {
    case XACT_EVENT_PRE_PREPARE:
      ereport(ERROR,
              (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
               errmsg("cannot PREPARE a transaction that placed, released or expired a legal hold"),
               errhint("Place and release holds in ordinary transactions.")));
      break;
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PARALLEL_COMMIT:
      if (area != nullptr) pg_atomic_fetch_add_u64(&area->generation, 1);
      pending_bump = false;
      invalidate_cache();
      break;
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
    case XACT_EVENT_PREPARE:
      pending_bump = false;
      invalidate_cache();
      break;
    default:
      break;
  }
}

}  // namespace

bool available() { return area != nullptr; }

uint64 generation() { return pg_atomic_read_u64(&area->generation); }

void note_holds_changed() {
  if (!callback_registered) {
    RegisterXactCallback(on_transaction_end, nullptr);
    callback_registered = true;
  }
  pending_bump = true;
}

bool changed_in_this_transaction() { return pending_bump; }

bool enqueue_blocked(const BlockedEvent& event) {
  if (area == nullptr) return false;
  SpinLockAcquire(&area->queue_lock);
  if (area->count == kQueueCapacity) {
    area->dropped++;
  } else {
    area->events[(area->head + area->count) % kQueueCapacity] = event;
    area->count++;
  }
  SpinLockRelease(&area->queue_lock);
  return true;
}

int peek_blocked(BlockedEvent* out, int max, uint64* dropped) {
  if (area == nullptr) return 0;
  SpinLockAcquire(&area->queue_lock);
  int count = area->count < max ? area->count : max;
  for (int i = 0; i < count; ++i) out[i] = area->events[(area->head + i) % kQueueCapacity];
  *dropped = area->dropped;
  SpinLockRelease(&area->queue_lock);
  return count;
}

// Only the launcher removes, so the `count` oldest events are still the ones it peeked.
void remove_blocked(int count, uint64 dropped_reported) {
  if (area == nullptr) return;
  SpinLockAcquire(&area->queue_lock);
  area->head = (area->head + count) % kQueueCapacity;
  area->count -= count;
  area->dropped -= dropped_reported;
  SpinLockRelease(&area->queue_lock);
}

void request_shared_memory() { RequestAddinShmemSpace(sizeof(HoldsArea)); }

void attach_shared_memory() {
  area = static_cast<HoldsArea*>(pg::attach_area("pg_privacy holds", sizeof(HoldsArea), init_area));
}

}  // namespace privacy::holds::shared
