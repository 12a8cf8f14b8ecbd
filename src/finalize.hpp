// Finalization (DESIGN section 5): after an erase job's recovery window closes, its marked rows
// are deleted or anonymized for good, children before parents, in batches. Run by a
// background worker (dispatched by the launcher), by CALL privacy.run_job, and at once at the
// end of an erase job whose recovery window is zero.
#pragma once

#include "pg/pg_headers.hpp"

#include <optional>
#include <string>
#include <vector>

namespace privacy::finalize {

// More: call step() again. Done: finalized. Held: a legal hold covers the next relation, nothing
// changed. RowsLeft: a pass is over but rows it set aside (job_errors) are still marked; the job
// is not finalized, and its next run starts over and retries them. NotDue: not yet.
enum class Progress { More, Done, Held, RowsLeft, NotDue };

// Where finalization of a job stands, kept in privacy.jobs.cursor as
//   {"phase": "finalize", "relation": <oid>, "after": <key or null>, "rows": n, "failed": n}
struct FinalizeCursor {
  Oid relation = InvalidOid;
  std::optional<std::string> after;
  long long rows = 0;
  long long failed = 0;
};

// Finalizes one job, one batch per step(). The relation order and the position are read from
// the database on the first step and then kept in memory for the run (the runner holds the
// job's runner lock, so nobody else moves them); each step still saves the position with its
// batch, so a crash resumes from the last committed one.
class Finalizer {
 public:
  explicit Finalizer(long long job_id) : job_id_(job_id) {}
  // One batch in the current transaction. Done sets finalized_at (and audits 'finalized');
  // Held: a legal hold covers the next relation, nothing changed, try again later.
  Progress step(int limit);

 private:
  long long job_id_;
  bool loaded_ = false;
  std::vector<Oid> relations_;
  FinalizeCursor cursor_;
};

}  // namespace privacy::finalize
