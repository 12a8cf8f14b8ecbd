// CALL privacy.run_job(job_id): runs whatever a job needs now (its request when approved, or
// resumes an abandoned one; the finalization of an erase whose recovery window closed) in the
// calling session, with the very same job loop as the background worker, committing after each
// batch. A job that ends failed raises its error after the failure is committed.
//
// A procedure may commit only when it is not SECURITY DEFINER, so run_job is SECURITY INVOKER:
// it checks that the caller is a member of privacy_admin and then runs each transaction as the
// extension's owner with search_path pinned to pg_catalog, pg_temp, the way a SECURITY DEFINER
// function with SET search_path does, switching back before every commit. Nothing of the
// caller's session (its search_path, its temporary objects) reaches the work; statements on
// application tables run as their owners (docs/security.md).
#include "citus/node.hpp"
#include "jobs/jobs.hpp"
#include "pg/boundary.hpp"
#include "pg/security_context.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "commands/extension.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
}

#include <optional>

namespace {

namespace pg = privacy::pg;
using privacy::core::Error;

// The role that created the extension (a superuser: the control file requires it). Read with
// search_path pinned: the caller's own path must not decide what runs here.
Oid extension_owner() {
  pg::PinnedSearchPath pinned;
  pg::SpiConnection spi;
  std::optional<long long> owner = pg::spi_query_int8(
      "SELECT extowner::pg_catalog.int8 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'pg_privacy'");
  if (!owner)
    throw Error(privacy::core::sqlstate::kObjectNotInPrerequisiteState,
                "extension pg_privacy is not installed");
  return static_cast<Oid>(*owner);
}

// Transactions of a procedure: SPI_commit / SPI_rollback on the procedure's non-atomic SPI
// connection. Work between them runs as the extension owner with search_path pinned; both are
// undone before each commit or rollback, so the next transaction starts as the caller.
class ProcedureHost final : public privacy::jobs::LoopHost {
 public:
  explicit ProcedureHost(Oid owner) : owner_(owner) {}

  void start_transaction() override {
    pg::pg_guard([&] {
      GetUserIdAndSecContext(&saved_user_, &saved_security_context_);
      SetUserIdAndSecContext(owner_, saved_security_context_ | SECURITY_LOCAL_USERID_CHANGE);
      PushActiveSnapshot(GetTransactionSnapshot());
    });
    try {
      pinned_.emplace();
    } catch (...) {
      abort();
      throw;
    }
  }
  void commit(bool synchronous) override {
    pinned_.reset();
    pg::pg_guard([&] {
      PopActiveSnapshot();
      SetUserIdAndSecContext(saved_user_, saved_security_context_);
      SPI_commit();
    });
  }
  // After an error inside SPI, the failed statement's snapshot may still be pushed above ours:
  // every active snapshot goes (the procedure's own were popped when it began).
  void abort() override {
    if (pinned_) pinned_->discard_on_exit();
    pinned_.reset();
    pg::pg_guard([&] {
      while (ActiveSnapshotSet()) PopActiveSnapshot();
      SetUserIdAndSecContext(saved_user_, saved_security_context_);
      SPI_rollback();
    });
  }

 private:
  Oid owner_;
  Oid saved_user_ = InvalidOid;
  int saved_security_context_ = 0;
  std::optional<pg::PinnedSearchPath> pinned_;
};

void ensure_admin() {
  bool allowed = pg::pg_guard([] {
    Oid admin = get_role_oid("privacy_admin", true);
    return superuser() || (OidIsValid(admin) && has_privs_of_role(GetUserId(), admin));
  });
  if (!allowed) {
    throw Error(privacy::core::sqlstate::kInsufficientPrivilege,
                "permission denied to run pg_privacy jobs", "",
                "CALL privacy.run_job needs membership in privacy_admin.");
  }
}

// Why there was nothing to run, as the error run_job raises: what the job is waiting for and
// what would make it runnable.
Error not_runnable(long long job_id) {
  using privacy::core::JobStatus;
  privacy::jobs::Job job = privacy::jobs::load(job_id, privacy::jobs::Lock::None);
  std::string id = std::to_string(job_id);
  std::string state = std::string(privacy::core::to_string(job.state.status));
  if (job.state.finalization)
    state +=
        " (finalization " + std::string(privacy::core::to_string(*job.state.finalization)) + ")";
  std::string hint = "Nothing to do.";
  if (job.state.status == JobStatus::Pending)
    hint = "Approve it first: privacy.approve(" + id + ").";
  if (job.state.finalization == privacy::core::FinalizationState::AwaitingWindow) {
    hint = "Its rows are finalized once its recovery window closes at " +
           job.recoverable_until.value_or("?") + "; until then privacy.restore(" + id +
           ") brings them back.";
  } else if (job.state.status == JobStatus::Failed || job.state.status == JobStatus::Cancelled) {
    hint = "Retry it first: privacy.retry(" + id + ").";
  }
  return Error(
      privacy::core::sqlstate::kObjectNotInPrerequisiteState,
      "job " + id + " is " + state + " and cannot be run",
      "run_job runs approved jobs, resumes abandoned ones and finalizes erasures whose recovery window has closed.",
      hint);
}

}  // namespace

PRIVACY_SQL_FUNCTION(privacy_run_job) {
  long long job_id = privacy::pg::int8_arg(fcinfo, 0, "job_id");
  bool atomic = !(fcinfo->context && IsA(fcinfo->context, CallContext) &&
                  !castNode(CallContext, fcinfo->context)->atomic);
  if (atomic) {
    throw Error("25001", "privacy.run_job must be called with CALL outside a transaction block",
                "It commits after every batch.",
                "Run CALL privacy.run_job(" + std::to_string(job_id) + ") on its own.");
  }
  ensure_admin();
  {
    pg::PinnedSearchPath pinned;  // its look at the catalog, too, ignores the caller's path
    privacy::citus_node::refuse_on_worker_node("privacy.run_job");
  }
  pg::pg_guard([] {
    if (SPI_connect_ext(SPI_OPT_NONATOMIC) != SPI_OK_CONNECT)
      elog(ERROR, "pg_privacy: SPI_connect_ext failed");
  });
  // The procedure's own statement snapshot must not be held across our commits.
  pg::pg_guard([] {
    while (ActiveSnapshotSet()) PopActiveSnapshot();
  });
  Oid owner = extension_owner();
  ProcedureHost host(owner);
  privacy::jobs::RunOutcome outcome{privacy::jobs::RunOutcome::Kind::NothingToDo, std::nullopt};
  try {
    outcome = privacy::jobs::run(job_id, host);
    if (outcome.kind == privacy::jobs::RunOutcome::Kind::NothingToDo && !outcome.error) {
      host.start_transaction();
      try {
        outcome.error = not_runnable(job_id);
      } catch (...) {
        host.abort();
        throw;
      }
      host.commit(true);
    }
  } catch (...) {
    SPI_finish();
    throw;
  }
  pg::pg_guard([] { SPI_finish(); });
  using Kind = privacy::jobs::RunOutcome::Kind;
  if (outcome.kind == Kind::Busy) {
    throw Error(
        privacy::core::sqlstate::kObjectNotInPrerequisiteState,
        "job " + std::to_string(job_id) + " is being processed by another worker or session", "",
        "Watch it in privacy.job_overview; privacy.worker_status() shows who runs it.");
  }
  if (outcome.kind == Kind::NothingToDo && outcome.error) throw *outcome.error;
  if (outcome.error) {
    const Error& error = *outcome.error;
    std::string what = outcome.kind == Kind::Stopped ? " stopped its finalization: " : " failed: ";
    throw Error(
        error.sqlstate(), "job " + std::to_string(job_id) + what + error.what(), error.detail(),
        outcome.kind == Kind::Stopped
            ? "It is recorded in privacy.jobs.last_error; the finalization resumes with the next run."
            : "It is recorded in privacy.jobs.error; fix the cause, then privacy.retry(" +
                  std::to_string(job_id) + ").");
  }
  return (Datum)0;
}
