// The GUCs (docs/jobs.md, "Settings", and the other docs/ pages). Defined once in _PG_init
// (guc.cpp); read everywhere through these variables. Durations are kept in the unit of their GUC
// (seconds or milliseconds).
#pragma once

namespace privacy::pg::guc {

extern char* database;               // privacy.database (postmaster)
extern int max_workers;              // privacy.max_workers (postmaster)
extern int naptime_s;                // privacy.naptime
extern int batch_size;               // privacy.batch_size
extern int lock_timeout_ms;          // privacy.lock_timeout
extern int default_rows_per_second;  // privacy.default_rows_per_second, 0 = unlimited
extern int cost_limit;               // privacy.cost_limit (cost units between naps)
extern double cost_delay_ms;         // privacy.cost_delay (ms per cost_limit units, 0 = pacing off)
extern int worker_nice;  // privacy.worker_nice (CPU priority of job workers, 0 = as the server)
extern bool worker_sched_idle;          // privacy.worker_sched_idle (job workers in SCHED_IDLE)
extern int recovery_window_s;           // privacy.recovery_window
extern int export_ttl_s;                // privacy.export_ttl
extern int deadline_s;                  // privacy.deadline
extern int deadline_warning_s;          // privacy.deadline_warning
extern int audit_retention_min;         // privacy.audit_retention (minutes)
extern int audit_retention_floor_min;   // privacy.audit_retention_floor (minutes, superuser only)
extern int notify_min_items;            // privacy.notify_min_items
extern char* smtp_url;                  // privacy.smtp_url
extern char* smtp_from;                 // privacy.smtp_from
extern bool smtp_require_tls;           // privacy.smtp_require_tls (superuser only)
extern char* smtp_ca_file;              // privacy.smtp_ca_file (superuser only), empty = system CAs
extern int notify_retry_base_s;         // privacy.notify_retry_base (superuser only)
extern bool require_distinct_approver;  // privacy.require_distinct_approver
extern int max_attempts;                // privacy.max_attempts

// Defines every GUC. Called once from _PG_init.
void define_all();

}  // namespace privacy::pg::guc
