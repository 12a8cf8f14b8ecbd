// privacy._audit(...): the SQL face of audit::append for API functions written in SQL.
#include "audit/audit.hpp"
#include "pg/boundary.hpp"

using privacy::pg::optional_text_arg;

PRIVACY_SQL_FUNCTION(privacy_audit_append) {
  privacy::audit::Entry entry;
  std::optional<std::string> action = optional_text_arg(fcinfo, 0);
  if (!action || action->empty()) {
    throw privacy::core::Error(privacy::core::sqlstate::kInvalidParameter,
                               "audit action must not be empty");
  }
  entry.action = *action;
  entry.tenant_id = optional_text_arg(fcinfo, 1);
  if (!PG_ARGISNULL(2)) entry.job_id = PG_GETARG_INT64(2);
  entry.target = optional_text_arg(fcinfo, 3);
  entry.outcome = optional_text_arg(fcinfo, 4).value_or("ok");
  if (PG_ARGISNULL(5)) return Int64GetDatum(privacy::audit::append(entry));  // detail '{}'
  return Int64GetDatum(privacy::audit::append(entry, PG_GETARG_DATUM(5)));
}
