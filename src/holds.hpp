// Legal holds (DESIGN section 7): the one place that answers "is this data held?".
// Everything that removes or changes subject data asks here: request submission, every job
// batch, finalization, and the row trigger on registered tables.
#pragma once

#include "pg/pg_headers.hpp"

#include <optional>
#include <string>

namespace privacy::holds {

struct HoldInfo {
  long long id;
  std::string scope;     // "tenant", "subject" or "table"
  std::string scope_id;  // tenant id, subject id, or table name
  std::optional<std::string> tenant_id;
  std::string reason;
  std::string created_by;
  std::string created_at;
  bool block_updates;
};

// The first active, unexpired hold that covers a target: a whole tenant, a subject within it
// (subject_id nullopt means "any subject of the tenant", as for a tenant purge), and, when
// relation is valid, the table itself.
std::optional<HoldInfo> find_hold(const std::string& tenant_id,
                                  const std::optional<std::string>& subject_id,
                                  Oid relation = InvalidOid);

// Throws PV001 naming the hold, its reason and who placed it, when find_hold finds one.
// `what` says what was refused, e.g. "erase of subject 42 of tenant acme".
void ensure_not_held(const std::string& what, const std::string& tenant_id,
                     const std::optional<std::string>& subject_id, Oid relation = InvalidOid);

// The PV001 error for a hold (shared by every path that refuses).
[[noreturn]] void raise_hold_error(const std::string& what, const HoldInfo& hold);

}  // namespace privacy::holds
