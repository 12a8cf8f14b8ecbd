// Soft-delete through row-level security (DESIGN section 5), and privacy.restore.
//
// Why RESTRICTIVE: permissive policies are OR-ed together, so a permissive "not erased" policy
// would widen a table's own tenant-isolation policy. Restrictive policies are AND-ed with the
// result of the permissive ones, so privacy_hide_erased can only ever hide rows.
// Why FORCE: without it the table owner bypasses every policy, and applications often connect as
// the owner. Superusers and BYPASSRLS roles still see everything; the batches rely on that.
#include "softdelete.hpp"

#include "audit.hpp"
#include "batch.hpp"
#include "citus_node.hpp"
#include "ddl_guard.hpp"
#include "pg/boundary.hpp"
#include "pg/spi.hpp"

namespace privacy::softdelete {

void add_erased_column(const std::string& qualified, const std::string& key_columns_sql) {
  ddl_guard::OwnDdl own;
  pg::spi_execute("ALTER TABLE " + qualified + " ADD COLUMN privacy_erased_by bigint");
  pg::spi_execute("CREATE INDEX ON " + qualified + " (privacy_erased_by, " + key_columns_sql +
                  ") WHERE privacy_erased_by IS NOT NULL");
}

void drop_erased_column(const std::string& qualified) {
  ddl_guard::OwnDdl own;
  // Dropping the column drops the partial index on it too.
  pg::spi_execute("ALTER TABLE " + qualified + " DROP COLUMN IF EXISTS privacy_erased_by");
}

void hide_erased_rows(const std::string& qualified, bool had_rls, bool had_force_rls) {
  ddl_guard::OwnDdl own;
  pg::spi_execute("CREATE POLICY privacy_hide_erased ON " + qualified +
                  " AS RESTRICTIVE FOR ALL TO PUBLIC USING (privacy_erased_by IS NULL)");
  if (!had_rls) {
    pg::spi_execute("CREATE POLICY privacy_passthrough ON " + qualified +
                    " AS PERMISSIVE FOR ALL TO PUBLIC USING (true) WITH CHECK (true)");
  }
  pg::spi_execute("ALTER TABLE " + qualified + " ENABLE ROW LEVEL SECURITY");
  pg::spi_execute("ALTER TABLE " + qualified + " FORCE ROW LEVEL SECURITY");
  if (had_rls && !had_force_rls) {
    std::string message = "row level security of " + qualified + " is now FORCEd: its owner is subject to its policies too";
    pg::pg_guard([&] {
      ereport(NOTICE, (errmsg("%s", message.c_str()),
                       errdetail("An application connecting as the owner now sees only what the table's policies allow it.")));
    });
  }
}

void show_all_rows(const std::string& qualified, bool had_rls, bool had_force_rls) {
  ddl_guard::OwnDdl own;
  pg::spi_execute("DROP POLICY IF EXISTS privacy_hide_erased ON " + qualified);
  if (!had_rls) pg::spi_execute("DROP POLICY IF EXISTS privacy_passthrough ON " + qualified);
  pg::spi_execute("ALTER TABLE " + qualified + (had_force_rls ? " FORCE" : " NO FORCE") + " ROW LEVEL SECURITY");
  pg::spi_execute("ALTER TABLE " + qualified + (had_rls ? " ENABLE" : " DISABLE") + " ROW LEVEL SECURITY");
}

}  // namespace privacy::softdelete

// privacy.restore(job_id bigint, relation regclass DEFAULT NULL, keys jsonb DEFAULT NULL)
// Brings back the rows an erase job hid, while its recovery window is open.
PRIVACY_SQL_FUNCTION(privacy_restore) {
  privacy::citus_node::refuse_on_worker_node("privacy.restore");
  namespace pg = privacy::pg;
  using privacy::core::Error;
  namespace sqlstate = privacy::core::sqlstate;
  if (PG_ARGISNULL(0)) throw Error(sqlstate::kInvalidParameter, "job_id must not be NULL");
  long long job_id = PG_GETARG_INT64(0);
  Oid relation = PG_ARGISNULL(1) ? InvalidOid : PG_GETARG_OID(1);
  std::optional<std::string> keys;
  if (!PG_ARGISNULL(2)) {
    keys = pg::pg_guard([&] { return DatumGetCString(DirectFunctionCall1(jsonb_out, PG_GETARG_DATUM(2))); });
  }
  pg::SpiConnection spi;
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "SELECT kind::text, status::text, tenant_id, target_id, recoverable_until::text,"
      "       (recoverable_until IS NOT NULL AND recoverable_until <= now())::text, finalized_at::text"
      "  FROM privacy.jobs WHERE id = $1 FOR UPDATE",
      {pg::int8_param(job_id)}, false);
  std::string job = "job " + std::to_string(job_id);
  if (rows.empty()) {
    throw Error(sqlstate::kInvalidParameter, job + " does not exist", "", "SELECT * FROM privacy.job_overview lists the jobs.");
  }
  const pg::TextRow& row = rows[0];
  if (*row[0] != "erase" || *row[1] != "completed") {
    throw Error(sqlstate::kObjectNotInPrerequisiteState,
                job + " is a " + *row[1] + " " + *row[0] + " job; only completed erase jobs can be restored", "",
                "Cancel a running erase job with privacy.cancel; its marked rows can be restored once it stops.");
  }
  if (row[6]) {
    throw Error(sqlstate::kObjectNotInPrerequisiteState,
                job + " was finalized at " + *row[6] + "; its rows are gone for good", "", "");
  }
  if (*row[5] == "true") {
    throw Error(sqlstate::kObjectNotInPrerequisiteState,
                job + " can no longer be restored: its recovery window closed at " + *row[4], "",
                "Lengthen the window for future jobs with privacy.configure_tenant(..., recovery_window => ...).");
  }
  std::vector<std::pair<Oid, long long>> restored = privacy::batch::restore_rows_by_relation(job_id, relation, keys);
  long long total = 0;
  std::string per_relation;
  for (const auto& [relid, count] : restored) {
    total += count;
    std::string name = pg::spi_query_text("SELECT to_jsonb($1::oid::regclass::text)::text",
                                          {pg::int8_param(static_cast<long long>(relid))}).value_or("\"?\"");
    per_relation += (per_relation.empty() ? "" : ", ") + name + ": " + std::to_string(count);
  }
  std::string detail = "{\"rows\": " + std::to_string(total) + ", \"relations\": {" + per_relation +
                       "}, \"selected_keys\": " + (keys ? "true" : "false") + "}";
  privacy::audit::append({"restored", *row[2], job_id, *row[3], "ok", detail});
  return Int64GetDatum(total);
}
