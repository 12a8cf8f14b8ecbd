#include "core/fair_scheduler.hpp"

#include <algorithm>
#include <deque>

namespace privacy::core {

namespace {

// One tenant's queue during a pick: its jobs oldest first, and how many more it may start.
struct TenantQueue {
  std::deque<long long> jobs;
  int running = 0;
  int max_concurrent = 0;  // <= 0: unlimited

  bool can_start() const {
    return !jobs.empty() && (max_concurrent <= 0 || running < max_concurrent);
  }
};

bool waited_longer(const WaitingJob& a, const WaitingJob& b) {
  if (a.queued_at_s != b.queued_at_s) return a.queued_at_s < b.queued_at_s;
  return a.job_id < b.job_id;
}

// Splits the waiting jobs into per-tenant queues, tenants ordered by their oldest job.
// Sorting all jobs once does both: a tenant is first seen at its oldest job, and its jobs are
// appended oldest first.
std::vector<TenantQueue> build_queues(std::vector<WaitingJob> waiting,
                                      const std::map<std::string, TenantLoad>& load) {
  std::sort(waiting.begin(), waiting.end(), waited_longer);
  std::vector<TenantQueue> queues;
  std::map<std::string, size_t> index_of_tenant;
  for (const WaitingJob& job : waiting) {
    auto [it, is_new] = index_of_tenant.emplace(job.tenant_id, queues.size());
    if (is_new) {
      TenantQueue queue;
      if (auto found = load.find(job.tenant_id); found != load.end()) {
        queue.running = found->second.running;
        queue.max_concurrent = found->second.max_concurrent;
      }
      queues.push_back(std::move(queue));
    }
    queues[it->second].jobs.push_back(job.job_id);
  }
  return queues;
}

}  // namespace

std::vector<long long> pick_jobs_to_start(std::vector<WaitingJob> waiting,
                                          const std::map<std::string, TenantLoad>& load,
                                          int free_slots) {
  std::vector<long long> picked;
  if (free_slots <= 0) return picked;
  std::vector<TenantQueue> queues = build_queues(std::move(waiting), load);

  // Round-robin: each round gives at most one slot to each tenant that can start a job, in
  // the fixed order of their oldest job. Stop when the slots are gone or a round starts none.
  bool started_in_round = true;
  while (started_in_round && static_cast<int>(picked.size()) < free_slots) {
    started_in_round = false;
    for (TenantQueue& queue : queues) {
      if (static_cast<int>(picked.size()) == free_slots) break;
      if (!queue.can_start()) continue;
      picked.push_back(queue.jobs.front());
      queue.jobs.pop_front();
      ++queue.running;
      started_in_round = true;
    }
  }
  return picked;
}

}  // namespace privacy::core
