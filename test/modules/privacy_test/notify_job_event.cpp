// privacy_test.notify_job_event(job_id, old_status, new_status): sends the event of job_id's
// current row as if its status had just changed from old_status to new_status (pg_notify and the
// e-mail rules, notify::job_status_changed) and returns the payload. The notification tests
// (test/sql/notify_events.sql, test/pgtap/notify.sql, test/t/050_notify_smtp.pl) use it to set up
// each case of the e-mail rules from a job row written directly. Test-only (see Makefile);
// superuser only.
#include "notify/notify.hpp"
#include "pg/boundary.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "miscadmin.h"
}

PRIVACY_SQL_FUNCTION(privacy_test_notify_job_event) {
  using namespace privacy;
  bool is_superuser = pg::pg_guard([&] { return superuser(); });
  if (!is_superuser) {
    throw core::Error(core::sqlstate::kInsufficientPrivilege,
                      "privacy_test.notify_job_event is a test hook for superusers");
  }
  if (PG_ARGISNULL(0) || PG_ARGISNULL(2)) {
    throw core::Error(core::sqlstate::kInvalidParameter, "job_id and new_status must not be NULL");
  }
  long long job_id = PG_GETARG_INT64(0);
  std::optional<std::string> old_status = pg::optional_text_arg(fcinfo, 1);
  std::string new_status = pg::text_arg(fcinfo, 2, "new_status");
  pg::SpiConnection spi;
  notify::JobEvent event = notify::load_job_event(job_id, old_status, new_status);
  notify::job_status_changed(event);
  std::string payload = notify::event_payload(event);
  return pg::pg_guard([&] { return PointerGetDatum(cstring_to_text(payload.c_str())); });
}
