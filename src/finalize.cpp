#include "finalize.hpp"

#include "audit.hpp"
#include "batch.hpp"
#include "holds.hpp"
#include "pg/spi.hpp"

#include <algorithm>

namespace privacy::finalize {

namespace {

struct DueJob {
  std::string tenant_id;
  std::optional<std::string> subject_id;
  std::optional<std::string> cursor_json;
  bool due;
  bool finalized;
};

DueJob load_due_job(long long job_id) {
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "SELECT tenant_id, CASE WHEN target_type OPERATOR(pg_catalog.=) 'subject'::privacy.target_type THEN target_id END,"
      "       CASE WHEN cursor OPERATOR(pg_catalog.->>) 'phase' OPERATOR(pg_catalog.=) 'finalize'"
      "            THEN cursor::pg_catalog.text END,"
      "       (kind OPERATOR(pg_catalog.=) 'erase'::privacy.job_kind"
      "        AND status OPERATOR(pg_catalog.=) 'completed'::privacy.job_status"
      "        AND recoverable_until OPERATOR(pg_catalog.<=) pg_catalog.now())::pg_catalog.text,"
      "       (finalized_at IS NOT NULL)::text"
      "  FROM privacy.jobs WHERE id OPERATOR(pg_catalog.=) $1 FOR UPDATE",
      {pg::int8_param(job_id)});
  if (rows.empty()) throw core::Error(core::sqlstate::kInvalidParameter, "job " + std::to_string(job_id) + " does not exist");
  const pg::TextRow& row = rows[0];
  return DueJob{*row[0], row[1], row[2], *row[3] == "true", *row[4] == "true"};
}

FinalizeCursor parse_cursor(const std::optional<std::string>& json) {
  FinalizeCursor cursor;
  if (!json) return cursor;
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "SELECT ($1::pg_catalog.jsonb OPERATOR(pg_catalog.->>) 'relation')::pg_catalog.oid::pg_catalog.text,"
      "       NULLIF($1::pg_catalog.jsonb OPERATOR(pg_catalog.->) 'after', 'null'::pg_catalog.jsonb)::pg_catalog.text,"
      "       COALESCE($1::pg_catalog.jsonb OPERATOR(pg_catalog.->>) 'rows', '0'),"
      "       COALESCE($1::pg_catalog.jsonb OPERATOR(pg_catalog.->>) 'failed', '0')",
      {pg::text_param(*json)});
  cursor.relation = static_cast<Oid>(std::stoul(rows[0][0].value_or("0")));
  cursor.after = rows[0][1];
  cursor.rows = std::stoll(*rows[0][2]);
  cursor.failed = std::stoll(*rows[0][3]);
  return cursor;
}

void save_cursor(long long job_id, const FinalizeCursor& cursor) {
  std::string json = "{\"phase\": \"finalize\", \"relation\": " + std::to_string(cursor.relation) +
                     ", \"after\": " + cursor.after.value_or("null") + ", \"rows\": " + std::to_string(cursor.rows) +
                     ", \"failed\": " + std::to_string(cursor.failed) + "}";
  pg::spi_execute("UPDATE privacy.jobs SET cursor = $2::pg_catalog.jsonb, updated_at = pg_catalog.now()"
                  " WHERE id OPERATOR(pg_catalog.=) $1",
                  {pg::int8_param(job_id), pg::text_param(json)});
}

void mark_finalized(long long job_id, const DueJob& job, const FinalizeCursor& cursor) {
  pg::spi_execute("UPDATE privacy.jobs SET finalized_at = pg_catalog.now(), cursor = NULL, updated_at = pg_catalog.now(),"
                  " failed_items = failed_items OPERATOR(pg_catalog.+) $2 WHERE id OPERATOR(pg_catalog.=) $1",
                  {pg::int8_param(job_id), pg::int8_param(cursor.failed)});
  audit::Entry entry;
  entry.action = "finalized";
  entry.tenant_id = job.tenant_id;
  entry.job_id = job_id;
  entry.target = job.subject_id ? "subject:" + *job.subject_id : "tenant:" + job.tenant_id;
  entry.detail_json = "{\"rows\": " + std::to_string(cursor.rows) + ", \"failed\": " + std::to_string(cursor.failed) + "}";
  audit::append(entry);
}

bool rows_still_marked(long long job_id, const std::vector<Oid>& relations) {
  for (Oid relation : relations) {
    if (batch::count_marked_rows(job_id, relation) > 0) return true;
  }
  return false;
}

}  // namespace

Progress Finalizer::step(int limit) {
  pg::SpiConnection spi;
  DueJob job = load_due_job(job_id_);
  if (job.finalized || !job.due) return job.finalized ? Progress::Done : Progress::NotDue;
  if (!loaded_) {
    relations_ = batch::relations_in_order();
    cursor_ = parse_cursor(job.cursor_json);
    loaded_ = true;
  }

  FinalizeCursor cursor = cursor_;
  auto position = std::find(relations_.begin(), relations_.end(), cursor.relation);
  if (position == relations_.end()) {  // first step, or the relation was unregistered
    position = relations_.begin();
    cursor.after.reset();
  }
  // Skip relations with nothing of this job, looking only when a relation is entered (a count per
  // batch would rescan the job's rows every time and make finalization quadratic).
  while (position != relations_.end() && !cursor.after && batch::count_marked_rows(job_id_, *position) == 0) {
    ++position;
  }
  if (position == relations_.end()) {
    if (cursor.failed > 0 && rows_still_marked(job_id_, relations_)) {
      // Finalized means gone: rows a failure set aside (a lock, a constraint) stay hidden until a
      // later run removes them. Start over then, keeping the counts.
      save_cursor(job_id_, FinalizeCursor{InvalidOid, std::nullopt, cursor.rows, cursor.failed});
      cursor_ = FinalizeCursor{InvalidOid, std::nullopt, cursor.rows, cursor.failed};
      return Progress::RowsLeft;
    }
    mark_finalized(job_id_, job, cursor);
    return Progress::Done;
  }
  if (holds::find_hold(job.tenant_id, job.subject_id, *position)) return Progress::Held;

  cursor.relation = *position;
  batch::BatchResult result = batch::finalize_batch(job_id_, *position, cursor.after, limit);
  cursor.rows += result.processed;
  cursor.failed += result.failed;
  cursor.after = result.relation_done ? std::nullopt : result.last_key;
  if (result.relation_done) {
    ++position;
    cursor.relation = position == relations_.end() ? InvalidOid : *position;
  }
  save_cursor(job_id_, cursor);
  cursor_ = cursor;
  return Progress::More;
}

}  // namespace privacy::finalize
