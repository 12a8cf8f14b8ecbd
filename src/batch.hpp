// The batch operations every job runs (DESIGN section 5), shared by CALL privacy.run_job and the
// background worker. Every statement on an application table runs as that table's owner
// (docs/security.md). Each call does one batch inside the caller's transaction; the caller
// commits it together with the job's progress.
//
// Batches walk a relation in key order (keyset pagination on its key columns, never ctid), so
// the same SQL works on distributed tables and never rescans rows already handled. The position
// is an opaque jsonb text (the last key seen) that the caller stores in privacy.jobs.cursor.
#pragma once

#include "pg/pg_headers.hpp"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace privacy::batch {

// What a job acts on: a subject within a tenant, or a whole tenant (subject_id nullopt).
struct Target {
  long long job_id;
  std::string tenant_id;
  std::optional<std::string> subject_id;
};

struct BatchResult {
  long long processed = 0;              // rows handled in this batch
  long long failed = 0;                 // rows recorded in privacy.job_errors in this batch
  std::optional<std::string> last_key;  // position after this batch (jsonb text)
  bool relation_done = false;           // no rows left after last_key
};

// True when `value` is valid input for `type_sql` (a type as format_type prints it under the
// pinned search_path) in a column of `relation`: a subject id that is not, say, an integer has
// no rows in an integer column. The cast runs as the table's owner in a subtransaction, so a
// domain's CHECK runs with the owner's rights (docs/security.md). A data exception (class 22) or
// a failed domain constraint (class 23) means it does not fit; any other error is thrown.
bool value_fits(Oid relation, const std::string& type_sql, const std::string& value);

// Registered relations in the order jobs visit them: children before parents by foreign keys.
std::vector<Oid> relations_in_order();

// Rows of the target in `relation` that an erase would mark (not yet marked).
long long count_rows_to_mark(const Target& target, Oid relation);
// Rows of the target in `relation` a purge would delete (marked or not).
long long count_rows_to_purge(const Target& target, Oid relation);
// Rows marked by `job_id` in `relation` (what finalization or restore would touch).
long long count_marked_rows(long long job_id, Oid relation);

// Erase phase 1: sets privacy_erased_by = target.job_id on up to `limit` rows after `after_key`.
BatchResult mark_batch(const Target& target, Oid relation, const std::optional<std::string>& after_key,
                       int limit);
// Finalization: deletes (on_erase 'delete') or anonymizes ('anonymize') up to `limit` rows marked
// by job_id after `after_key`. A row that fails is recorded in privacy.job_errors, the rest go on.
BatchResult finalize_batch(long long job_id, Oid relation, const std::optional<std::string>& after_key,
                           int limit);
// Purge: deletes up to `limit` of the target's rows (marked or not) after `after_key`.
BatchResult purge_batch(const Target& target, Oid relation, const std::optional<std::string>& after_key,
                        int limit);

// Clears the mark of job_id's rows: all of them, those of one relation, or only the rows whose
// keys are listed (keys_json: a jsonb array of key objects). Returns the number restored.
long long restore_rows(long long job_id, Oid relation, const std::optional<std::string>& keys_json);

// The same, with the count per relation (for the audit row of privacy.restore).
std::vector<std::pair<Oid, long long>> restore_rows_by_relation(long long job_id, Oid relation,
                                                                const std::optional<std::string>& keys_json);

}  // namespace privacy::batch
