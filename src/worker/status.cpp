// privacy.worker_status(): what the launcher and the job workers are doing, read from shared
// memory. Without preload there is no shared memory, and the one row returned says so plainly.
// A tenant-scoped caller sees the workers of its own tenants only (docs/security.md, "Tenant
// scopes"); the launcher's and the mailer's rows name no tenant and are shown to everyone (the
// mailer's counts are of the notifications the caller may read).
#include "access/tenant_scope.hpp"
#include "notify/notify.hpp"
#include "pg/boundary.hpp"
#include "pg/guc.hpp"
#include "pg/shmem.hpp"

extern "C" {
#include "commands/dbcommands.h"
#include "utils/timestamp.h"
}

#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace {

struct StatusRow {
  std::string process;  // "launcher", "worker" or "mailer"
  std::optional<int> pid;
  std::optional<long long> job_id;
  std::optional<std::string> tenant_id;
  std::string state;
  std::optional<TimestampTz> since;
  std::optional<std::string> detail;
};

StatusRow not_preloaded_row() {
  return StatusRow{
      "launcher",
      std::nullopt,
      std::nullopt,
      std::nullopt,
      "not running",
      std::nullopt,
      std::string("pg_privacy is not in shared_preload_libraries: requests are accepted "
                  "and wait. Add pg_privacy to shared_preload_libraries and restart the "
                  "server, or process a job in this session with CALL privacy.run_job(job_id).")};
}

// Copies the shared state under its lock (no allocation while the lock is held).
std::vector<StatusRow> read_shared_rows(privacy::pg::SharedState* state) {
  std::vector<privacy::pg::WorkerSlot> slots(state->worker_count);
  StatusRow launcher{"launcher", std::nullopt, std::nullopt, std::nullopt,
                     "",         std::nullopt, std::nullopt};
  Oid launcher_database = InvalidOid;
  privacy::pg::pg_guard([&] { LWLockAcquire(state->lock, LW_SHARED); });
  pid_t launcher_pid = state->launcher_pid;
  char launcher_state[privacy::pg::kStateBytes];
  std::memcpy(launcher_state, state->launcher_state, sizeof(launcher_state));
  TimestampTz launcher_since = state->launcher_since;
  launcher_database = state->launcher_database;
  std::memcpy(slots.data(), state->workers, sizeof(privacy::pg::WorkerSlot) * slots.size());
  LWLockRelease(state->lock);

  launcher.state = launcher_pid != 0 ? launcher_state : "not running";
  if (launcher_pid != 0) {
    launcher.pid = launcher_pid;
    launcher.since = launcher_since;
    if (launcher_database != MyDatabaseId && launcher_database != InvalidOid) {
      launcher.detail = std::string("the launcher serves database \"") +
                        privacy::pg::guc::database +
                        "\" (privacy.database), not this one: jobs of this database wait. Set "
                        "privacy.database and restart, or use CALL privacy.run_job(job_id).";
    }
  } else {
    launcher.detail = std::string(
                          "the launcher is not running; it restarts within seconds after a "
                          "crash (see the server log). It serves database \"") +
                      privacy::pg::guc::database + "\" (privacy.database).";
  }
  std::vector<StatusRow> rows{launcher};
  for (const privacy::pg::WorkerSlot& slot : slots) {
    if (slot.pid == 0) continue;
    rows.push_back(StatusRow{"worker", slot.pid, slot.job_id, std::string(slot.tenant_id),
                             std::string(slot.state), slot.since, std::nullopt});
  }
  return rows;
}

void emit_row(ReturnSetInfo* rsinfo, const StatusRow& row) {
  Datum values[7];
  bool nulls[7] = {false, false, false, false, false, false, false};
  privacy::pg::pg_guard([&] {
    values[0] = CStringGetTextDatum(row.process.c_str());
    if (row.pid)
      values[1] = Int32GetDatum(*row.pid);
    else
      nulls[1] = true;
    if (row.job_id)
      values[2] = Int64GetDatum(*row.job_id);
    else
      nulls[2] = true;
    if (row.tenant_id)
      values[3] = CStringGetTextDatum(row.tenant_id->c_str());
    else
      nulls[3] = true;
    values[4] = CStringGetTextDatum(row.state.c_str());
    if (row.since)
      values[5] = TimestampTzGetDatum(*row.since);
    else
      nulls[5] = true;
    if (row.detail)
      values[6] = CStringGetTextDatum(row.detail->c_str());
    else
      nulls[6] = true;
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
  });
}

}  // namespace

PRIVACY_SQL_FUNCTION(privacy_worker_status) {
  privacy::pg::pg_guard([&] { InitMaterializedSRF(fcinfo, 0); });
  auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
  privacy::pg::SharedState* state = privacy::pg::shared_state();
  std::vector<StatusRow> rows =
      state ? read_shared_rows(state) : std::vector<StatusRow>{not_preloaded_row()};
  privacy::notify::MailerStatus mailer = privacy::notify::mailer_status();
  rows.push_back(StatusRow{"mailer", std::nullopt, std::nullopt, std::nullopt, mailer.state,
                           std::nullopt, mailer.detail});
  const privacy::tenant_scope::Scope scope = privacy::tenant_scope::current(std::nullopt);
  for (const StatusRow& row : rows) {
    if (row.process == "worker" && !scope.covers(row.tenant_id)) continue;
    emit_row(rsinfo, row);
  }
  return (Datum)0;
}
