// Finalization (docs/soft-delete.md, "Finalization"): once an erase job's recovery window has
// closed, the rows it marked are deleted or anonymized for good, children before parents, in
// batches, by the finalization phase of the one job loop (jobs/job_loop.cpp): run by a background
// worker the launcher starts, by CALL privacy.run_job, and at once at the end of an erase whose
// recovery window is zero.
//
// The executor is made by jobs::make_finalization_executor() (jobs/executor.hpp). It walks the
// relations with data/walk.hpp: a table a legal hold covers is skipped with every registered table
// it references, and the pass ends `held`; a row that cannot be finalized is flagged once in
// privacy.job_errors and passed over, and the pass ends `finalized_with_errors`.
#pragma once
