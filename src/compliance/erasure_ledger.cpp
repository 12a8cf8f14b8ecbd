// The erasure ledger (docs/compliance.md, "Replay after a backup restore").
//
// Every finished erasure is appended to privacy.erasure_ledger in the transaction that finishes it
// (evidence::job_closed). privacy.erasure_ledger_export() writes the whole ledger as JSON lines
// ending with a head line signed by the installation's key; that file is what an operator keeps
// outside the database, next to the backups. After a backup older than some erasures was restored,
// privacy.replay_erasures(file) checks the file (its chain, its head, its signature, that it is
// this installation's) and applies again, through the ordinary job machinery, every erasure the
// restored database does not know.
#include "access/tenant_scope.hpp"
#include "compliance/erasure_ledger.hpp"

#include "audit/audit.hpp"
#include "core/cms_signer.hpp"
#include "core/deadline.hpp"
#include "core/encoding.hpp"
#include "core/erasure_ledger.hpp"
#include "core/hash_chain.hpp"
#include "core/json.hpp"
#include "core/sealed_subject.hpp"
#include "compliance/receipts.hpp"
#include "holds/holds.hpp"
#include "pg/spi.hpp"
#include "pg/subtransaction.hpp"
#include "jobs/requests.hpp"

namespace privacy::erasure_ledger {

namespace {

using core::LedgerEntry;
using pg::int8_param;
using pg::text_param;

constexpr int kLedgerLockClass = 0x6c656467;  // "ledg"

// Appends and replays take this lock until their transaction ends: the chain gets one entry at a
// time, and a replay sees every entry committed before it.
void lock_ledger() {
  pg::spi_execute("SELECT pg_catalog.pg_advisory_xact_lock($1::pg_catalog.int4, 0)",
                  {int8_param(kLedgerLockClass)});
}

// An entry as stored, with its links.
struct ChainedEntry {
  LedgerEntry entry;
  std::string prev_hash;
  std::string hash;
};

std::vector<std::string> table_names(const std::string& sql, long long key) {
  std::vector<std::string> names;
  for (const pg::TextRow& row : pg::spi_query_rows(sql, {int8_param(key)}))
    names.push_back(row[0].value_or(""));
  return names;
}

// The columns an entry is read from, in the order entry_from() reads them: `job_id`,
// `requested_at` and `erased_at` are the SQL of those three (they differ between privacy.jobs and
// privacy.erasure_ledger).
std::string entry_columns(const std::string& job_id, const std::string& requested_at,
                          const std::string& erased_at) {
  return "kind::pg_catalog.text, tenant_id, target_type::pg_catalog.text, target_id, " + job_id +
         "::pg_catalog.text, regulation::pg_catalog.text, " + requested_at + ", " + erased_at +
         ", replay_of";
}

// An entry from the columns of entry_columns(), starting at row[first].
LedgerEntry entry_from(const pg::TextRow& row, size_t first) {
  LedgerEntry entry;
  entry.kind = row.text(first);
  entry.tenant_id = row.text(first + 1);
  entry.target_type = row.text(first + 2);
  entry.target_id = row.text(first + 3);
  entry.job_id = row.int8(first + 4);
  entry.regulation = row.text(first + 5);
  entry.requested_at = row.text(first + 6);
  entry.erased_at = row.text(first + 7);
  entry.replay_of = row[first + 8];
  return entry;
}

// The ledger entry of finished job `job_id`, to be entry `seq`: its subject id sealed under the
// active signing key (core/sealed_subject.hpp), in clear when no key is set.
LedgerEntry entry_of_job(long long job_id, long long seq) {
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "SELECT " +
          entry_columns(
              "id", evidence::utc_text("requested_at"),
              evidence::utc_text("CASE WHEN kind OPERATOR(pg_catalog.=) 'erase'::privacy.job_kind"
                                 " THEN finalized_at ELSE finished_at END")) +
          " FROM privacy.jobs WHERE id OPERATOR(pg_catalog.=) $1",
      {int8_param(job_id)});
  LedgerEntry entry = entry_from(rows.at(0), 0);
  entry.seq = seq;
  entry.tables = table_names(
      "SELECT t.value OPERATOR(pg_catalog.->>) 'table'"
      "  FROM privacy.jobs j, LATERAL pg_catalog.jsonb_array_elements(CASE WHEN pg_catalog.jsonb_typeof(j.result"
      "       OPERATOR(pg_catalog.->) 'tables') OPERATOR(pg_catalog.=) 'array' THEN j.result OPERATOR(pg_catalog.->) 'tables'"
      "       ELSE '[]' END) WITH ORDINALITY AS t(value, n)"
      " WHERE j.id OPERATOR(pg_catalog.=) $1 ORDER BY t.n",
      job_id);
  if (entry.target_type == "subject") {
    if (std::optional<evidence::SealingKey> sealing = evidence::active_sealing_key()) {
      entry.target_id = core::seal_subject(sealing->key, entry.tenant_id, entry.target_id);
      entry.sealed_by = sealing->fingerprint;
    }
  }
  return entry;
}

std::string tables_json(const std::vector<std::string>& tables) {
  std::vector<std::string> quoted;
  for (const std::string& table : tables) quoted.push_back(core::json_string(table));
  return core::json_array_of_values(quoted);
}

// Every entry this database knows, in seq order.
std::vector<ChainedEntry> stored_entries() {
  std::vector<ChainedEntry> entries;
  for (const pg::TextRow& row : pg::spi_query_rows(
           "SELECT seq::pg_catalog.text, sealed_by, prev_hash, hash, " +
           entry_columns("job_id", "requested_at", "erased_at") +
           " FROM privacy.erasure_ledger l ORDER BY l.seq")) {  // l.seq: the output column "seq" is
                                                                // text
    ChainedEntry chained;
    chained.entry = entry_from(row, 4);
    chained.entry.seq = row.int8(0);
    chained.entry.sealed_by = row[1];
    chained.entry.tables = table_names(
        "SELECT t.name FROM privacy.erasure_ledger l, LATERAL pg_catalog.unnest(l.tables) WITH ORDINALITY AS t(name, n)"
        " WHERE l.seq OPERATOR(pg_catalog.=) $1 ORDER BY t.n",
        chained.entry.seq);
    chained.prev_hash = *row[2];
    chained.hash = *row[3];
    entries.push_back(std::move(chained));
  }
  return entries;
}

}  // namespace

std::optional<Appended> append_if_erasure(long long job_id) {
  pg::SpiConnection spi;
  std::optional<std::string> kind = pg::spi_query_text(
      "SELECT kind::pg_catalog.text FROM privacy.jobs WHERE id OPERATOR(pg_catalog.=) $1",
      {int8_param(job_id)});
  if (kind != std::optional<std::string>("erase") && kind != std::optional<std::string>("purge"))
    return std::nullopt;
  lock_ledger();
  // The last entry as of now, once the lock is held: the snapshot the caller runs on (a worker's,
  // taken before the lock) would miss an entry another job committed meanwhile.
  std::vector<pg::TextRow> last;
  {
    pg::LatestSnapshot latest;
    // One entry per job: a finalization that runs again (a restore, then the window closing
    // again) does not erase anything the ledger does not already hold.
    std::vector<pg::TextRow> own = pg::spi_query_rows(
        "SELECT seq::pg_catalog.text, hash FROM privacy.erasure_ledger WHERE job_id OPERATOR(pg_catalog.=) $1",
        {int8_param(job_id)});
    if (!own.empty()) return Appended{own[0].int8(0), own[0].text(1)};
    // l.seq: ORDER BY seq would sort the text output column, and "9" comes after "10".
    last = pg::spi_query_rows(
        "SELECT l.seq::pg_catalog.text, l.hash FROM privacy.erasure_ledger l ORDER BY l.seq DESC LIMIT 1");
  }
  long long seq = last.empty() ? 1 : last[0].int8(0) + 1;
  std::string prev_hash = last.empty() ? std::string(core::kGenesisHash) : last[0].text(1);
  LedgerEntry entry = entry_of_job(job_id, seq);
  std::string hash = core::ledger_entry_hash(prev_hash, entry);
  pg::spi_execute(
      "INSERT INTO privacy.erasure_ledger (seq, kind, tenant_id, target_type, target_id, job_id, regulation, tables,"
      "                                    requested_at, erased_at, replay_of, prev_hash, hash, sealed_by)"
      " VALUES ($1, $2::privacy.job_kind, $3, $4::privacy.target_type, $5, $6, $7::privacy.regulation,"
      "         ARRAY(SELECT pg_catalog.jsonb_array_elements_text($8::pg_catalog.jsonb)), $9, $10, $11, $12, $13, $14)",
      {int8_param(seq), text_param(entry.kind), text_param(entry.tenant_id),
       text_param(entry.target_type), text_param(entry.target_id), int8_param(job_id),
       text_param(entry.regulation), text_param(tables_json(entry.tables)),
       text_param(entry.requested_at), text_param(entry.erased_at), text_param(entry.replay_of),
       text_param(prev_hash), text_param(hash), text_param(entry.sealed_by)});
  return Appended{seq, hash};
}

}  // namespace privacy::erasure_ledger

// ---------------------------------------------------------------------------------------------
// privacy.erasure_ledger_export() and privacy.replay_erasures(ledger, allow_unsigned)

namespace {

namespace pg = privacy::pg;
namespace core = privacy::core;
namespace ledger = privacy::erasure_ledger;
using core::Error;
using core::LedgerEntry;

// The head of the ledger as this database would write it now.
core::LedgerHead current_head(const std::vector<ledger::ChainedEntry>& entries) {
  core::LedgerHead head;
  head.installation = privacy::evidence::installation_id();
  head.entries = static_cast<long long>(entries.size());
  head.last_hash = entries.empty() ? std::string(core::kGenesisHash) : entries.back().hash;
  head.at =
      *pg::spi_query_text("SELECT " + privacy::evidence::utc_text("pg_catalog.clock_timestamp()"));
  return head;
}

void put_line(ReturnSetInfo* result, const std::string& line) {
  pg::pg_guard([&] {
    Datum value = PointerGetDatum(cstring_to_text_with_len(line.data(), line.size()));
    bool is_null = false;
    tuplestore_putvalues(result->setResult, result->setDesc, &value, &is_null);
  });
}

}  // namespace

PRIVACY_SQL_FUNCTION(privacy_erasure_ledger_export) {
  privacy::tenant_scope::require(std::nullopt, std::nullopt,
                                 "privacy.erasure_ledger_export");  // platform-wide only
  pg::pg_guard([&] { InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC); });
  auto* result = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
  pg::SpiConnection spi;
  std::vector<ledger::ChainedEntry> entries = ledger::stored_entries();
  for (const ledger::ChainedEntry& chained : entries) {
    put_line(result, core::ledger_entry_line(chained.entry, chained.prev_hash, chained.hash));
  }
  core::LedgerHead head = current_head(entries);
  privacy::evidence::CurrentSigner current = privacy::evidence::current_signer();
  std::optional<std::string> signature;
  if (current.signer)
    signature = core::base64_encode(current.signer->sign(core::ledger_head_text(head)));
  put_line(result, core::ledger_head_line(head, signature));

  privacy::audit::Entry entry;
  entry.action = "erasure_ledger_exported";
  entry.target = "privacy.erasure_ledger";
  entry.detail_json = core::json_object_of_values(
      {{"entries", std::to_string(head.entries)},
       {"last_hash", core::json_string(head.last_hash)},
       {"signed_by", signature ? std::optional<std::string>(core::json_string(*current.fingerprint))
                               : std::nullopt},
       {"not_signed", signature ? std::nullopt
                                : std::optional<std::string>(core::json_string(current.why_not))}});
  privacy::audit::append(entry);
  return (Datum)0;
}

namespace {

// One line of a ledger file: an entry, or the head.
struct ParsedLine {
  bool is_head = false;
  ledger::ChainedEntry chained;
  core::LedgerHead head;
  std::optional<std::string> signature;
};

constexpr const char* kUseACopy =
    "Use an intact copy of the ledger, as privacy.erasure_ledger_export() wrote it (docs/compliance.md).";

[[noreturn]] void refuse_ledger(const std::string& why, const std::string& hint = kUseACopy) {
  throw Error(core::sqlstate::kInvalidParameter, "erasure ledger " + why, "", hint);
}

[[noreturn]] void refuse_line(size_t number, const std::string& why) {
  refuse_ledger("line " + std::to_string(number) + " " + why);
}

bool is_known_kind(const LedgerEntry& entry) {
  std::optional<core::JobKind> kind = core::parse_job_kind(entry.kind);
  return (kind == core::JobKind::Erase || kind == core::JobKind::Purge) &&
         (entry.target_type == "subject" || entry.target_type == "tenant") &&
         core::parse_regulation(entry.regulation).has_value();
}

// The fields of a line, read by PostgreSQL's jsonb in a subtransaction, so that a line that is not
// JSON gives a message naming the line instead of aborting the caller's transaction.
struct LineFields {
  pg::TextRow values;
  std::vector<std::string> tables;
};

LineFields read_fields(const std::string& text, size_t number) {
  LineFields fields;
  std::optional<Error> failure = pg::run_in_subtransaction([&] {
    fields.values =
        pg::spi_query_rows(
            "SELECT (l OPERATOR(pg_catalog.?) 'head')::pg_catalog.text,"
            "       l OPERATOR(pg_catalog.->>) 'seq', l OPERATOR(pg_catalog.->>) 'kind', l OPERATOR(pg_catalog.->>) 'tenant',"
            "       l OPERATOR(pg_catalog.->>) 'target_type', l OPERATOR(pg_catalog.->>) 'target', l OPERATOR(pg_catalog.->>) 'job',"
            "       l OPERATOR(pg_catalog.->>) 'regulation', l OPERATOR(pg_catalog.->>) 'requested_at',"
            "       l OPERATOR(pg_catalog.->>) 'erased_at', l OPERATOR(pg_catalog.->>) 'replay_of',"
            "       l OPERATOR(pg_catalog.->>) 'prev', l OPERATOR(pg_catalog.->>) 'hash',"
            "       h OPERATOR(pg_catalog.->>) 'format', h OPERATOR(pg_catalog.->>) 'installation',"
            "       h OPERATOR(pg_catalog.->>) 'entries', h OPERATOR(pg_catalog.->>) 'last_hash', h OPERATOR(pg_catalog.->>) 'at',"
            "       l OPERATOR(pg_catalog.->>) 'signature', l OPERATOR(pg_catalog.->>) 'sealed_by'"
            "  FROM (SELECT $1::pg_catalog.jsonb AS l) s, LATERAL (SELECT s.l OPERATOR(pg_catalog.->) 'head' AS h) x",
            {pg::text_param(text)})
            .at(0);
    for (
        const pg::TextRow& table : pg::spi_query_rows(
            "SELECT pg_catalog.jsonb_array_elements_text($1::pg_catalog.jsonb OPERATOR(pg_catalog.->) 'tables')",
            {pg::text_param(text)})) {
      fields.tables.push_back(table[0].value_or(""));
    }
  });
  if (failure) refuse_line(number, "is not a ledger line: " + std::string(failure->what()));
  return fields;
}

ParsedLine parse_line(const std::string& text, size_t number) {
  LineFields fields = read_fields(text, number);
  const pg::TextRow& row = fields.values;
  ParsedLine parsed;
  try {
    if (*row[0] == "true") {
      parsed.is_head = true;
      if (row[13] != std::optional<std::string>("pg_privacy.erasure_ledger/1")) {
        throw std::invalid_argument("unknown head format");
      }
      parsed.head = core::LedgerHead{row[14].value(), std::stoll(row[15].value()), row[16].value(),
                                     row[17].value()};
      parsed.signature = row[18];
      return parsed;
    }
    LedgerEntry& entry = parsed.chained.entry;
    entry.seq = std::stoll(row[1].value());
    entry.kind = row[2].value();
    entry.tenant_id = row[3].value();
    entry.target_type = row[4].value();
    entry.target_id = row[5].value();
    entry.job_id = std::stoll(row[6].value());
    entry.regulation = row[7].value();
    entry.requested_at = row[8].value();
    entry.erased_at = row[9].value();
    entry.replay_of = row[10];
    entry.sealed_by = row[19];
    entry.tables = fields.tables;
    parsed.chained.prev_hash = row[11].value();
    parsed.chained.hash = row[12].value();
  } catch (const std::bad_optional_access&) {
    refuse_line(number, "lacks a field of a ledger entry or head");
  } catch (const std::logic_error&) {
    refuse_line(number, "has a field of the wrong form");
  }
  if (!is_known_kind(parsed.chained.entry))
    refuse_line(number, "names an unknown kind, target type or regulation");
  return parsed;
}

// The ledger's lines, without the newline at the end of the file.
std::vector<ParsedLine> parse_ledger(const std::string& text) {
  std::vector<ParsedLine> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() && end + 1 < text.size()) refuse_line(lines.size() + 1, "is empty");
    if (!line.empty()) lines.push_back(parse_line(line, lines.size() + 1));
    start = end + 1;
  }
  if (lines.empty()) refuse_ledger("is empty");
  return lines;
}

// Checks the chain: seq 1, 2, ... each linked to the one before and matching its hash.
void verify_chain(const std::vector<ParsedLine>& lines) {
  std::string previous(core::kGenesisHash);
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    const ParsedLine& line = lines[i];
    if (line.is_head)
      refuse_line(i + 1, "is a head line before the end: lines were added after it");
    const ledger::ChainedEntry& chained = line.chained;
    if (chained.entry.seq != static_cast<long long>(i + 1)) {
      refuse_line(i + 1, "has seq " + std::to_string(chained.entry.seq) + " where " +
                             std::to_string(i + 1) +
                             " was expected: an entry was removed, added or moved");
    }
    if (chained.prev_hash != previous) {
      refuse_line(i + 1,
                  "does not link to the line before it: an entry was removed, added or moved");
    }
    if (core::ledger_entry_hash(previous, chained.entry) != chained.hash) {
      refuse_line(i + 1, "does not match its hash: the entry was changed");
    }
    previous = chained.hash;
  }
}

// Checks the head: it names the last entry and this installation, and its signature verifies with
// a certificate this database knows (or the caller accepts an unsigned ledger).
void verify_head(const std::vector<ParsedLine>& lines, bool allow_unsigned) {
  const ParsedLine& last = lines.back();
  if (!last.is_head) refuse_ledger("has no head line at its end: it was cut short");
  const core::LedgerHead& head = last.head;
  long long entries = static_cast<long long>(lines.size()) - 1;
  std::string last_hash =
      entries == 0 ? std::string(core::kGenesisHash) : lines[lines.size() - 2].chained.hash;
  if (head.entries != entries || head.last_hash != last_hash) {
    refuse_ledger("does not end where its head says: the head names " +
                  std::to_string(head.entries) + " entries, the file has " +
                  std::to_string(entries) + " (entries were cut off, or added)");
  }
  std::string here = privacy::evidence::installation_id();
  if (head.installation != here) {
    refuse_ledger(
        "belongs to installation " + head.installation + ", and this database is installation " +
            here,
        "Replay a ledger exported from this database, or from the database it was restored from.");
  }
  if (!last.signature) {
    if (allow_unsigned) return;
    throw Error(
        core::sqlstate::kObjectNotInPrerequisiteState, "erasure ledger is not signed",
        "It was exported while no signing key was set, so nothing shows that it is complete and unchanged.",
        "Compare it with a copy you trust or with your audit export (every entry has a receipt_issued audit row "
        "with its hash), then pass allow_unsigned => true.");
  }
  std::optional<std::string> der = core::base64_decode(*last.signature);
  if (!der) refuse_ledger("head signature is not base64");
  std::string signed_head;
  try {
    signed_head = core::verified_cms_content(*der, privacy::evidence::known_certificates());
  } catch (const Error& bad) {  // thrown by core (OpenSSL), not by PostgreSQL: nothing to clean up
    refuse_ledger(
        "head signature: " + std::string(bad.what()),
        "The head was changed, or signed with a key this database does not know: after a restore, set "
        "the signing key again (privacy.set_signing_key) and replay.");
  }
  if (signed_head != core::ledger_head_text(head)) {
    refuse_ledger("head signature covers another head: the head line was changed");
  }
}

// Whether this database knows an entry: it is in privacy.erasure_ledger, or a job replays it.
bool is_known(const std::string& hash) {
  return pg::spi_query_bool(
      "SELECT (EXISTS (SELECT FROM privacy.erasure_ledger WHERE hash OPERATOR(pg_catalog.=) $1)"
      "        OR EXISTS (SELECT FROM privacy.jobs WHERE replay_of OPERATOR(pg_catalog.=) $1))::pg_catalog.text",
      {pg::text_param(hash)});
}

struct ReplayCounts {
  long long known = 0;
  long long replayed = 0;
  long long held = 0;
};

void put_outcome(ReturnSetInfo* result, const ledger::ChainedEntry& chained, const char* outcome,
                 std::optional<long long> job_id) {
  const LedgerEntry& entry = chained.entry;
  pg::pg_guard([&] {
    Datum values[7] = {
        Int64GetDatum(entry.seq),
        PointerGetDatum(cstring_to_text(chained.hash.c_str())),
        DirectFunctionCall2(enum_in, CStringGetDatum(entry.kind.c_str()),
                            ObjectIdGetDatum(TupleDescAttr(result->setDesc, 2)->atttypid)),
        PointerGetDatum(cstring_to_text(entry.tenant_id.c_str())),
        Int64GetDatum(entry.job_id),
        PointerGetDatum(cstring_to_text(outcome)),
        Int64GetDatum(job_id.value_or(0))};
    bool nulls[7] = {false, false, false, false, false, false, !job_id.has_value()};
    tuplestore_putvalues(result->setResult, result->setDesc, values, nulls);
  });
}

// An entry this database does not know, with its target in clear.
struct Unknown {
  const ledger::ChainedEntry* chained;
  std::string target_id;
};

// The entry's target in clear: a sealed subject id opened with the key that sealed it (an earlier
// signing key too). 55000 when this database does not hold that key, 22023 when it does not open.
std::string clear_target(const LedgerEntry& entry, size_t line) {
  if (!entry.sealed_by) return entry.target_id;
  std::optional<std::string> key = privacy::evidence::sealing_key_of(*entry.sealed_by);
  if (!key) {
    throw Error(
        core::sqlstate::kObjectNotInPrerequisiteState,
        "erasure ledger line " + std::to_string(line) +
            " names a subject sealed with signing key " + *entry.sealed_by +
            ", which this database does not hold",
        "Subject ids in the ledger are sealed under the installation's signing key, and pg_dump leaves the key out.",
        "Set that key again with privacy.set_signing_key(certificate, private_key) (the certificate is in "
        "privacy.signing_certificates), then replay.");
  }
  std::optional<std::string> subject = core::unseal_subject(*key, entry.tenant_id, entry.target_id);
  if (!subject)
    refuse_line(
        line,
        "has a sealed subject that does not open with the key it names: the entry was changed");
  return *subject;
}

// Applies one entry again: a new request of its kind for its target (approved by the tenant's
// policy like any other: a ledger proves nothing against an admin who can set the key), unless a
// legal hold covers the target now (then nothing is done: replay again once it is released).
void replay_entry(const Unknown& unknown, ReturnSetInfo* result, ReplayCounts& counts) {
  const ledger::ChainedEntry& chained = *unknown.chained;
  const LedgerEntry& entry = chained.entry;
  std::optional<std::string> subject =
      entry.target_type == "subject" ? std::optional<std::string>(unknown.target_id) : std::nullopt;
  if (privacy::holds::find_hold(entry.tenant_id, subject)) {
    ++counts.held;
    put_outcome(result, chained, "held", std::nullopt);
    return;
  }
  privacy::requests::Request request{
      *core::parse_job_kind(entry.kind),
      entry.tenant_id,
      entry.target_type,
      unknown.target_id,
      "replay of erasure ledger entry " + std::to_string(entry.seq) + " (job " +
          std::to_string(entry.job_id) + ", erased " + entry.erased_at + ") after a backup restore",
      std::nullopt,
      entry.regulation,
      privacy::requests::Replay{chained.hash, entry.seq, entry.job_id}};
  long long job_id = privacy::requests::submit(request);
  ++counts.replayed;
  put_outcome(result, chained, "replayed", job_id);
}

}  // namespace

// privacy.replay_erasures(ledger, allow_unsigned): checks the whole ledger first (nothing happens
// when any check fails), then replays every entry this database does not know, in seq order.
PRIVACY_SQL_FUNCTION(privacy_replay_erasures) {
  privacy::tenant_scope::require(std::nullopt, std::nullopt,
                                 "privacy.replay_erasures");  // platform-wide only
  std::string ledger_text = pg::text_arg(
      fcinfo, 0, "ledger",
      "Pass the text privacy.erasure_ledger_export() wrote, e.g. psql's \\set ledger `cat ledger.jsonl`.");
  bool allow_unsigned = !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);
  pg::pg_guard([&] { InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC); });
  auto* result = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);

  pg::SpiConnection spi;
  std::vector<ParsedLine> lines = parse_ledger(ledger_text);
  verify_chain(lines);
  verify_head(lines, allow_unsigned);
  ledger::lock_ledger();
  ReplayCounts counts;
  std::vector<Unknown> unknown;  // every target opened before the first job is made
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    if (is_known(lines[i].chained.hash)) {
      ++counts.known;
      continue;
    }
    unknown.push_back(Unknown{&lines[i].chained, clear_target(lines[i].chained.entry, i + 1)});
  }
  for (const Unknown& entry : unknown) replay_entry(entry, result, counts);

  privacy::audit::Entry entry;
  entry.action = "erasures_replayed";
  entry.target = "privacy.erasure_ledger";
  entry.detail_json =
      core::json_object_of_values({{"entries", std::to_string(lines.size() - 1)},
                                   {"known", std::to_string(counts.known)},
                                   {"replayed", std::to_string(counts.replayed)},
                                   {"held", std::to_string(counts.held)},
                                   {"last_hash", core::json_string(lines.back().head.last_hash)},
                                   {"signed", lines.back().signature ? "true" : "false"}});
  privacy::audit::append(entry);
  std::string summary = std::to_string(lines.size() - 1) +
                        " ledger entries: " + std::to_string(counts.known) + " known here, " +
                        std::to_string(counts.replayed) + " replayed, " +
                        std::to_string(counts.held) + " held";
  pg::pg_guard([&] { ereport(NOTICE, (errmsg("%s", summary.c_str()))); });
  return (Datum)0;
}
