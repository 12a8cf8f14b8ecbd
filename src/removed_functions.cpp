// C entry points that an earlier version's install script names but this version no longer has
// (docs/upgrading.md, "The rule for every schema change"). CREATE EXTENSION pg_privacy VERSION
// '<old>' checks every C symbol its script names, so each stays here as a stub that refuses,
// until no released script names it. The update script drops the SQL function itself.
#include "pg/boundary.hpp"

namespace {

[[noreturn]] void removed(const char* function, const char* version) {
  throw privacy::core::Error(privacy::core::sqlstate::kFeatureNotSupported,
                             std::string(function) + " was removed in pg_privacy " + version, "",
                             "Run ALTER EXTENSION pg_privacy UPDATE.");
}

}  // namespace

// 0.1.0's privacy._boundary_selftest, now privacy_test.boundary_selftest of the test-only
// extension test/modules/privacy_test.
PRIVACY_SQL_FUNCTION(privacy_boundary_selftest) { removed("privacy._boundary_selftest", "0.2.0"); }

// 0.1.0's privacy._notify_job_event, a test hook, now privacy_test.notify_job_event.
PRIVACY_SQL_FUNCTION(privacy_notify_job_event) { removed("privacy._notify_job_event", "0.2.0"); }
