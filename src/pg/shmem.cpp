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

SharedState* state = nullptr;
constexpr const char* kLockTranche = "pg_privacy";

Size shared_state_size() {
  return add_size(offsetof(SharedState, workers), mul_size(sizeof(WorkerSlot), guc::max_workers));
}

void init_shared_state(void* memory) {
  auto* fresh = static_cast<SharedState*>(memory);
  std::memset(fresh, 0, shared_state_size());
  fresh->lock = &(GetNamedLWLockTranche(kLockTranche))->lock;
  fresh->worker_count = guc::max_workers;
  std::strncpy(fresh->launcher_state, "not started", kStateBytes - 1);
}

}  // namespace

SharedState* shared_state() { return state; }

void request_shared_state() {
  RequestAddinShmemSpace(shared_state_size());
  RequestNamedLWLockTranche(kLockTranche, 1);
}

void attach_shared_state() {
  state = static_cast<SharedState*>(
      attach_area("pg_privacy state", shared_state_size(), init_shared_state));
}

void* attach_area(const char* name, Size size, ShmemInit init) {
  bool found = false;
  void* memory = ShmemInitStruct(name, size, &found);
  if (!found) init(memory);
  return memory;
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
