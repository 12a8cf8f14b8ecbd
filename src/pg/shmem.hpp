// Shared memory of pg_privacy. It exists only when the library is preloaded
// (shared_preload_libraries); shared_state() returns nullptr otherwise and every caller must
// cope with that (the SQL API works without preload, jobs just wait).
//
// Every area is requested and attached by name from the shared-memory hooks of _PG_init
// (src/module.cpp): this file's state (the launcher and the workers), then each feature's own
// area (token buckets: worker/throttle.cpp; the hold generation and the hold_blocked queue:
// holds/shared.cpp), each through request_*/attach_* functions of its own.
#pragma once

#include "pg/pg_headers.hpp"

extern "C" {
#include "storage/latch.h"
#include "storage/lwlock.h"
}

#include <cstddef>

namespace privacy::pg {

inline constexpr int kTenantIdBytes = 64;
inline constexpr int kStateBytes = 32;

// What one job worker is doing; pid 0 means the slot is free.
struct WorkerSlot {
  pid_t pid;
  int64 job_id;
  char tenant_id[kTenantIdBytes];
  char state[kStateBytes];
  TimestampTz since;
};

// The launcher's and the workers' public state, read by privacy.worker_status().
struct SharedState {
  LWLock* lock;  // protects everything below
  pid_t launcher_pid;
  Latch* launcher_latch;  // set to wake the launcher; null while it is not running
  char launcher_state[kStateBytes];
  TimestampTz launcher_since;
  TimestampTz launcher_last_cycle;
  Oid launcher_database;  // InvalidOid until connected
  int worker_count;       // = privacy.max_workers
  WorkerSlot workers[FLEXIBLE_ARRAY_MEMBER];
};

// The state, or nullptr when the library was not preloaded.
SharedState* shared_state();

// The shared state's part of the shmem request hook (space and its LWLock tranche), and of the
// shmem startup hook (creates or attaches it; AddinShmemInitLock held).
void request_shared_state();
void attach_shared_state();

// Creates the named area of `size` bytes, calling init on it, or attaches it when it exists
// (postmaster, EXEC_BACKEND children). For shmem startup hooks, with AddinShmemInitLock held.
using ShmemInit = void (*)(void* area);
void* attach_area(const char* name, Size size, ShmemInit init);

// Wakes the launcher if it is running (no-op otherwise).
void wake_launcher();

// Wakes the launcher when the current transaction commits (not at all if it aborts): approvals,
// cancels and every change that queues an e-mail, so that their work starts at once and not
// after privacy.naptime.
void wake_launcher_at_commit();

}  // namespace privacy::pg
