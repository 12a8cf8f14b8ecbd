#include "audit/audit.hpp"

#include "citus/node.hpp"

#include "core/hash_chain.hpp"
#include "pg/security_context.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "catalog/namespace.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
}

namespace privacy::audit {

using pg::int8_param;
using pg::text_param;

namespace {

// The in-process permissions of the append-only trigger. Process-local and reachable only
// through WriteScope: a session can neither see nor set them.
bool chain_head_write_allowed = false;
bool purge_allowed = false;

bool& flag_of(GuardedWrite kind) {
  return kind == GuardedWrite::kChainHead ? chain_head_write_allowed : purge_allowed;
}

// The session's part of a row (who is acting), read in C from the backend's own state: what
// session_user, current_user, host(inet_client_addr()) and current_setting('application_name')
// return, without a statement. Read before the chain's lock is taken, so the critical section
// holds only what must be in it (docs/performance.md, B9).
void fill_actor(core::AuditRecord& record, const Entry& entry) {
  if (entry.actor) {
    record.session_user = entry.actor->session_user;
    record.current_user = entry.actor->current_user;
    record.client_addr = entry.actor->client_addr;
    record.application_name = entry.actor->application_name;
    return;
  }
  struct Identity {
    const char* session_user;
    const char* current_user;
    const char* client_addr;  // nullptr: NULL
  };
  Identity identity = pg::pg_guard([] {
    return Identity{GetUserNameFromId(GetSessionUserId(), false),
                    GetUserNameFromId(GetUserId(), false), pg::client_host()};
  });
  record.session_user = identity.session_user;
  record.current_user = identity.current_user;
  if (identity.client_addr != nullptr) record.client_addr = identity.client_addr;
  // current_setting('application_name'): '' when not set, never NULL.
  record.application_name = std::string(application_name != nullptr ? application_name : "");
}

// The detail as it is stored (jsonb) and hashed (jsonb's text output, canonical whatever the
// caller's spacing or key order), with on_behalf_of merged in as `detail || {"on_behalf_of": ..}`
// did in SQL. Computed in C before the chain's lock: no statement parses it again.
Datum canonical_detail(Datum detail, const std::optional<std::string>& on_behalf_of,
                       std::string& text) {
  const char* on_behalf = on_behalf_of ? on_behalf_of->c_str() : nullptr;
  const char* out = nullptr;
  Datum merged = pg::pg_guard([&] {
    Datum result =
        PointerGetDatum(PG_DETOAST_DATUM(detail));  // stored as is: inline, not a pointer
    if (on_behalf != nullptr) {
      StringInfoData object;
      initStringInfo(&object);
      appendStringInfoString(&object, "{\"on_behalf_of\": ");
      escape_json(&object, on_behalf);
      appendStringInfoChar(&object, '}');
      result = DirectFunctionCall2(jsonb_concat, result,
                                   DirectFunctionCall1(jsonb_in, CStringGetDatum(object.data)));
    }
    out = DatumGetCString(DirectFunctionCall1(jsonb_out, result));
    return result;
  });
  text = out;
  return merged;
}

// privacy.audit_log_id_seq, looked up each time (the extension may have been dropped and created
// again in this session): two syscache probes.
Oid audit_id_sequence() {
  return pg::pg_guard([] {
    Oid schema = get_namespace_oid("privacy", false);
    Oid sequence = get_relname_relid("audit_log_id_seq", schema);
    if (!OidIsValid(sequence)) elog(ERROR, "pg_privacy: privacy.audit_log_id_seq is missing");
    return sequence;
  });
}

// `at` in the one form the hash covers (core/hash_chain.hpp): UTC, microseconds, as
// to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') prints it.
std::string canonical_time(TimestampTz at) {
  struct pg_tm tm {};
  fsec_t fraction = 0;
  bool ok = pg::pg_guard(
      [&] { return timestamp2tm(at, nullptr, &tm, &fraction, nullptr, nullptr) == 0; });
  if (!ok) throw core::Error(core::sqlstate::kInternalError, "audit time out of range");
  char text[64];
  snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year, tm.tm_mon,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(fraction));
  return text;
}

// Locks the chain's head row until the end of the transaction and returns its hash; nullopt
// when the chain has no head yet. Only once the lock is held are the id (nextval) and the time
// taken (by the caller), so ids and times follow the chain's order, which is commit order.
std::optional<std::string> lock_head(const std::string& chain) {
  return pg::spi_query_text(
      "SELECT last_hash FROM privacy.audit_chains WHERE chain = $1 FOR UPDATE",
      {text_param(chain)});
}

void create_chain_head(const std::string& chain) {
  pg::spi_execute(
      "INSERT INTO privacy.audit_chains (chain, last_id, last_hash) VALUES ($1, 0, $2) "
      "ON CONFLICT (chain) DO NOTHING",
      {text_param(chain), text_param(std::string(core::kGenesisHash))});
}

}  // namespace

WriteScope::WriteScope(GuardedWrite kind) : kind_(kind), previous_(flag_of(kind)) {
  flag_of(kind_) = true;
}

WriteScope::~WriteScope() { flag_of(kind_) = previous_; }

std::string chain_of(const std::optional<std::string>& tenant_id) {
  return tenant_id.value_or(std::string());
}

// append() with an SPI connection open and the detail as a jsonb datum in its memory.
static long long append_connected(const Entry& entry, Datum detail) {
  // The one audit trail is the coordinator's; this also refuses the API functions written in SQL.
  citus_node::refuse_on_worker_node("recording the audit event \"" + entry.action + "\"");
  WriteScope appending(GuardedWrite::kChainHead);  // creates/moves the chain head, inserts the row
  core::AuditRecord record;
  record.chain = chain_of(entry.tenant_id);
  record.action = entry.action;
  record.tenant_id = entry.tenant_id;
  record.job_id = entry.job_id;
  record.target = entry.target;
  record.outcome = entry.outcome;
  fill_actor(record, entry);
  std::string detail_text;
  Datum stored_detail = canonical_detail(detail, entry.on_behalf_of, detail_text);
  record.detail = detail_text;
  Oid sequence = audit_id_sequence();

  // The critical section: from here to the end of the transaction the chain is ours.
  std::optional<std::string> previous_hash = lock_head(record.chain);
  if (!previous_hash) {
    create_chain_head(record.chain);
    previous_hash = lock_head(record.chain);
    if (!previous_hash) {
      throw core::Error(core::sqlstate::kInternalError, "audit chain head vanished");
    }
  }
  TimestampTz at = 0;
  record.id = pg::pg_guard([&] {
    int64 id = nextval_internal(sequence, true);
    at = GetCurrentTimestamp();
    return id;
  });
  record.at = canonical_time(at);
  std::string hash = core::chain_hash(*previous_hash, record);

  // One statement: the row goes in and the head moves to it. (A data-modifying WITH runs to
  // completion whether or not the main statement reads it; the head gets its values as
  // parameters, so no join is planned.) `at` and detail go in as their own types, not as text.
  pg::spi_execute(
      "WITH appended AS ("
      "  INSERT INTO privacy.audit_log (id, chain, at, actor, acting_role, client_addr,"
      "    application_name, action, tenant_id, job_id, target, outcome, detail, prev_hash, hash)"
      "  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15))"
      " UPDATE privacy.audit_chains SET last_id = $1, last_hash = $15 WHERE chain = $2",
      {int8_param(record.id), text_param(record.chain),
       pg::SqlParam{TIMESTAMPTZOID, TimestampTzGetDatum(at), false},
       text_param(record.session_user), text_param(record.current_user),
       text_param(record.client_addr), text_param(record.application_name),
       text_param(record.action), text_param(record.tenant_id), int8_param(record.job_id),
       text_param(record.target), text_param(record.outcome),
       pg::SqlParam{JSONBOID, stored_detail, false}, text_param(*previous_hash), text_param(hash)});
  return record.id;
}

long long append(const Entry& entry) {
  pg::SpiConnection spi;  // the parsed detail lives in the connection's memory
  Datum detail = pg::pg_guard(
      [&] { return DirectFunctionCall1(jsonb_in, CStringGetDatum(entry.detail_json.c_str())); });
  return append_connected(entry, detail);
}

long long append(const Entry& entry, Datum detail) {
  pg::SpiConnection spi;
  return append_connected(entry, detail);
}

}  // namespace privacy::audit

namespace {

// What the append-only trigger decides for one event on one of the two guarded tables.
// Returns nullptr when the write is allowed, else the kind of write refused.
const char* refusal(bool is_log_table, TriggerEvent event) {
  using privacy::audit::chain_head_write_allowed;
  using privacy::audit::purge_allowed;
  if (TRIGGER_FIRED_BY_TRUNCATE(event)) return "TRUNCATE";
  if (TRIGGER_FIRED_BY_INSERT(event)) {
    // audit::append, or a superuser (pg_restore reloads the trail with COPY; a superuser could
    // disable the trigger anyway). Not pg_write_all_data members or table owners.
    if (chain_head_write_allowed || purge_allowed) return nullptr;
    if (privacy::pg::pg_guard([] { return superuser(); })) return nullptr;
    return "INSERT";
  }
  if (TRIGGER_FIRED_BY_DELETE(event)) {
    if (is_log_table && purge_allowed) return nullptr;  // the retention purge of a chain prefix
    return "DELETE";
  }
  if (TRIGGER_FIRED_BY_UPDATE(event)) {
    if (!is_log_table && (chain_head_write_allowed || purge_allowed))
      return nullptr;  // head/anchor
    return "UPDATE";
  }
  return nullptr;
}

}  // namespace

// privacy._audit_guard(): the append-only trigger of privacy.audit_log and privacy.audit_chains,
// created ENABLE ALWAYS so session_replication_role = replica does not skip it. Its one
// argument says which table it guards ('log' or 'chains').
PRIVACY_SQL_FUNCTION(privacy_audit_guard) {
  if (!CALLED_AS_TRIGGER(fcinfo)) {
    throw privacy::core::Error(privacy::core::sqlstate::kInvalidParameter,
                               "privacy._audit_guard() must be called as a trigger");
  }
  auto* trigger_data = reinterpret_cast<TriggerData*>(fcinfo->context);
  bool is_log_table = trigger_data->tg_trigger->tgnargs > 0 &&
                      std::string(trigger_data->tg_trigger->tgargs[0]) == "log";
  const char* refused = refusal(is_log_table, trigger_data->tg_event);
  if (refused != nullptr) {
    const char* table = is_log_table ? "privacy.audit_log" : "privacy.audit_chains";
    throw privacy::core::Error(
        privacy::core::sqlstate::kInsufficientPrivilege,
        std::string(refused) + " on " + table + " is not allowed: the audit trail is append-only",
        "Only pg_privacy's own functions write the trail. This applies to every role, superusers "
        "included (INSERT excepted, for pg_restore), and to session_replication_role = replica.",
        "Audit rows are removed only by the retention purge (privacy.audit_retention or the "
        "tenant's audit_retention); read them with privacy.audit_export().");
  }
  if (TRIGGER_FIRED_FOR_STATEMENT(trigger_data->tg_event)) return PointerGetDatum(nullptr);
  if (TRIGGER_FIRED_BY_UPDATE(trigger_data->tg_event))
    return PointerGetDatum(trigger_data->tg_newtuple);
  return PointerGetDatum(trigger_data->tg_trigtuple);
}
