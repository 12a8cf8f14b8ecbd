// Executors of erase and purge jobs: walk every registered relation in order (children before
// parents) and run batch::mark_batch (erase) or batch::purge_batch (purge) on the target's rows.
// The position is the relation and the last key, kept in privacy.jobs.cursor as
//   {"relation": <oid>, "after": <last key, jsonb, or null>}
// so a resumed job continues exactly after its last committed batch.
#include "batch.hpp"
#include "core/json.hpp"
#include "job_executor.hpp"
#include "pg/spi.hpp"

#include <algorithm>
#include <map>

namespace privacy::jobs {

namespace {

struct Position {
  size_t relation_index = 0;
  std::optional<std::string> after;
};

batch::Target target_of(const JobInfo& job) {
  return batch::Target{job.id, job.tenant_id,
                       job.target_type == "subject" ? std::optional<std::string>(job.target_id) : std::nullopt};
}

// Finds where a cursor points in the current relation list (registrations may have changed
// since it was written: a relation that is gone is skipped).
Position parse_position(const std::optional<std::string>& cursor_json, const std::vector<Oid>& relations) {
  Position position;
  if (!cursor_json) return position;
  pg::SpiConnection spi;
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "SELECT ($1::pg_catalog.jsonb OPERATOR(pg_catalog.->>) 'relation')::pg_catalog.oid::pg_catalog.text,"
      "       NULLIF($1::pg_catalog.jsonb OPERATOR(pg_catalog.->) 'after', 'null'::pg_catalog.jsonb)::pg_catalog.text",
      {pg::text_param(*cursor_json)});
  Oid relation = static_cast<Oid>(std::stoul(rows[0][0].value_or("0")));
  auto found = std::find(relations.begin(), relations.end(), relation);
  position.relation_index = static_cast<size_t>(found - relations.begin());
  if (found != relations.end()) position.after = rows[0][1];
  return position;
}

std::string position_json(const std::vector<Oid>& relations, const Position& position) {
  Oid relation = position.relation_index < relations.size() ? relations[position.relation_index] : InvalidOid;
  return "{\"relation\": " + std::to_string(relation) + ", \"after\": " + position.after.value_or("null") + "}";
}

std::string relation_name(Oid relation) {
  pg::SpiConnection spi;
  return pg::spi_query_text("SELECT $1::pg_catalog.oid::pg_catalog.regclass::pg_catalog.text",
                            {pg::int8_param(static_cast<long long>(relation))})
      .value_or(std::to_string(relation));
}

// The shared walk; subclasses say how to count and how to do one batch in one relation.
class RelationWalk : public JobExecutor {
 public:
  RunStart begin(const JobInfo& job) override {
    relations_ = batch::relations_in_order();
    long long remaining = 0;
    for (Oid relation : relations_) remaining += count(target_of(job), relation);
    return RunStart{job.processed_items + job.failed_items + remaining, false};
  }

  BatchStep run_batch(const JobInfo& job, int limit) override {
    // The position this run committed last is kept in memory (the job's counts show that the
    // row still holds it); the cursor in the job row is parsed only on a run's first batch.
    Position position = have_position_ && job.processed_items + job.failed_items == done_after_last_batch_
                            ? last_position_
                            : parse_position(job.cursor_json, relations_);
    BatchStep step;
    // Fill the batch across relations: a relation with few rows does not cost a batch of its own.
    while (position.relation_index < relations_.size() && step.processed + step.failed < limit) {
      Oid relation = relations_[position.relation_index];
      int room = limit - static_cast<int>(step.processed + step.failed);
      batch::BatchResult result = run(target_of(job), relation, position.after, room);
      step.processed += result.processed;
      step.failed += result.failed;
      rows_by_relation_[relation] += result.processed;
      if (result.relation_done) {
        ++position.relation_index;
        position.after.reset();
      } else {
        position.after = result.last_key;
        if (result.processed + result.failed == 0) break;  // nothing movable now: next batch
      }
    }
    step.done = position.relation_index >= relations_.size();
    step.cursor_json = position_json(relations_, position);
    last_position_ = position;
    have_position_ = true;
    done_after_last_batch_ = job.processed_items + job.failed_items + step.processed + step.failed;
    return step;
  }

  std::string finish(const JobInfo& job) override {
    std::string tables = "[";
    bool first = true;
    for (Oid relation : relations_) {
      if (!first) tables += ", ";
      first = false;
      tables += "{\"table\": " + core::json_string(relation_name(relation)) +
                ", \"rows_this_run\": " + std::to_string(rows_by_relation_[relation]) + "}";
    }
    return "{\"kind\": " + core::json_string(kind_name()) + ", \"tables\": " + tables + "]}";
  }

 protected:
  virtual long long count(const batch::Target& target, Oid relation) = 0;
  virtual batch::BatchResult run(const batch::Target& target, Oid relation,
                                 const std::optional<std::string>& after, int limit) = 0;
  virtual const char* kind_name() const = 0;

 private:
  std::vector<Oid> relations_;
  std::map<Oid, long long> rows_by_relation_;
  Position last_position_;
  bool have_position_ = false;
  long long done_after_last_batch_ = 0;
};

class EraseExecutor final : public RelationWalk {
 protected:
  long long count(const batch::Target& target, Oid relation) override { return batch::count_rows_to_mark(target, relation); }
  batch::BatchResult run(const batch::Target& target, Oid relation, const std::optional<std::string>& after,
                         int limit) override {
    return batch::mark_batch(target, relation, after, limit);
  }
  const char* kind_name() const override { return "erase"; }
};

class PurgeExecutor final : public RelationWalk {
 protected:
  long long count(const batch::Target& target, Oid relation) override { return batch::count_rows_to_purge(target, relation); }
  batch::BatchResult run(const batch::Target& target, Oid relation, const std::optional<std::string>& after,
                         int limit) override {
    return batch::purge_batch(target, relation, after, limit);
  }
  const char* kind_name() const override { return "purge"; }
};

ExecutorRegistration erase_registration(core::JobKind::Erase, [] {
  return std::unique_ptr<JobExecutor>(std::make_unique<EraseExecutor>());
});
ExecutorRegistration purge_registration(core::JobKind::Purge, [] {
  return std::unique_ptr<JobExecutor>(std::make_unique<PurgeExecutor>());
});

}  // namespace

}  // namespace privacy::jobs
