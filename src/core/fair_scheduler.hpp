// Which waiting jobs the launcher starts now (docs/jobs.md, "How a job runs").
//
// Free worker slots are shared fairly across tenants: round-robin, one job per tenant per
// round, the tenant whose oldest job has waited longest going first in every round. Within a
// tenant the oldest job goes first. A tenant already running max_concurrent jobs is skipped.
// So one tenant with a thousand queued jobs cannot starve another tenant's single job.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace privacy::core {

struct WaitingJob {
  long long job_id;
  std::string tenant_id;
  double queued_at_s;  // when it became approved; smaller = waiting longer
};

struct TenantLoad {
  int running;         // jobs of this tenant being processed now
  int max_concurrent;  // the tenant's max_concurrent_jobs; <= 0 means no per-tenant limit
};

// The job ids to start, in the order to start them, at most free_slots of them.
// Ties in queued_at_s are broken by the smaller job id (for jobs and for tenants alike).
// A tenant missing from `load` runs nothing and has no limit. free_slots <= 0 starts nothing.
std::vector<long long> pick_jobs_to_start(std::vector<WaitingJob> waiting,
                                          const std::map<std::string, TenantLoad>& load,
                                          int free_slots);

}  // namespace privacy::core
