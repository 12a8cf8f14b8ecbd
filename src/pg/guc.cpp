#include "pg/guc.hpp"

#include "pg/pg_headers.hpp"

#include "core/cost_pacing.hpp"

extern "C" {
#include "utils/guc.h"
}

namespace privacy::pg::guc {

// Load-aware pacing (docs/performance.md, "Pacing"), tuned with bench/run B3.
constexpr int kDefaultCostLimit = 2000;
constexpr double kDefaultCostDelayMs = 2;
constexpr int kDefaultWorkerNice = 10;

char* database = nullptr;
int max_workers = 2;
int naptime_s = 10;
int batch_size = 1000;
int lock_timeout_ms = 1000;
int default_rows_per_second = 0;
int cost_limit = kDefaultCostLimit;
double cost_delay_ms = kDefaultCostDelayMs;
int worker_nice = kDefaultWorkerNice;
bool worker_sched_idle = false;
int recovery_window_s = 30 * 24 * 3600;
int export_ttl_s = 7 * 24 * 3600;
int deadline_s = 30 * 24 * 3600;
int deadline_warning_s = 7 * 24 * 3600;
int audit_retention_min = (7 * 365 + 2) * 24 * 60;  // seven years, leap days included
int audit_retention_floor_min = 365 * 24 * 60;      // one year (a calendar year is never shorter)
int notify_min_items = 1000;
char* smtp_url = nullptr;
char* smtp_from = nullptr;
bool smtp_require_tls = false;
char* smtp_ca_file = nullptr;
int notify_retry_base_s = 30;
bool require_distinct_approver = true;
int max_attempts = 5;

namespace {
// Read by SQL only (privacy.submit_subject_request, docs/jobs.md "Self-service requests").
char* intake_tenant_setting = nullptr;
char* intake_subject_setting = nullptr;
int intake_max_requests = 5;

constexpr int kMaxSeconds = INT_MAX;

// PostgreSQL refuses (with FATAL) to define a PGC_POSTMASTER variable outside
// shared_preload_libraries. Loaded later (CREATE EXTENSION without the preload) there is no
// launcher and no shared memory for these settings to shape, so they are defined as
// superuser-only settings instead and the SQL API keeps working.
GucContext postmaster_context() {
  return process_shared_preload_libraries_in_progress ? PGC_POSTMASTER : PGC_SUSET;
}
}  // namespace

// PGC_POSTMASTER where shared memory or the launcher's connection depend on the value; PGC_SIGHUP
// for what the background processes read each cycle; PGC_SUSET for what a superuser may tune in
// a session (CALL privacy.run_job honours the session's batch size and lock timeout).
void define_all() {
  DefineCustomStringVariable("privacy.database", "Database the pg_privacy launcher connects to.",
                             "The extension must be created in this database.", &database,
                             "postgres", postmaster_context(), 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable(
      "privacy.max_workers", "Maximum number of concurrent pg_privacy job workers.",
      "Each worker is a dynamic background worker: keep max_worker_processes large enough.",
      &max_workers, 2, 1, 64, postmaster_context(), 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("privacy.naptime", "Longest time the launcher sleeps between checks.",
                          "Approvals and cancels wake it at once; this bounds everything else.",
                          &naptime_s, 10, 1, 3600, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr,
                          nullptr);
  DefineCustomIntVariable("privacy.batch_size",
                          "Rows processed per job batch (one transaction each).", nullptr,
                          &batch_size, 1000, 1, 1000000, PGC_SUSET, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("privacy.lock_timeout", "Longest wait of a batch for a locked row.",
                          "Rows still locked after a retry are flagged in privacy.job_errors.",
                          &lock_timeout_ms, 1000, 1, 600000, PGC_SUSET, GUC_UNIT_MS, nullptr,
                          nullptr, nullptr);
  DefineCustomIntVariable(
      "privacy.default_rows_per_second",
      "Per-tenant throttle for tenants without rows_per_second (0 = unlimited).", nullptr,
      &default_rows_per_second, 0, 0, INT_MAX, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable(
      "privacy.cost_limit",
      "Cost (buffer pages hit, read and dirtied, weighted as vacuum_cost_page_*) a job worker "
      "accumulates before it naps.",
      "Tenants may override it (privacy.configure_tenant).", &cost_limit, kDefaultCostLimit,
      core::kCostLimitMin, core::kCostLimitMax, PGC_SUSET, 0, nullptr, nullptr, nullptr);
  DefineCustomRealVariable(
      "privacy.cost_delay",
      "Nap of a job worker per privacy.cost_limit units of cost (0 turns load-aware pacing off).",
      "Tenants may override it (privacy.configure_tenant).", &cost_delay_ms, kDefaultCostDelayMs, 0,
      core::kCostDelayMaxMs, PGC_SUSET, GUC_UNIT_MS, nullptr, nullptr, nullptr);
  DefineCustomIntVariable(
      "privacy.worker_nice",
      "CPU priority (nice) a background job worker lowers itself to when it starts: it then "
      "yields the CPU to the application's backends.",
      "0 keeps the server's priority; CALL privacy.run_job never changes its session's.",
      &worker_nice, kDefaultWorkerNice, 0, 19, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomBoolVariable(
      "privacy.worker_sched_idle",
      "A background job worker moves itself to Linux's SCHED_IDLE scheduling class when it "
      "starts: it then runs only on a CPU no other process wants.",
      "Off by default (a starved worker may hold locks an application waits for: docs/jobs.md); "
      "off keeps the normal class at privacy.worker_nice. CALL privacy.run_job never changes "
      "its session's.",
      &worker_sched_idle, false, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("privacy.recovery_window", "How long erased rows stay restorable.",
                          "Tenants may override it (privacy.configure_tenant).", &recovery_window_s,
                          30 * 24 * 3600, 0, kMaxSeconds, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr,
                          nullptr);
  DefineCustomIntVariable("privacy.export_ttl", "How long an encrypted export file is kept.",
                          nullptr, &export_ttl_s, 7 * 24 * 3600, 60, kMaxSeconds, PGC_SIGHUP,
                          GUC_UNIT_S, nullptr, nullptr, nullptr);
  DefineCustomIntVariable(
      "privacy.deadline",
      "Time allowed to answer a request under regulation 'other' (due_at = requested_at + deadline).",
      nullptr, &deadline_s, 30 * 24 * 3600, 3600, kMaxSeconds, PGC_SIGHUP, GUC_UNIT_S, nullptr,
      nullptr, nullptr);
  DefineCustomIntVariable(
      "privacy.deadline_warning",
      "How long before its due date an open request is announced to the tenant's privacy contact.",
      "0: no warning, only the notice when it becomes overdue.", &deadline_warning_s, 7 * 24 * 3600,
      0, kMaxSeconds, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("privacy.audit_retention", "How long audit rows are kept.",
                          "Tenants may override it (privacy.configure_tenant).",
                          &audit_retention_min, (7 * 365 + 2) * 24 * 60, 60, INT_MAX, PGC_SIGHUP,
                          GUC_UNIT_MIN, nullptr, nullptr, nullptr);
  DefineCustomIntVariable(
      "privacy.audit_retention_floor",
      "Shortest audit retention: no setting may be shorter, and the purge never "
      "deletes rows younger than this.",
      "Protects the trail from the administrators it records (docs/audit.md).",
      &audit_retention_floor_min, 365 * 24 * 60, 0, INT_MAX, PGC_SIGHUP,
      GUC_UNIT_MIN | GUC_SUPERUSER_ONLY, nullptr, nullptr, nullptr);
  DefineCustomIntVariable(
      "privacy.notify_min_items",
      "Smallest job (total_items) whose completion is e-mailed to notify_email.",
      "Failures and rejections are always e-mailed.", &notify_min_items, 1000, 0, INT_MAX,
      PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomStringVariable("privacy.smtp_url",
                             "SMTP server for notifications, e.g. smtp://mail.example.com:25.",
                             "Empty: e-mails stay queued in privacy.notifications.", &smtp_url, "",
                             PGC_SIGHUP, GUC_SUPERUSER_ONLY, nullptr, nullptr, nullptr);
  DefineCustomStringVariable("privacy.smtp_from", "Sender address of notification e-mails.",
                             nullptr, &smtp_from, "pg_privacy@localhost", PGC_SIGHUP, 0, nullptr,
                             nullptr, nullptr);
  DefineCustomBoolVariable(
      "privacy.smtp_require_tls", "Send notification e-mail over smtp:// only after STARTTLS.",
      "Off: STARTTLS whenever the server offers it, plain text otherwise.", &smtp_require_tls,
      false, PGC_SIGHUP, GUC_SUPERUSER_ONLY, nullptr, nullptr, nullptr);
  DefineCustomStringVariable(
      "privacy.smtp_ca_file",
      "CA certificates (PEM file) that the mail server's certificate must chain to.",
      "Empty: the system's CA store.", &smtp_ca_file, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY, nullptr,
      nullptr, nullptr);
  DefineCustomIntVariable(
      "privacy.notify_retry_base",
      "Wait before retrying a failed notification e-mail; it doubles per attempt.",
      "At most one hour between attempts.", &notify_retry_base_s, 30, 1, 3600, PGC_SIGHUP,
      GUC_UNIT_S | GUC_SUPERUSER_ONLY, nullptr, nullptr, nullptr);
  DefineCustomBoolVariable("privacy.require_distinct_approver",
                           "Refuse approval by the session user who requested the job.", nullptr,
                           &require_distinct_approver, true, PGC_SUSET, 0, nullptr, nullptr,
                           nullptr);
  DefineCustomIntVariable(
      "privacy.max_attempts",
      "Runs of a job (or of its finalization) that may end without finishing before it fails.",
      "A run that stopped without a word (its process died) counts too; runs are retried "
      "after a growing pause.",
      &max_attempts, 5, 1, 1000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomStringVariable(
      "privacy.intake_tenant_setting",
      "Setting that holds the tenant of the application's logged-in user (self-service requests).",
      "The same setting the application's row-level security policies read.",
      &intake_tenant_setting, "app.tenant", PGC_SUSET, 0, nullptr, nullptr, nullptr);
  DefineCustomStringVariable(
      "privacy.intake_subject_setting",
      "Setting that holds the subject id of the logged-in user, unless the tenant names its own.",
      "privacy.configure_tenant(..., intake_subject_setting => ...) overrides it per tenant.",
      &intake_subject_setting, "app.user_id", PGC_SUSET, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable(
      "privacy.intake_max_requests", "Self-service requests one subject may file per 24 hours.",
      "0: none.", &intake_max_requests, 5, 0, 1000, PGC_SUSET, 0, nullptr, nullptr, nullptr);
  MarkGUCPrefixReserved("privacy");
}

}  // namespace privacy::pg::guc
