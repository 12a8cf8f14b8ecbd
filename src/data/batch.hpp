// The batch operations every job runs, shared by CALL privacy.run_job and the background worker:
// the action of one kind of job on one relation (data/walk.hpp decides which relation and where).
// Every statement on an application table runs as that table's owner (docs/security.md). Each
// call does one batch inside the caller's transaction; the caller commits it together with the
// job's progress.
//
// Batches walk a relation in key order (keyset pagination on its key columns, never ctid), so
// the same SQL works on distributed tables and never rescans rows already handled. The position
// is a key object (jsonb text, the last key seen) that the walk keeps in privacy.jobs.cursor.
#pragma once

#include "core/error.hpp"
#include "jobs/jobs.hpp"
#include "data/registry.hpp"

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace privacy::batch {

using registry::TableInfo;

// What one batch does to a relation. The name is the phase recorded in privacy.job_errors.
enum class Operation { Mark, Purge, Finalize, Read };
std::string_view phase_name(Operation operation);  // "mark", "purge", "finalize", "read"
std::optional<Operation> parse_phase(std::string_view phase);

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

// How many rows of the job's target the operation has left in `table` after `after_key`
// (everything when nullopt): to mark (not yet marked), to purge (marked or not, and rows an
// earlier erase anonymized with the subject's pseudonym), to finalize (marked by the job), or
// to read (the export).
long long count_rows(const jobs::Job& job, const TableInfo& table, Operation operation,
                     const std::optional<std::string>& after_key);

// One batch of up to `limit` rows after `after_key`:
//  Mark      sets privacy_erased_by = job id on the subject's rows (erase);
//  Purge     deletes the target's rows, marked or not;
//  Finalize  deletes (on_erase 'delete') or anonymizes ('anonymize') the rows the job marked.
// A row that fails (docs/jobs.md, "Flagged items") is recorded once in privacy.job_errors and
// passed over; any other failure ends the batch and is thrown.
BatchResult run_batch(const jobs::Job& job, const TableInfo& table, Operation operation,
                      const std::optional<std::string>& after_key, int limit);

// The export's batch: reads up to `limit` of the subject's rows after `after_key`, each as the
// JSON text of its columns (in table order, without privacy_erased_by) plus "_erased", and hands
// them to `row` in key order.
BatchResult read_batch(const jobs::Job& job, const TableInfo& table,
                       const std::optional<std::string>& after_key, int limit,
                       const std::function<void(std::string_view row_json)>& row);

// Redoes the action of a flagged item on the one row whose key object is `row_key`, in a
// subtransaction of its own, as the table's owner: the phase's action, and for a 'mark' item of
// an erase whose finalization has begun, its finalization right after. Returns the failure, if
// any (every failure: the caller records it); rows that are gone count as done.
std::optional<core::Error> redo_item(const jobs::Job& job, const TableInfo& table, Operation phase,
                                     const std::string& row_key, bool finalize_too);

// Records a flagged item in privacy.job_errors, as the extension owner: a row (row_key, a key
// object) or a whole relation (nullopt) that `phase` could not handle, at its `attempt`.
void record_item(long long job_id, Oid relation, Operation phase,
                 const std::optional<std::string>& row_key, int attempt, const core::Error& error);

// Clears the mark of the job's rows in `table`: all of them, or only the rows whose keys are
// listed (keys_json: a jsonb array of key objects). Like the finalization, it names the job's
// tenant too on a Citus table, so that Citus routes it to one shard. Returns the number restored.
long long restore_rows(const jobs::Job& job, const TableInfo& table,
                       const std::optional<std::string>& keys_json);

}  // namespace privacy::batch
