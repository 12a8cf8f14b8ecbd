#include "worker/launcher.hpp"

#include "audit/audit.hpp"
#include "citus/node.hpp"
#include "citus/tables.hpp"
#include "compliance/deadlines.hpp"
#include "export/export.hpp"
#include "holds/holds.hpp"
#include "notify/notify.hpp"
#include "pg/bgworker.hpp"
#include "pg/boundary.hpp"
#include "pg/guc.hpp"
#include "pg/security_context.hpp"
#include "pg/shmem.hpp"
#include "pg/spi.hpp"
#include "data/pseudonym.hpp"
#include "worker/dispatch.hpp"

extern "C" {
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

#include <algorithm>
#include <cstring>

namespace privacy::launcher {

namespace {

constexpr int kRestartSeconds = 5;
constexpr const char* kWorkerNodeState = "idle: Citus worker node";

// Whether the last step found this database to be a Citus worker node, where the launcher runs
// no step at all (docs/citus.md): the jobs and the holds it would work on are the coordinator's.
bool on_citus_worker_node = false;

// One step of the cycle. Each runs in its own transaction with an SPI connection and the
// search_path pinned; an error aborts that step only (run_step_in_transaction). The name is what
// privacy.worker_status() shows as the launcher's state while the step runs.
struct Step {
  const char* name;
  void (*run)();
};

// The launcher's cycle, in the order it runs.
constexpr Step kCycle[] = {
    // Legal holds (docs/legal-holds.md).
    {"hold_blocked audit", &holds::write_blocked_events},
    {"Citus holds", &holds::citus::citus_holds_step},
    {"hold expiry", &holds::expire_holds},
    {"hold triggers", &holds::reconcile_triggers},
    {"Citus placements", &citus_tables::verify_citus_tables},
    // Jobs (docs/jobs.md): requests, resumed runs and finalizations, each in a worker of its own.
    {"dispatching jobs", &worker::dispatch_jobs},
    // Housekeeping.
    {"expire exports", &exports::expire_export_files},
    {"deadline notices", &deadlines::send_deadline_notices},
    {"audit retention", &audit::retention_step},
    // Last, so that the mail the steps above queued (deadline notices) leaves in the same cycle.
    {"mailer", &notify::send_due_mail},
};

// The earliest wake-up a step of this cycle asked for (wake_within), in seconds; < 0: none.
double requested_wake_s = -1;

// How long the launcher sleeps after a cycle: privacy.naptime, or less when a step asked.
long sleep_milliseconds() {
  long naptime_ms = static_cast<long>(pg::guc::naptime_s) * 1000L;
  if (requested_wake_s < 0) return naptime_ms;
  return std::min(naptime_ms, static_cast<long>(requested_wake_s * 1000.0) + 10);
}

void set_launcher_state(const char* state_text) {
  pg::SharedState* state = pg::shared_state();
  LWLockAcquire(state->lock, LW_EXCLUSIVE);
  std::strncpy(state->launcher_state, state_text, pg::kStateBytes - 1);
  state->launcher_state[pg::kStateBytes - 1] = '\0';
  if (std::strncmp(state_text, "idle", 4) == 0) state->launcher_last_cycle = GetCurrentTimestamp();
  LWLockRelease(state->lock);
}

// Publishes this process as the launcher so others can wake it and report it.
void publish_launcher() {
  pg::SharedState* state = pg::shared_state();
  LWLockAcquire(state->lock, LW_EXCLUSIVE);
  state->launcher_pid = MyProcPid;
  state->launcher_latch = MyLatch;
  state->launcher_since = GetCurrentTimestamp();
  state->launcher_database = MyDatabaseId;
  LWLockRelease(state->lock);
}

// On exit (SIGTERM, postmaster death, error): nobody may set a latch we no longer own.
void unpublish_launcher(int, Datum) {
  pg::SharedState* state = pg::shared_state();
  if (state == nullptr) return;
  LWLockAcquire(state->lock, LW_EXCLUSIVE);
  if (state->launcher_pid == MyProcPid) {
    state->launcher_pid = 0;
    state->launcher_latch = nullptr;
    std::strncpy(state->launcher_state, "stopped", pg::kStateBytes - 1);
  }
  LWLockRelease(state->lock);
}

bool extension_installed() {
  std::optional<std::string> found = pg::spi_query_text(
      "SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'pg_privacy'");
  return found.has_value();
}

// Runs one step in its own transaction, with search_path pinned (docs/security.md). An error (from
// C++ or PostgreSQL) is logged and the transaction aborted; the launcher lives on, runs the next
// step, and tries again next cycle. A step that finds the extension missing does nothing: it may be
// created at any time.
void run_step_in_transaction(const Step& step) {
  MemoryContext launcher_context = CurrentMemoryContext;
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  PushActiveSnapshot(GetTransactionSnapshot());
  pgstat_report_activity(STATE_RUNNING, "pg_privacy launcher cycle");
  std::string who = std::string("pg_privacy launcher: step \"") + step.name + "\" failed";
  bool ran = pg::background_guard(who.c_str(), [&] {
    pg::PinnedSearchPath pinned;  // the database's own search_path must not reach the steps
    pg::SpiConnection spi;
    if (!extension_installed()) {
      set_launcher_state("waiting for extension");
    } else if (citus_node::this_worker_node()) {
      if (!on_citus_worker_node) {
        elog(LOG, "pg_privacy launcher: this node is a Citus worker node, it runs no jobs");
        pseudonym::remove_secret_copy_on_worker_node();
      }
      on_citus_worker_node = true;
      set_launcher_state(kWorkerNodeState);
    } else {
      on_citus_worker_node = false;
      set_launcher_state(step.name);
      step.run();
    }
  });
  PopActiveSnapshot();
  if (ran) {
    CommitTransactionCommand();
  } else {
    AbortCurrentTransaction();
  }
  MemoryContextSwitchTo(launcher_context);
  pgstat_report_activity(STATE_IDLE, nullptr);
}

}  // namespace

void wake_within(double seconds) {
  if (seconds < 0) seconds = 0;
  if (requested_wake_s < 0 || seconds < requested_wake_s) requested_wake_s = seconds;
}

// One cycle: every step of kCycle, in order.
void run_cycle() {
  requested_wake_s = -1;
  for (const Step& step : kCycle) run_step_in_transaction(step);
  set_launcher_state(on_citus_worker_node ? kWorkerNodeState : "idle");
}

void register_launcher() {
  BackgroundWorker worker = pg::describe_background_worker("privacy_launcher_main",
                                                           "pg_privacy launcher", kRestartSeconds);
  RegisterBackgroundWorker(&worker);
}

}  // namespace privacy::launcher

// The launcher's main loop. SIGTERM (die) ends it with FATAL through CHECK_FOR_INTERRUPTS, so
// the postmaster restarts it after kRestartSeconds unless the server is shutting down; SIGHUP
// reloads the configuration; postmaster death ends the wait at once.
extern "C" PGDLLEXPORT void privacy_launcher_main(Datum) {
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  pqsignal(SIGTERM, die);
  BackgroundWorkerUnblockSignals();
  BackgroundWorkerInitializeConnection(privacy::pg::guc::database, nullptr, 0);
  SetConfigOption("application_name", "pg_privacy launcher", PGC_USERSET, PGC_S_SESSION);

  before_shmem_exit(privacy::launcher::unpublish_launcher, 0);
  privacy::launcher::publish_launcher();
  elog(LOG, "pg_privacy launcher started in database \"%s\"", privacy::pg::guc::database);

  for (;;) {
    CHECK_FOR_INTERRUPTS();
    if (ConfigReloadPending) {
      ConfigReloadPending = false;
      ProcessConfigFile(PGC_SIGHUP);
      elog(LOG, "pg_privacy launcher reloaded its configuration");
    }
    privacy::launcher::run_cycle();
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
                    privacy::launcher::sleep_milliseconds(), PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
  }
}
