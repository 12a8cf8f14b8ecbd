#include "worker/throttle.hpp"

#include "core/token_bucket.hpp"
#include "pg/boundary.hpp"
#include "pg/guc.hpp"
#include "pg/shmem.hpp"

extern "C" {
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "storage/shmem.h"
#include "executor/instrument.h"
#include "miscadmin.h"
#include "storage/spin.h"
#include "utils/timestamp.h"
}

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

namespace privacy::throttle {

namespace {

constexpr int kBucketSlots = 256;

struct BucketSlot {
  bool used;
  char tenant_id[pg::kTenantIdBytes];
  core::TokenBucket bucket;
};

struct ThrottleArea {
  slock_t mutex;
  BucketSlot slots[kBucketSlots];
};

ThrottleArea* area = nullptr;

void init_area(void* memory) {
  std::memset(memory, 0, sizeof(ThrottleArea));
  SpinLockInit(&static_cast<ThrottleArea*>(memory)->mutex);
}

double now_seconds() { return static_cast<double>(GetCurrentTimestamp()) / 1e6; }

// The tenant's slot: found by open addressing on the tenant id; when the table is full the
// least recently used bucket is taken over (its tenant starts with a full bucket again).
BucketSlot& slot_for(const std::string& tenant_id) {
  size_t start = std::hash<std::string>{}(tenant_id) % kBucketSlots;
  BucketSlot* oldest = nullptr;
  for (int probe = 0; probe < kBucketSlots; ++probe) {
    BucketSlot& slot = area->slots[(start + probe) % kBucketSlots];
    if (!slot.used) {
      std::memset(&slot, 0, sizeof(slot));
      slot.used = true;
      std::strncpy(slot.tenant_id, tenant_id.c_str(), pg::kTenantIdBytes - 1);
      return slot;
    }
    if (std::strncmp(slot.tenant_id, tenant_id.c_str(), pg::kTenantIdBytes - 1) == 0) return slot;
    if (oldest == nullptr || slot.bucket.last_refill_s < oldest->bucket.last_refill_s)
      oldest = &slot;
  }
  std::memset(oldest, 0, sizeof(*oldest));
  oldest->used = true;
  std::strncpy(oldest->tenant_id, tenant_id.c_str(), pg::kTenantIdBytes - 1);
  return *oldest;
}

std::map<std::string, core::TokenBucket> local_buckets;  // without preload

}  // namespace

double reserve_seconds(const std::string& tenant_id, int rows_per_second, double rows) {
  if (rows_per_second <= 0 || rows <= 0) return 0;
  double now = now_seconds();
  if (area == nullptr) {
    core::TokenBucket& bucket = local_buckets[tenant_id];
    core::configure(bucket, rows_per_second, now);
    return core::reserve(bucket, rows, now);
  }
  // Plain arithmetic on the shared bucket under a spinlock: no allocation, no PostgreSQL call.
  // The core functions throw only on invalid arguments, which the checks above rule out; the
  // catch still releases the lock so that a bug cannot leave it held.
  double wait = 0;
  SpinLockAcquire(&area->mutex);
  try {
    BucketSlot& slot = slot_for(tenant_id);
    core::configure(slot.bucket, rows_per_second, now);
    wait = core::reserve(slot.bucket, rows, now);
  } catch (...) {
    SpinLockRelease(&area->mutex);
    throw;
  }
  SpinLockRelease(&area->mutex);
  return wait;
}

int batch_size_for(int rows_per_second, int configured_batch_size) {
  if (rows_per_second <= 0) return configured_batch_size;
  return std::max(1, std::min(configured_batch_size, rows_per_second));
}

void request_shared_memory() { RequestAddinShmemSpace(sizeof(ThrottleArea)); }

void attach_shared_memory() {
  area = static_cast<ThrottleArea*>(
      pg::attach_area("pg_privacy throttle", sizeof(ThrottleArea), init_area));
}

namespace {
long long page_hits() { return pgBufferUsage.shared_blks_hit + pgBufferUsage.local_blks_hit; }
long long page_misses() { return pgBufferUsage.shared_blks_read + pgBufferUsage.local_blks_read; }
long long pages_dirtied() {
  return pgBufferUsage.shared_blks_dirtied + pgBufferUsage.local_blks_dirtied;
}
}  // namespace

PageMeter::PageMeter() : hits_(page_hits()), misses_(page_misses()), dirtied_(pages_dirtied()) {}

core::PageCounts PageMeter::take() {
  long long hits = page_hits(), misses = page_misses(), dirtied = pages_dirtied();
  core::PageCounts used{static_cast<double>(hits - hits_), static_cast<double>(misses - misses_),
                        static_cast<double>(dirtied - dirtied_)};
  hits_ = hits;
  misses_ = misses;
  dirtied_ = dirtied;
  return used;
}

core::PageWeights server_page_weights() {
  return core::PageWeights{static_cast<double>(VacuumCostPageHit),
                           static_cast<double>(VacuumCostPageMiss),
                           static_cast<double>(VacuumCostPageDirty)};
}

namespace {

// Logs (DEBUG1) why the worker's priority could not be lowered; the job runs on regardless.
void report_priority_failure(const char* what, int saved_errno) {
  pg::pg_guard([&] { elog(DEBUG1, "pg_privacy: could not %s: %s", what, strerror(saved_errno)); });
}

// SCHED_IDLE (Linux): the worker runs only when no normal process wants its CPU. An unprivileged
// process may enter it; it never leaves it again (nor needs to: the worker exits with its jobs).
void enter_sched_idle() {
#ifdef SCHED_IDLE
  if (!pg::guc::worker_sched_idle || sched_getscheduler(0) == SCHED_IDLE) return;
  sched_param param{};
  param.sched_priority = 0;
  if (sched_setscheduler(0, SCHED_IDLE, &param) != 0)
    report_priority_failure("move the job worker to SCHED_IDLE", errno);
#endif
}

}  // namespace

void lower_worker_priority() {
  if (!IsBackgroundWorker) return;
  enter_sched_idle();
  if (pg::guc::worker_nice <= 0) return;
  errno = 0;
  int current = getpriority(PRIO_PROCESS, 0);
  if (errno != 0 || current >= pg::guc::worker_nice) return;
  if (setpriority(PRIO_PROCESS, 0, pg::guc::worker_nice) != 0)
    report_priority_failure("lower the job worker's CPU priority", errno);
}

// The WAL segment after the one being written is created (zero-filled, fsynced) by whoever first
// writes past the current one's end, under WALWriteLock: with a job writing WAL fast, that is
// usually an application backend committing (the job's own batch commits are asynchronous), and
// every other committing backend waits for it (IO:WALInitWrite, LWLock:WALWrite; bench/run B3).
// Creating the next segment here first, before each batch, moves that work into the job's worker:
// XLogFileInit creates the file aside and installs it under ControlFileLock only, the way the
// checkpointer pre-allocates segments. A segment that exists already costs one open().
void preallocate_wal() {
  pg::pg_guard([] {
    if (RecoveryInProgress()) return;
    XLogSegNo segment;
    XLByteToSeg(GetXLogInsertRecPtr(), segment, wal_segment_size);
    int fd = XLogFileInit(segment + 1, GetWALInsertionTimeLine());
    close(fd);
  });
}

}  // namespace privacy::throttle
