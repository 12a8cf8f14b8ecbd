// Job workers (worker/dispatch.cpp, docs/jobs.md): the launcher's dispatch step and the dynamic
// background workers it starts, one per job.
#pragma once

namespace privacy::worker {

// The launcher's step "dispatching jobs": picks waiting jobs fairly across tenants and starts a
// worker for each, up to privacy.max_workers. Does nothing without shared memory. Needs SPI.
void dispatch_jobs();

}  // namespace privacy::worker
