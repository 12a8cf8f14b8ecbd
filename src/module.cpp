// _PG_init: defines the GUCs in every backend that loads pg_privacy and, only while the library
// is being preloaded, requests shared memory and registers the launcher. Loaded any other way
// (CREATE EXTENSION without preload), the SQL API works and privacy.worker_status() says that
// no launcher runs.
//
// Everything pg_privacy hooks into PostgreSQL is wired here, by name: no static object
// registers anything behind this file's back.
#include "citus/tables.hpp"
#include "holds/shared.hpp"
#include "worker/launcher.hpp"
#include "pg/guc.hpp"
#include "pg/pg_headers.hpp"
#include "pg/shmem.hpp"
#include "worker/throttle.hpp"

extern "C" {
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
}

namespace {

shmem_request_hook_type previous_request_hook = nullptr;
shmem_startup_hook_type previous_startup_hook = nullptr;

// Every shared area pg_privacy uses (docs/architecture.md): the launcher's and the workers'
// state, the per-tenant token buckets, the hold generation with the hold_blocked queue.
void request_shared_memory() {
  if (previous_request_hook) previous_request_hook();
  privacy::pg::request_shared_state();
  privacy::throttle::request_shared_memory();
  privacy::holds::shared::request_shared_memory();
}

// Creates or attaches each area. Runs in the postmaster and (EXEC_BACKEND) in each child.
void startup_shared_memory() {
  if (previous_startup_hook) previous_startup_hook();
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  privacy::pg::attach_shared_state();
  privacy::throttle::attach_shared_memory();
  privacy::holds::shared::attach_shared_memory();
  LWLockRelease(AddinShmemInitLock);
}

}  // namespace

extern "C" {
PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);

void _PG_init(void) {
  privacy::pg::guc::define_all();
  privacy::citus_tables::install_restrictive_policy_hook();
  if (!process_shared_preload_libraries_in_progress) return;
  previous_request_hook = shmem_request_hook;
  shmem_request_hook = request_shared_memory;
  previous_startup_hook = shmem_startup_hook;
  shmem_startup_hook = startup_shared_memory;
  privacy::launcher::register_launcher();
}
}
