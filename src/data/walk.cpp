#include "data/walk.hpp"
#include "data/relation_order.hpp"

#include "citus/tables.hpp"
#include "holds/holds.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "storage/lmgr.h"
#include "utils/syscache.h"
}

namespace privacy::walk {

namespace {

// True once the relation is locked and still exists (a DROP needs a lock that conflicts with
// every lock the walk takes, so it stays until the end of the transaction).
bool exists(Oid relation) {
  return pg::pg_guard([&] { return SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relation)); });
}

// The registered parents of `relation`, transitively (the tables it references, their parents...).
std::set<Oid> ancestors(const relation_order::Graph& graph, Oid relation) {
  std::set<Oid> found;
  std::vector<Oid> pending{relation};
  while (!pending.empty()) {
    Oid next = pending.back();
    pending.pop_back();
    auto parents = graph.parents.find(next);
    if (parents == graph.parents.end()) continue;
    for (Oid parent : parents->second) {
      if (found.insert(parent).second) pending.push_back(parent);
    }
  }
  return found;
}

}  // namespace

// One query reads the whole cursor: its head (phase, rows, failed) on every row, one row per
// relation (a single row with a NULL relation when there is none).
Cursor Cursor::parse(const std::optional<std::string>& json, const std::string& phase) {
  Cursor cursor;
  cursor.phase = phase;
  if (!json) return cursor;
  pg::SpiConnection spi;
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "SELECT j.c OPERATOR(pg_catalog.->>) 'phase',"
      "       COALESCE(j.c OPERATOR(pg_catalog.->>) 'rows', '0'),"
      "       COALESCE(j.c OPERATOR(pg_catalog.->>) 'failed', '0'),"
      "       r.key,"
      "       NULLIF(r.value OPERATOR(pg_catalog.->) 'after', 'null'::pg_catalog.jsonb)::pg_catalog.text,"
      "       COALESCE((r.value OPERATOR(pg_catalog.->>) 'done')::pg_catalog.bool, false)"
      "  FROM (SELECT $1::pg_catalog.jsonb AS c) j"
      "  LEFT JOIN LATERAL pg_catalog.jsonb_each(COALESCE(j.c OPERATOR(pg_catalog.->) 'relations',"
      "                                                   '{}'::pg_catalog.jsonb)) r ON true",
      {pg::text_param(*json)});
  if (rows.empty() || rows[0][0] != phase) return cursor;
  cursor.rows = rows[0].int8(1);
  cursor.failed = rows[0].int8(2);
  for (const pg::TextRow& row : rows) {
    if (row[3]) cursor.relations[row.oid(3)] = Position{row[4], row.boolean(5)};
  }
  return cursor;
}

std::string Cursor::to_json() const {
  std::string out = "{\"phase\": \"" + phase + "\", \"relations\": {";
  bool first = true;
  for (const auto& [relation, position] : relations) {
    out += std::string(first ? "" : ", ") + "\"" + std::to_string(relation) +
           "\": {\"after\": " + position.after.value_or("null") +
           ", \"done\": " + (position.done ? "true" : "false") + "}";
    first = false;
  }
  return out + "}, \"rows\": " + std::to_string(rows) + ", \"failed\": " + std::to_string(failed) +
         "}";
}

void Walk::start(const jobs::Job& job, bool from_scratch) {
  graph_ = relation_order::graph();
  cursor_ = Cursor::parse(from_scratch ? std::nullopt : job.cursor_json, phase_);
  held_.clear();
  entered_.clear();
}

long long Walk::remaining(const jobs::Job& job, RelationAction& action) {
  long long total = 0;
  for (Oid relation : graph_.order) {
    const Position& position = cursor_.relations[relation];
    if (position.done) continue;
    std::optional<registry::TableInfo> table = registry::described_table(relation);
    if (table) total += action.count(*table, position.after);
  }
  return total;
}

bool Walk::lock(Oid relation, bool may_wait) {
  LOCKMODE mode = holds_ == HoldPolicy::Ignore ? AccessShareLock : RowExclusiveLock;
  if (may_wait) {
    pg::pg_guard([&] { LockRelationOid(relation, mode); });
    return true;
  }
  return pg::pg_guard([&] { return ConditionalLockRelationOid(relation, mode); });
}

bool Walk::skipped_for_hold(Oid relation) const {
  for (Oid held : held_) {
    if (held == relation || ancestors(graph_, held).count(relation)) return true;
  }
  return false;
}

Step Walk::step(const jobs::Job& job, RelationAction& action, int limit) {
  Step step;
  bool locked_one = false;  // this batch holds a relation's lock already
  for (Oid relation : graph_.order) {
    Position& position = cursor_.relations[relation];
    if (position.done || skipped_for_hold(relation)) continue;
    int room = limit - static_cast<int>(step.processed + step.failed);
    if (room <= 0) break;
    if (!lock(relation, !locked_one)) break;  // the next batch waits for it, holding nothing else
    locked_one = true;
    std::optional<registry::TableInfo> table;
    if (exists(relation)) table = registry::described_table(relation);
    if (!table) {  // dropped or unregistered since the run started: nothing left to do there
      position.done = true;
      continue;
    }
    if (holds_ != HoldPolicy::Ignore) {
      citus_tables::require_verified(
          relation, table->display,
          std::string(core::to_string(job.kind)) + " job " + std::to_string(job.id));
      std::optional<holds::HoldInfo> hold = holds::find_hold(job.tenant_id, job.subject, relation);
      if (hold && holds_ == HoldPolicy::Fail) {
        std::string what = std::string(core::to_string(job.kind)) + " job " +
                           std::to_string(job.id) + " on " + table->display;
        holds::report_blocked(what, job.tenant_id, relation, *hold);
        holds::raise_hold_error(what, *hold);
      }
      if (hold) {  // HoldPolicy::Skip: the relation waits, unless the job left nothing in it
        if (action.count(*table, position.after) == 0) {
          position.done = true;
        } else {
          held_.insert(relation);
        }
        continue;
      }
    }
    if (entered_.insert(relation).second) action.enter(*table);
    batch::BatchResult result = action.run(*table, position.after, room);
    step.processed += result.processed;
    step.failed += result.failed;
    position.after = result.last_key;
    if (result.relation_done) {
      position.done = true;
      action.leave(*table);
    } else if (result.processed + result.failed == 0) {
      break;  // nothing movable now: the next batch goes on from here
    }
  }
  cursor_.rows += step.processed;
  cursor_.failed += step.failed;
  step.finished = !current().has_value();
  step.held = step.finished && !held_.empty();
  return step;
}

std::optional<Oid> Walk::current() const {
  for (Oid relation : graph_.order) {
    auto position = cursor_.relations.find(relation);
    bool done = position != cursor_.relations.end() && position->second.done;
    if (!done && !skipped_for_hold(relation)) return relation;
  }
  return std::nullopt;
}

std::optional<Oid> Walk::stuck_relation(RelationAction& action) {
  for (Oid relation : graph_.order) {
    Position& position = cursor_.relations[relation];
    if (position.done || skipped_for_hold(relation)) continue;
    std::optional<registry::TableInfo> table;
    if (exists(relation)) table = registry::described_table(relation);
    if (table && action.count(*table, position.after) > 0) return relation;
    position.done = true;  // nothing left there (or gone): not where the runs got stuck
  }
  return std::nullopt;
}

std::set<Oid> kept_by_holds(const jobs::Job& job, const relation_order::Graph& graph) {
  std::set<Oid> kept;
  for (Oid relation : graph.order) {
    if (!holds::find_hold(job.tenant_id, job.subject, relation)) continue;
    kept.insert(relation);
    std::set<Oid> referenced = ancestors(graph, relation);
    kept.insert(referenced.begin(), referenced.end());
  }
  return kept;
}

bool finalization_can_resume(const jobs::Job& job) {
  Cursor cursor = Cursor::parse(job.cursor_json, "finalize");
  relation_order::Graph graph = relation_order::graph();
  std::set<Oid> kept = kept_by_holds(job, graph);
  for (Oid relation : graph.order) {
    auto position = cursor.relations.find(relation);
    bool done = position != cursor.relations.end() && position->second.done;
    if (!done && !kept.count(relation)) return true;
  }
  return false;
}

}  // namespace privacy::walk
