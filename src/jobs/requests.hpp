// Submitting a request: the one path that creates a job (privacy.request_* and the replay of the
// erasure ledger, src/compliance/erasure_ledger.cpp).
#pragma once

#include "core/job_state.hpp"

#include <optional>
#include <string>

namespace privacy::requests {

// The erasure ledger entry a job applies again after a restore (docs/compliance.md).
struct Replay {
  std::string entry_hash;
  long long ledger_seq = 0;
  long long original_job = 0;
};

struct Request {
  core::JobKind kind;
  std::string tenant_id;
  std::string target_type;  // "subject" or "tenant"
  std::string target_id;
  std::string reason;
  std::optional<std::string> notify_email;
  std::optional<std::string> regulation;    // nullopt: the tenant's
  std::optional<Replay> replay;             // audited 'erasure_replayed'; approved like any request
  std::optional<std::string> on_behalf_of;  // the human behind the session user, if named
};

// Checks the request (the session user's tenant scope: 42501, notify_email, recipients of an
// export, legal holds of an erase or purge: PV001, registered tables), inserts the job (pending
// when the tenant's approval_required names its kind, else approved) with its regulation and due
// date, audits 'submitted' and notifies. Returns the job id. Needs no SPI connection (opens its
// own).
long long submit(const Request& request);

}  // namespace privacy::requests
