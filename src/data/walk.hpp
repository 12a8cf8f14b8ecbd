// The one relation walk shared by every phase of every job (docs/jobs.md, "How a job runs"):
// erase (mark), purge, export (read) and finalization visit the registered relations in
// foreign-key order, children first, each with a keyset cursor. Only the action per relation
// differs between them (RelationAction).
//
// The walk keeps its position per relation, so that a relation can be skipped (a legal hold
// during finalization) and come back later, a relation that no longer exists (dropped, or
// unregistered) is passed over, a renamed one is followed by its OID, and a resumed run goes on
// exactly after its last committed batch.
//
// Legal holds are checked under the lock the batch takes: before a batch writes to a relation it
// takes the relation's ROW EXCLUSIVE lock, which conflicts with the SHARE ROW EXCLUSIVE lock
// privacy.place_hold holds until its hold commits; only then does it look for a covering hold
// (with the latest snapshot). A hold that commits while a batch runs is therefore seen by the
// next batch, before it changes a row (docs/legal-holds.md, "Timing").
#pragma once

#include "data/batch.hpp"
#include "data/relation_order.hpp"
#include "jobs/jobs.hpp"
#include "data/registry.hpp"

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace privacy::walk {

// Where the walk stands in one relation: after which key, and whether it is done.
struct Position {
  std::optional<std::string> after;  // key object (jsonb text); nullopt: from the start
  bool done = false;
};

// The walk's position, kept in privacy.jobs.cursor and committed with every batch:
//   {"phase": "mark", "relations": {"16384": {"after": {"id": "42"}, "done": false}, ...},
//    "rows": 120, "failed": 1}
// A relation that is not listed has not been entered yet. rows and failed count what this phase
// has done over all its runs (the finalization reports them when its pass ends).
struct Cursor {
  std::string phase;
  std::map<Oid, Position> relations;
  long long rows = 0;
  long long failed = 0;

  // The cursor of `phase` in `json`; an empty one when json is NULL or belongs to another phase
  // (a finalization starts afresh after the erase's own cursor). Needs SPI.
  static Cursor parse(const std::optional<std::string>& json, const std::string& phase);
  std::string to_json() const;
};

// What a legal hold covering a relation does to the walk: the request of an erase or purge fails
// with PV001 (naming the hold), the finalization skips the relation and every registered table it
// references (deleting those would fail or cascade into held rows), the export reads anyway.
enum class HoldPolicy { Fail, Skip, Ignore };

// What one kind of job does in one relation.
class RelationAction {
 public:
  virtual ~RelationAction() = default;
  // Items left in `table` after `after` (everything when nullopt).
  virtual long long count(const registry::TableInfo& table,
                          const std::optional<std::string>& after) = 0;
  // One batch of at most `limit` items after `after`.
  virtual batch::BatchResult run(const registry::TableInfo& table,
                                 const std::optional<std::string>& after, int limit) = 0;
  // Called before the first batch of a relation in a run, and after its last (the export opens
  // and closes the table's part of the document).
  virtual void enter(const registry::TableInfo&) {}
  virtual void leave(const registry::TableInfo&) {}
};

// What one step of the walk did.
struct Step {
  long long processed = 0;
  long long failed = 0;
  bool finished = false;  // every relation is done, or skipped for a hold
  bool held = false;      // finished, but some relation was skipped for a hold
};

class Walk {
 public:
  Walk(std::string phase, HoldPolicy holds) : phase_(std::move(phase)), holds_(holds) {}

  // First transaction of a run: lists the relations in order and reads the job's cursor (or
  // starts afresh). Needs SPI.
  void start(const jobs::Job& job, bool from_scratch);

  // Items left after the cursor, over every relation not done.
  long long remaining(const jobs::Job& job, RelationAction& action);

  // One batch of at most `limit` items, filling it across relations (a relation with few rows
  // does not cost a batch of its own), in the current transaction.
  Step step(const jobs::Job& job, RelationAction& action, int limit);

  // The relation the walk would work on next (nullopt: the walk is finished).
  std::optional<Oid> current() const;

  // The relation runs that died got stuck on: the first one not done, not held, that still has
  // items after its position. Relations before it with nothing left are marked done on the way:
  // a dying batch rolls back the "done" of the empty relations it went through before reaching
  // the stuck one, and those must not be blamed. Needs SPI.
  std::optional<Oid> stuck_relation(RelationAction& action);
  // Passing a relation over (the finalization, after privacy.max_attempts failed runs): done.
  void pass_over(Oid relation) { cursor_.relations[relation].done = true; }

  const Cursor& cursor() const { return cursor_; }
  const std::vector<Oid>& relations() const { return graph_.order; }

 private:
  bool skipped_for_hold(Oid relation) const;
  // Locks the relation for this transaction's batch (see the header comment). Waits only while
  // the batch holds no other relation's lock, so that it cannot deadlock with place_hold, which
  // locks every registered table: false when the lock would have to be waited for.
  bool lock(Oid relation, bool may_wait);

  std::string phase_;
  HoldPolicy holds_;
  relation_order::Graph graph_;
  Cursor cursor_;
  std::set<Oid> held_;     // skipped for a hold in this run (finalization)
  std::set<Oid> entered_;  // enter() called in this run
};

// The registered relations a legal hold keeps from the job's finalization: those a hold covering
// the job's target covers, and every registered table they reference (transitively). Needs SPI.
std::set<Oid> kept_by_holds(const jobs::Job& job, const relation_order::Graph& graph);

// For the launcher: whether the held finalization of `job` can go on now, that is some relation
// it has not finished is not kept by a hold. Needs SPI.
bool finalization_can_resume(const jobs::Job& job);

}  // namespace privacy::walk
