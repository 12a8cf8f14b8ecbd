// Finalization (DESIGN section 5): after an erase job's recovery window closes, its marked rows
// are deleted or anonymized for good, children before parents, in batches. Run by a
// background worker (dispatched by the launcher), by CALL privacy.run_job, and at once at the
// end of an erase job whose recovery window is zero.
#pragma once

namespace privacy::finalize {

enum class Progress { More, Done, Held, NotDue };

// One batch of finalization for the job, in the current transaction; keeps its position in
// privacy.jobs.cursor and sets finalized_at (and audits 'finalized') when everything is done.
// Held: a legal hold covers the next relation; nothing changed, try again later.
Progress finalize_step(long long job_id, int limit);

}  // namespace privacy::finalize
