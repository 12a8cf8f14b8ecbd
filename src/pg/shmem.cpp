#include "pg/shmem.hpp"

#include "pg/boundary.hpp"
#include "pg/guc.hpp"

extern "C" {
#include "access/xact.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
}

#include <cstring>

namespace privacy::pg {

namespace {

struct AreaRegistration {
  const char* name;
  Size (*size)();
  ShmemInit init;
  void** area_out;
};

constexpr int kMaxAreas = 8;
AreaRegistration registered_areas[kMaxAreas];
int registered_area_count = 0;

SharedState* state = nullptr;
shmem_request_hook_type previous_request_hook = nullptr;
shmem_startup_hook_type previous_startup_hook = nullptr;
constexpr const char* kLockTranche = "pg_privacy";

Size shared_state_size() {
  return add_size(offsetof(SharedState, workers), mul_size(sizeof(WorkerSlot), guc::max_workers));
}

void request_shared_memory() {
  if (previous_request_hook) previous_request_hook();
  Size total = shared_state_size();
  for (int i = 0; i < registered_area_count; ++i) total = add_size(total, registered_areas[i].size());
  RequestAddinShmemSpace(total);
  RequestNamedLWLockTranche(kLockTranche, 1);
}

void init_shared_state(SharedState* fresh) {
  std::memset(fresh, 0, shared_state_size());
  fresh->lock = &(GetNamedLWLockTranche(kLockTranche))->lock;
  fresh->worker_count = guc::max_workers;
  std::strncpy(fresh->launcher_state, "not started", kStateBytes - 1);
}

// Creates or attaches every shared area. Runs in the postmaster and (EXEC_BACKEND) in each child.
void startup_shared_memory() {
  if (previous_startup_hook) previous_startup_hook();
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  bool found = false;
  auto* attached = static_cast<SharedState*>(ShmemInitStruct("pg_privacy state", shared_state_size(), &found));
  if (!found) init_shared_state(attached);
  state = attached;
  for (int i = 0; i < registered_area_count; ++i) {
    const AreaRegistration& area = registered_areas[i];
    void* memory = ShmemInitStruct(area.name, area.size(), &found);
    if (!found) area.init(memory);
    *area.area_out = memory;
  }
  LWLockRelease(AddinShmemInitLock);
}

}  // namespace

SharedState* shared_state() { return state; }

void register_shmem_area(const char* name, Size (*size)(), ShmemInit init, void** area_out) {
  if (registered_area_count >= kMaxAreas) elog(ERROR, "pg_privacy: too many shared memory areas");
  registered_areas[registered_area_count++] = AreaRegistration{name, size, init, area_out};
}

void install_shmem_hooks() {
  previous_request_hook = shmem_request_hook;
  shmem_request_hook = request_shared_memory;
  previous_startup_hook = shmem_startup_hook;
  shmem_startup_hook = startup_shared_memory;
}

void wake_launcher() {
  if (state == nullptr) return;
  LWLockAcquire(state->lock, LW_SHARED);
  Latch* latch = state->launcher_latch;
  if (latch != nullptr) SetLatch(latch);
  LWLockRelease(state->lock);
}

namespace {

bool wake_registered = false;
bool wake_pending = false;

void wake_at_commit_callback(XactEvent event, void*) {
  if (event == XACT_EVENT_COMMIT && wake_pending) wake_launcher();
  if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT) wake_pending = false;
}

}  // namespace

void wake_launcher_at_commit() {
  if (!wake_registered) {
    pg_guard([] { RegisterXactCallback(wake_at_commit_callback, nullptr); });
    wake_registered = true;
  }
  wake_pending = true;
}

}  // namespace privacy::pg
