// Soft-delete through row-level security (DESIGN section 5): what registration adds to a table
// and what unregistration takes away again.
#pragma once

#include "pg/pg_headers.hpp"

#include <string>

namespace privacy::softdelete {

// Adds privacy_erased_by bigint (nullable, no default: catalog-only), a partial index on it, the
// RESTRICTIVE policy privacy_hide_erased, the permissive privacy_passthrough when RLS was off
// (so that enabling RLS hides nothing else), and ENABLE + FORCE ROW LEVEL SECURITY.
// `qualified` is the quoted "schema"."table". Needs an SPI connection.
// key_columns_sql: the table's key columns, quoted and comma-separated; the partial index on
// privacy_erased_by is followed by them so that finalization and restore walk a job's rows in key
// order straight from the index (no rescan of the job's rows per batch).
void enable(Oid relid, const std::string& qualified, const std::string& key_columns_sql, bool had_rls,
            bool had_force_rls);

// Reverses enable(): drops the policies and the column (its index goes with it) and puts
// relrowsecurity / relforcerowsecurity back to what they were.
void disable(Oid relid, const std::string& qualified, bool had_rls, bool had_force_rls);

}  // namespace privacy::softdelete
