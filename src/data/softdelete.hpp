// Soft-delete through row-level security (docs/soft-delete.md): what registration adds to a table
// and what unregistration takes away again.
#pragma once

#include "pg/pg_headers.hpp"

#include <string>

namespace privacy::softdelete {

// Adds privacy_erased_by bigint (nullable, no default: catalog-only) and a partial index on it
// followed by the key columns, so that finalization and restore walk a job's rows in key order
// straight from the index (no rescan per batch). On a partitioned table both reach every
// partition, present and future. `qualified` is the quoted "schema"."table"; key_columns_sql the
// key columns, quoted and comma-separated. Needs an SPI connection.
void add_erased_column(const std::string& qualified, const std::string& key_columns_sql);

// Drops the column (its index goes with it; on a partitioned table, from every partition).
void drop_erased_column(const std::string& qualified);

// Hides the erased rows of one relation (a registered table or one of its partitions): the
// RESTRICTIVE policy privacy_hide_erased, the permissive privacy_passthrough when RLS was off (so
// that enabling RLS hides nothing else), and ENABLE + FORCE ROW LEVEL SECURITY.
void hide_erased_rows(const std::string& qualified, bool had_rls, bool had_force_rls);

// Reverses hide_erased_rows(): drops the policies and puts relrowsecurity / relforcerowsecurity
// back to what they were.
void show_all_rows(const std::string& qualified, bool had_rls, bool had_force_rls);

}  // namespace privacy::softdelete
