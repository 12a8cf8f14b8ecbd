// privacy_test.purge_audit_as_of(as_of): the audit retention purge, every batch of every chain,
// as if it ran at `as_of` (audit::purge_as_of; the floor counts back from as_of too). The
// retention tests (test/pgtap/audit_retention*.sql, test/t/060_audit_concurrency.pl) use it to
// purge rows the retention floor keeps for a year. The shipped privacy._purge_audit() purges as of
// now only: purging "as of" a later time would delete rows before their retention ends.
// Test-only (see Makefile); superuser only.
#include "audit/audit.hpp"
#include "pg/boundary.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
}

PRIVACY_SQL_FUNCTION(privacy_test_purge_audit_as_of) {
  using namespace privacy;
  bool is_superuser = pg::pg_guard([&] { return superuser(); });
  if (!is_superuser) {
    throw core::Error(core::sqlstate::kInsufficientPrivilege,
                      "privacy_test.purge_audit_as_of is a test hook for superusers");
  }
  if (PG_ARGISNULL(0)) {
    throw core::Error(core::sqlstate::kInvalidParameter, "as_of must not be NULL");
  }
  std::string as_of = pg::pg_guard(
      [&] { return DatumGetCString(DirectFunctionCall1(timestamptz_out, PG_GETARG_DATUM(0))); });
  pg::SpiConnection spi;
  long long deleted = audit::purge_as_of(as_of);
  return Int64GetDatum(deleted);
}
