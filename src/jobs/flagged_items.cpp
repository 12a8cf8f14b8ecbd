// Flagged items (docs/jobs.md, "Flagged items"): privacy.retry_items re-runs the action of a
// job's open items once their cause is fixed; privacy.resolve_item records a person's decision
// on one. Both are privacy_admin's, audited, and close the finalization (finalized_with_errors ->
// finalized) when the last open item of the job goes.
//
// Items are few (a row is flagged once and passed over), so retry_items works synchronously, in
// the caller's transaction: each row in its own subtransaction, as the table's owner, with the
// search_path pinned by the function's SET clause. A table a finalization passed over as a whole
// (row_key NULL) is handed back to the finalization runner instead (finalization -> finalizing).
#include "audit/audit.hpp"
#include "data/batch.hpp"
#include "citus/node.hpp"
#include "core/json.hpp"
#include "holds/holds.hpp"
#include "jobs/jobs.hpp"
#include "pg/boundary.hpp"
#include "pg/spi.hpp"
#include "data/walk.hpp"

extern "C" {
#include "funcapi.h"
#include "storage/lmgr.h"
}

namespace {

namespace pg = privacy::pg;
namespace jobs = privacy::jobs;
namespace batch = privacy::batch;
using privacy::core::Error;
using privacy::core::FinalizationState;
using privacy::core::JobAction;
namespace sqlstate = privacy::core::sqlstate;

struct Item {
  long long id;
  Oid relation;
  std::optional<std::string> row_key;
  batch::Operation phase;
  int attempt;
};

std::vector<Item> open_items_of(long long job_id) {
  std::vector<Item> items;
  for (
      const pg::TextRow& row : pg::spi_query_rows(
          "SELECT id::pg_catalog.text, relation::pg_catalog.oid::pg_catalog.text, row_key::pg_catalog.text, phase,"
          "       attempt::pg_catalog.text FROM privacy.job_errors"
          " WHERE job_id OPERATOR(pg_catalog.=) $1 AND resolution IS NULL ORDER BY id FOR UPDATE",
          {pg::int8_param(job_id)}, false)) {
    items.push_back(
        Item{row.int8(0), row.oid(1), row[2], *batch::parse_phase(row.text(3)), row.int4(4)});
  }
  return items;
}

// Items are retried only while no runner works on the job.
void ensure_not_running(const jobs::Job& job) {
  using privacy::core::JobStatus;
  std::string id = std::to_string(job.id);
  if (!privacy::core::is_stopped(job.state.status)) {
    throw Error(sqlstate::kObjectNotInPrerequisiteState,
                "job " + id + " is " + std::string(privacy::core::to_string(job.state.status)) +
                    ": its flagged items are retried once it stops",
                "", "Wait for it to complete, or privacy.cancel(" + id + ", reason) it.");
  }
  if (job.state.finalization == FinalizationState::Finalizing) {
    throw Error(
        sqlstate::kObjectNotInPrerequisiteState,
        "job " + id + " is being finalized: its flagged items are retried once the pass ends", "",
        "Watch privacy.job_overview until its finalization is finalized_with_errors or held.");
  }
}

// A hold over any item's table refuses the whole call, after the lock a batch takes
// (docs/legal-holds.md, "Timing"): nothing is retried under a hold.
void ensure_items_not_held(const jobs::Job& job, const std::vector<Item>& items) {
  for (const Item& item : items) {
    pg::pg_guard([&] { LockRelationOid(item.relation, RowExclusiveLock); });
    std::optional<privacy::holds::HoldInfo> hold =
        privacy::holds::find_hold(job.tenant_id, job.subject, item.relation);
    if (!hold) continue;
    std::string what = "retrying the flagged items of job " + std::to_string(job.id);
    privacy::holds::report_blocked(what, job.tenant_id, item.relation, *hold);
    privacy::holds::raise_hold_error(what, *hold);
  }
}

void close_item(long long item_id, const std::string& resolution,
                const std::optional<std::string>& note) {
  pg::spi_execute(
      "UPDATE privacy.job_errors SET resolution = $2, resolved_by = session_user,"
      " resolved_at = pg_catalog.now(), note = $3 WHERE id OPERATOR(pg_catalog.=) $1",
      {pg::int8_param(item_id), pg::text_param(resolution), pg::text_param(note)});
}

// A table the finalization passed over as a whole goes back to its runner: not done in the
// finalization's cursor, from where it stopped.
void hand_back_table(const jobs::Job& job, Oid relation) {
  privacy::walk::Cursor cursor = privacy::walk::Cursor::parse(job.cursor_json, "finalize");
  cursor.relations[relation].done = false;
  pg::spi_execute(
      "UPDATE privacy.jobs SET cursor = $2::pg_catalog.jsonb WHERE id OPERATOR(pg_catalog.=) $1",
      {pg::int8_param(job.id), pg::text_param(cursor.to_json())});
}

// When the last open item of a finalized_with_errors job goes, it is finalized.
void finalize_if_clear(long long job_id) {
  jobs::Job job = jobs::load(job_id, jobs::Lock::ForUpdate);
  if (job.state.finalization == FinalizationState::FinalizedWithErrors &&
      jobs::open_items(job_id) == 0) {
    jobs::transition(job, {JobAction::ClearItems, std::nullopt, "{\"items_cleared\": true}"});
  }
}

struct RetryCounts {
  long long items = 0;
  long long succeeded = 0;
  long long failed_again = 0;
};

RetryCounts retry_items(long long job_id) {
  pg::SpiConnection spi;
  jobs::Job job = jobs::load_for_caller(job_id, jobs::Lock::ForUpdate, std::string("decide"),
                                        "privacy.retry_items");
  ensure_not_running(job);
  std::vector<Item> items = open_items_of(job_id);
  ensure_items_not_held(job, items);
  bool finalization_begun =
      job.state.finalization && *job.state.finalization != FinalizationState::AwaitingWindow;
  bool handed_back = false;
  RetryCounts counts;
  for (const Item& item : items) {
    ++counts.items;
    std::optional<privacy::registry::TableInfo> table =
        privacy::registry::load_table(item.relation);
    if (!table) {
      close_item(item.id, "retried", std::string("the table is no longer registered"));
      ++counts.succeeded;
      continue;
    }
    if (!item.row_key) {
      hand_back_table(job, item.relation);
      close_item(item.id, "retried", std::string("handed back to the finalization"));
      handed_back = true;
      ++counts.succeeded;
      continue;
    }
    bool finalize_too = item.phase == batch::Operation::Mark && finalization_begun;
    std::optional<Error> failure =
        batch::redo_item(job, *table, item.phase, *item.row_key, finalize_too);
    if (!failure) {
      close_item(item.id, "retried", std::nullopt);
      ++counts.succeeded;
      continue;
    }
    close_item(item.id, "superseded", std::nullopt);
    batch::record_item(job_id, item.relation, item.phase, item.row_key, item.attempt + 1, *failure);
    ++counts.failed_again;
  }
  privacy::audit::Entry entry =
      jobs::job_audit_entry(job, "items_retried",
                            "{\"items\": " + std::to_string(counts.items) +
                                ", \"succeeded\": " + std::to_string(counts.succeeded) +
                                ", \"failed_again\": " + std::to_string(counts.failed_again) + "}");
  entry.outcome = counts.failed_again > 0 ? "partial" : "ok";
  privacy::audit::append(entry);
  if (handed_back && job.state.finalization == FinalizationState::FinalizedWithErrors) {
    jobs::transition(
        jobs::load(job_id, jobs::Lock::ForUpdate),
        {JobAction::ResumeFinalization, std::nullopt, "{\"tables_handed_back\": true}"});
  } else {
    finalize_if_clear(job_id);
  }
  return counts;
}

}  // namespace

// privacy.retry_items(job_id bigint, OUT items bigint, OUT succeeded bigint, OUT failed_again
// bigint)
PRIVACY_SQL_FUNCTION(privacy_retry_items) {
  privacy::citus_node::refuse_on_worker_node("privacy.retry_items");
  RetryCounts counts = retry_items(pg::int8_arg(fcinfo, 0, "job_id"));
  return pg::pg_guard([&] {
    TupleDesc descriptor;
    if (get_call_result_type(fcinfo, nullptr, &descriptor) != TYPEFUNC_COMPOSITE) {
      elog(ERROR, "privacy.retry_items must return a record");
    }
    Datum values[3] = {Int64GetDatum(counts.items), Int64GetDatum(counts.succeeded),
                       Int64GetDatum(counts.failed_again)};
    bool nulls[3] = {false, false, false};
    return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(descriptor), values, nulls));
  });
}

// privacy.resolve_item(error_id bigint, note text): a person's decision on a flagged item (deleted
// by hand, kept on purpose, ...), recorded with session_user and the note.
PRIVACY_SQL_FUNCTION(privacy_resolve_item) {
  privacy::citus_node::refuse_on_worker_node("privacy.resolve_item");
  long long item_id = pg::int8_arg(fcinfo, 0, "error_id");
  std::optional<std::string> note = pg::optional_text_arg(fcinfo, 1);
  if (!note || note->find_first_not_of(" \t\r\n") == std::string::npos) {
    throw Error(
        sqlstate::kInvalidParameter,
        "resolving flagged item " + std::to_string(item_id) + " needs a note", "",
        "Say what was decided, e.g. 'row deleted by hand, ticket 4711' or 'kept: legal obligation'.");
  }
  pg::SpiConnection spi;
  std::optional<long long> job_id =
      pg::spi_query_int8("SELECT job_id FROM privacy.job_errors WHERE id OPERATOR(pg_catalog.=) $1",
                         {pg::int8_param(item_id)});
  if (!job_id) {
    throw Error(sqlstate::kInvalidParameter,
                "flagged item " + std::to_string(item_id) + " does not exist", "",
                "SELECT * FROM privacy.job_errors WHERE resolution IS NULL lists the open items.");
  }
  jobs::Job job = jobs::load_for_caller(*job_id, jobs::Lock::ForUpdate, std::string("decide"),
                                        "privacy.resolve_item");
  std::vector<pg::TextRow> item = pg::spi_query_rows(
      "SELECT resolution, resolved_by, resolved_at::pg_catalog.text, relation::pg_catalog.text, phase"
      "  FROM privacy.job_errors WHERE id OPERATOR(pg_catalog.=) $1 FOR UPDATE",
      {pg::int8_param(item_id)}, false);
  if (item[0][0]) {
    throw Error(sqlstate::kObjectNotInPrerequisiteState,
                "flagged item " + std::to_string(item_id) + " was already closed (" + *item[0][0] +
                    ") by " + item[0][1].value_or("?") + " at " + item[0][2].value_or("?"),
                "", "Only open items (resolution IS NULL) can be resolved.");
  }
  close_item(item_id, "resolved", note);
  privacy::audit::append(
      jobs::job_audit_entry(job, "item_resolved",
                            privacy::core::json_object({{"item", std::to_string(item_id)},
                                                        {"relation", item[0][3]},
                                                        {"phase", item[0][4]},
                                                        {"note", note}})));
  finalize_if_clear(*job_id);
  return (Datum)0;
}
