// Who may register which relation (docs/soft-delete.md, "Registration and the tamper guard").
//
// Registration changes a table as only its owner may (a column, policies, row-level security,
// triggers), so it demands what PostgreSQL demands for ALTER TABLE: the session user must have
// the privileges of the owner and be able to look the table up. And some relations are never
// registered: system catalogs, tables of extensions (pg_privacy's own included), temporary
// tables, anything that is not a plain or partitioned table, partitions (their partitioned table
// is registered), and tables in classic inheritance.
//
// Each check throws with its SQLSTATE and changes nothing (register_table validates everything
// before its first change). They need an SPI connection.
#pragma once

#include "pg/pg_headers.hpp"

#include <string>

namespace privacy::registry {

// Refuses a relation that is not a registrable table: 42501 for system catalogs and tables of
// extensions, 42809 for views, materialized views, foreign tables, sequences, indexes and
// partitions, 0A000 for temporary tables and tables in classic inheritance. `table` is its name
// for messages.
void require_registrable(Oid relid, const std::string& table);

// Refuses (42501) unless session_user has the privileges of the owner of the table and of each
// of its partitions, and USAGE on their schemas. `action` says what was refused, e.g.
// "register".
void require_owner_privileges(Oid relid, const std::string& table, const std::string& action);

}  // namespace privacy::registry
