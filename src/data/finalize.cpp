#include "data/finalize.hpp"

#include "data/batch.hpp"
#include "jobs/executor.hpp"
#include "data/walk.hpp"

namespace privacy::jobs {

namespace {

// Deletes ('delete' tables) or anonymizes ('anonymize' tables) the rows the job marked.
class FinalizeAction final : public walk::RelationAction {
 public:
  void use(const Job& job) { job_ = job; }
  long long count(const registry::TableInfo& table,
                  const std::optional<std::string>& after) override {
    return batch::count_rows(job_, table, batch::Operation::Finalize, after);
  }
  batch::BatchResult run(const registry::TableInfo& table, const std::optional<std::string>& after,
                         int limit) override {
    return batch::run_batch(job_, table, batch::Operation::Finalize, after, limit);
  }

 private:
  Job job_;
};

class FinalizeExecutor final : public PhaseExecutor {
 public:
  // No count of the rows left: the finalization's progress is its cursor ("rows"), and counting
  // every marked row (an index scan of all of them, heap visits included while the visibility
  // map is not set yet) cost a 1M-row finalization a fixed second before its first batch.
  RunStart begin(const Job& job) override {
    action_.use(job);
    walk_.start(job, false);
    return RunStart{0, false};
  }

  BatchStep run_batch(const Job& job, int limit) override {
    action_.use(job);
    walk::Step step = walk_.step(job, action_, limit);
    return BatchStep{step.processed, step.failed, walk_.cursor().to_json(), step.finished,
                     step.held};
  }

  // The audit detail of the pass: rows finalized and flagged over all its runs.
  std::string finish(const Job&) override {
    return "{\"rows\": " + std::to_string(walk_.cursor().rows) +
           ", \"failed\": " + std::to_string(walk_.cursor().failed) + "}";
  }

  std::optional<std::string> pass_over_current(const Job& job, const core::Error& why) override {
    action_.use(job);
    std::optional<Oid> relation = walk_.stuck_relation(action_);
    if (!relation) return std::nullopt;
    batch::record_item(job.id, *relation, batch::Operation::Finalize, std::nullopt, 1, why);
    walk_.pass_over(*relation);
    return walk_.cursor().to_json();
  }

 private:
  walk::Walk walk_{"finalize", walk::HoldPolicy::Skip};
  FinalizeAction action_;
};

}  // namespace

std::unique_ptr<PhaseExecutor> make_finalization_executor() {
  return std::make_unique<FinalizeExecutor>();
}

}  // namespace privacy::jobs
