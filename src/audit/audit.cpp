#include "audit/audit.hpp"

#include "citus/node.hpp"

#include "core/hash_chain.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "commands/trigger.h"
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

// Locks the chain's head row and reads, after the lock is granted, what the server contributes
// to the row: the previous hash, the id, the canonical time, the session's identity and the
// canonical (jsonb) text of detail. One statement: the locking scan is a CTE, so nextval and
// clock_timestamp run only once the lock is held, and ids follow the chain's order.
// Returns false when the chain has no head yet.
bool lock_head_and_fill(core::AuditRecord& record, const Entry& entry, std::string& previous_hash) {
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "WITH head AS (SELECT last_hash FROM privacy.audit_chains WHERE chain = $1 FOR UPDATE)"
      " SELECT head.last_hash, nextval('privacy.audit_log_id_seq')::text,"
      "        to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
      "        session_user::text, current_user::text, host(inet_client_addr()),"
      "        current_setting('application_name'),"
      "        (CASE WHEN $3::text IS NULL THEN $2::jsonb"
      "              ELSE $2::jsonb || jsonb_build_object('on_behalf_of', $3::text) END)::text"
      "   FROM head",
      {text_param(record.chain), text_param(entry.detail_json), text_param(entry.on_behalf_of)},
      false);
  if (rows.empty()) return false;
  const pg::TextRow& row = rows[0];
  previous_hash = row.text(0);
  record.id = row.int8(1);
  record.at = row.text(2);
  if (entry.actor) {
    record.session_user = entry.actor->session_user;
    record.current_user = entry.actor->current_user;
    record.client_addr = entry.actor->client_addr;
    record.application_name = entry.actor->application_name;
  } else {
    record.session_user = row[3];
    record.current_user = row[4];
    record.client_addr = row[5];
    record.application_name = row[6];
  }
  record.detail = row[7];
  return true;
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

long long append(const Entry& entry) {
  pg::SpiConnection spi;
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

  std::string previous_hash;
  if (!lock_head_and_fill(record, entry, previous_hash)) {
    create_chain_head(record.chain);
    if (!lock_head_and_fill(record, entry, previous_hash)) {
      throw core::Error(core::sqlstate::kInternalError, "audit chain head vanished");
    }
  }
  std::string hash = core::chain_hash(previous_hash, record);

  // One statement: the row goes in and the head moves to it. (A data-modifying WITH runs to
  // completion whether or not the main statement reads it; the head gets its values as
  // parameters, so no join is planned.)
  pg::spi_execute(
      "WITH appended AS ("
      "  INSERT INTO privacy.audit_log (id, chain, at, actor, acting_role, client_addr,"
      "    application_name, action, tenant_id, job_id, target, outcome, detail, prev_hash, hash)"
      "  VALUES ($1, $2, $3::timestamptz, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, $14, $15))"
      " UPDATE privacy.audit_chains SET last_id = $1, last_hash = $15 WHERE chain = $2",
      {int8_param(record.id), text_param(record.chain), text_param(record.at),
       text_param(record.session_user), text_param(record.current_user),
       text_param(record.client_addr), text_param(record.application_name),
       text_param(record.action), text_param(record.tenant_id), int8_param(record.job_id),
       text_param(record.target), text_param(record.outcome), text_param(record.detail),
       text_param(previous_hash), text_param(hash)});
  return record.id;
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
