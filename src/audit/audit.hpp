// The audit append path (docs/audit.md): every feature records what it did by calling
// audit::append(). One place builds the row, takes the chain's lock and computes its hash.
#pragma once

#include <optional>
#include <string>

#include "pg/pg_headers.hpp"

namespace privacy::audit {

// Who acted, when it is not the current session: the launcher writes hold_blocked rows queued
// by other backends and records the original session's identity.
struct Actor {
  std::string session_user;
  std::string current_user;
  std::optional<std::string> client_addr;
  std::optional<std::string> application_name;
};

struct Entry {
  std::string action;                    // e.g. "submitted", "approved", "hold_blocked"
  std::optional<std::string> tenant_id;  // NULL: the platform chain
  std::optional<long long> job_id;
  std::optional<std::string> target;  // what was acted on: subject id, table, hold id, ...
  std::string outcome = "ok";         // "ok", "refused", "error", ...
  std::string detail_json = "{}";     // counts and ids, never personal data
  std::optional<Actor> actor;         // default: this session
  // The human behind the database role (the API's on_behalf_of argument): recorded in detail
  // as "on_behalf_of", next to actor and acting_role (docs/security.md, "Acting for a person").
  std::optional<std::string> on_behalf_of;
};

// Appends one row to privacy.audit_log in the caller's transaction and returns its id.
// Takes the chain's row lock until the end of the transaction, so each chain stays linear.
// Must be called with an SPI connection open (it opens its own if needed).
long long append(const Entry& entry);

// The same with the detail already a jsonb datum (entry.detail_json is then ignored): the SQL
// face privacy._audit passes its argument as it is, without printing and parsing it again.
long long append(const Entry& entry, Datum detail);

// The chain an entry goes on: its tenant, or the platform chain ('').
std::string chain_of(const std::optional<std::string>& tenant_id);

// The append-only trigger (privacy._audit_guard, docs/audit.md) refuses every UPDATE, DELETE
// and TRUNCATE of privacy.audit_log and privacy.audit_chains, superusers included. The only
// writes it lets through are the extension's own, announced by a WriteScope that lives in this
// process's C++ code while the statement runs. No SQL, GUC or session setting can create one.
enum class GuardedWrite {
  kChainHead,  // append: move a chain's head (UPDATE audit_chains)
  kPurge,      // retention: delete a chain's oldest rows and move its anchor
};

// Allows one kind of guarded write until the object is destroyed (RAII, so an error that
// unwinds the C++ stack always closes the window again). Scopes nest.
class WriteScope {
 public:
  explicit WriteScope(GuardedWrite kind);
  ~WriteScope();
  WriteScope(const WriteScope&) = delete;
  WriteScope& operator=(const WriteScope&) = delete;

 private:
  GuardedWrite kind_;
  bool previous_;
};

// The launcher's step "audit retention" (audit/retention.cpp): deletes one batch of due rows per
// chain. Needs an SPI connection.
void retention_step();

// The same purge, every batch of every chain, as of `as_of` (a timestamptz text; nothing: now).
// privacy._purge_audit() calls it for now; only the test-only extension passes another time
// (test/modules/privacy_test/purge_audit_as_of.cpp). Needs an SPI connection.
long long purge_as_of(const std::optional<std::string>& as_of);

}  // namespace privacy::audit
