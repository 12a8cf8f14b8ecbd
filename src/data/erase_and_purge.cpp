// Executors of erase and purge requests: the relation walk (data/walk.hpp) with
// batch::Operation::Mark (erase: sets privacy_erased_by) or batch::Operation::Purge (deletes the
// target's rows). A legal hold covering the next relation fails the job (PV001); the position is
// the walk's cursor, so a resumed job continues exactly after its last committed batch.
#include "data/batch.hpp"
#include "core/json.hpp"
#include "jobs/executor.hpp"
#include "pg/spi.hpp"
#include "data/walk.hpp"

#include <map>

namespace privacy::jobs {

namespace {

// Marks (erase) or deletes (purge) the target's rows, counting them per relation for the result.
class ModifyAction final : public walk::RelationAction {
 public:
  ModifyAction(const Job& job, batch::Operation operation) : job_(job), operation_(operation) {}
  void use(const Job& job) { job_ = job; }

  long long count(const registry::TableInfo& table,
                  const std::optional<std::string>& after) override {
    return batch::count_rows(job_, table, operation_, after);
  }
  batch::BatchResult run(const registry::TableInfo& table, const std::optional<std::string>& after,
                         int limit) override {
    batch::BatchResult result = batch::run_batch(job_, table, operation_, after, limit);
    rows_by_relation_[table.relid] += result.processed;
    return result;
  }
  long long rows_in(Oid relation) const {
    auto found = rows_by_relation_.find(relation);
    return found == rows_by_relation_.end() ? 0 : found->second;
  }

 private:
  Job job_;
  batch::Operation operation_;
  std::map<Oid, long long> rows_by_relation_;
};

class ModifyExecutor final : public PhaseExecutor {
 public:
  explicit ModifyExecutor(batch::Operation operation)
      : walk_(std::string(batch::phase_name(operation)), walk::HoldPolicy::Fail),
        action_(Job{}, operation) {}

  // The items left after the cursor, plus what earlier runs did: total_items never counts a row
  // twice, even one an earlier run flagged.
  RunStart begin(const Job& job) override {
    action_.use(job);
    walk_.start(job, false);
    return RunStart{job.processed_items + job.failed_items + walk_.remaining(job, action_), false};
  }

  BatchStep run_batch(const Job& job, int limit) override {
    action_.use(job);
    walk::Step step = walk_.step(job, action_, limit);
    return BatchStep{step.processed, step.failed, walk_.cursor().to_json(), step.finished, false};
  }

  std::string finish(const Job& job) override {
    std::string tables = "[";
    pg::SpiConnection spi;
    for (Oid relation : walk_.relations()) {
      tables +=
          std::string(tables.size() > 1 ? ", " : "") + "{\"table\": " +
          core::json_string(
              pg::spi_query_text("SELECT $1::pg_catalog.oid::pg_catalog.regclass::pg_catalog.text",
                                 {pg::int8_param(static_cast<long long>(relation))})
                  .value_or(std::to_string(relation))) +
          ", \"rows_this_run\": " + std::to_string(action_.rows_in(relation)) + "}";
    }
    std::string kind(core::to_string(job.kind));
    return "{\"kind\": " + core::json_string(kind) + ", \"tables\": " + tables + "]}";
  }

 private:
  walk::Walk walk_;
  ModifyAction action_;
};

}  // namespace

std::unique_ptr<PhaseExecutor> make_erase_executor() {
  return std::make_unique<ModifyExecutor>(batch::Operation::Mark);
}

// A restriction (GDPR Art. 18) marks the subject's rows with its own job id: the same RLS policy
// hides them, and no finalization ever touches them (docs/jobs.md, "Restriction of processing");
// privacy.lift_restriction clears the mark.
std::unique_ptr<PhaseExecutor> make_restrict_executor() {
  return std::make_unique<ModifyExecutor>(batch::Operation::Mark);
}

std::unique_ptr<PhaseExecutor> make_purge_executor() {
  return std::make_unique<ModifyExecutor>(batch::Operation::Purge);
}

}  // namespace privacy::jobs
