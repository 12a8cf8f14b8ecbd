// Receipts and the receipt signing key (docs/compliance.md, "Receipts"): the hook the job
// lifecycle calls when a request finishes, privacy.set_signing_key and privacy.receipt.
#include "access/tenant_scope.hpp"
#include "compliance/receipts.hpp"

#include "audit/audit.hpp"
#include "core/encoding.hpp"
#include "core/cms_writer.hpp"
#include "core/hash_chain.hpp"
#include "core/json.hpp"
#include "core/receipt.hpp"
#include "compliance/erasure_ledger.hpp"
#include "jobs/jobs.hpp"
#include "pg/spi.hpp"

#include <ctime>

namespace privacy::evidence {

namespace {

using pg::int8_param;
using pg::text_param;

// What the receipt says about the job, read in the finishing transaction.
core::ReceiptFacts load_facts(long long job_id) {
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "SELECT j.kind::pg_catalog.text, j.tenant_id, j.target_type::pg_catalog.text, j.target_id,"
      "       j.regulation::pg_catalog.text, j.status::pg_catalog.text, " +
          utc_text("j.requested_at") + ", " + utc_text("j.decided_at") + ", " +
          utc_text("j.due_at") + ", " + utc_text("j.finished_at") + ", " +
          utc_text("j.finalized_at") + ", " +
          "       COALESCE(j.finished_at OPERATOR(pg_catalog.<=) j.due_at, false)::pg_catalog.text,"
          "       j.deadline_extensions::pg_catalog.text, j.processed_items::pg_catalog.text,"
          "       j.failed_items::pg_catalog.text, j.result OPERATOR(pg_catalog.->>) 'sha256',"
          "       j.result OPERATOR(pg_catalog.->>) 'size_bytes',"
          "       pg_catalog.encode(privacy._random_bytes(16), 'hex'), " +
          utc_text("pg_catalog.clock_timestamp()") +
          "  FROM privacy.jobs j WHERE j.id OPERATOR(pg_catalog.=) $1",
      {int8_param(job_id)});
  const pg::TextRow& row = rows.at(0);
  core::ReceiptFacts facts;
  facts.installation = installation_id();
  facts.job_id = job_id;
  facts.kind = row.text(0);
  facts.tenant_id = row.text(1);
  facts.target_type = row.text(2);
  if (facts.target_type == "subject") {
    facts.subject_salt = row.text(17);
    facts.subject_sha256 = core::subject_digest(row.text(17), row.text(3));
  }
  facts.regulation = row.text(4);
  facts.status = row.text(5);
  facts.requested_at = row.text(6);
  facts.decided_at = row[7];
  facts.due_at = row.text(8);
  facts.completed_at = row[9];
  facts.finalized_at = row[10];
  facts.answered_on_time = row.boolean(11);
  facts.deadline_extensions = row.int4(12);
  facts.processed_items = row.int8(13);
  facts.failed_items = row.int8(14);
  if (facts.kind == "export") {
    facts.export_sha256 = row[15];
    if (row[16]) facts.export_size_bytes = row.int8(16);
  }
  facts.issued_at = row.text(18);

  // The tables the job recorded in its result (the export's rows, an erase's or purge's rows of
  // the run that completed it).
  for (
      const pg::TextRow& table : pg::spi_query_rows(
          "SELECT t OPERATOR(pg_catalog.->>) 'table',"
          "       COALESCE(t OPERATOR(pg_catalog.->>) 'rows', t OPERATOR(pg_catalog.->>) 'rows_this_run', '0')"
          "  FROM privacy.jobs j,"
          "       LATERAL pg_catalog.jsonb_array_elements(CASE WHEN pg_catalog.jsonb_typeof(j.result OPERATOR(pg_catalog.->) 'tables')"
          "                OPERATOR(pg_catalog.=) 'array' THEN j.result OPERATOR(pg_catalog.->) 'tables' ELSE '[]' END) t"
          " WHERE j.id OPERATOR(pg_catalog.=) $1",
          {int8_param(job_id)})) {
    facts.tables.push_back(
        core::TableRows{table[0].value_or(""), table.optional_int8(1).value_or(0)});
  }

  facts.audit_chain = audit::chain_of(facts.tenant_id);
  for (
      const pg::TextRow& audit_row : pg::spi_query_rows(
          "SELECT id::pg_catalog.text, hash FROM privacy.audit_log"
          " WHERE job_id OPERATOR(pg_catalog.=) $1 AND chain OPERATOR(pg_catalog.=) $2 ORDER BY id",
          {int8_param(job_id), text_param(facts.audit_chain)})) {
    facts.audit_rows.push_back(core::AuditRowRef{audit_row.int8(0), audit_row.text(1)});
  }
  std::vector<pg::TextRow> head = pg::spi_query_rows(
      "SELECT last_id::pg_catalog.text, last_hash FROM privacy.audit_chains WHERE chain OPERATOR(pg_catalog.=) $1",
      {text_param(facts.audit_chain)});
  facts.chain_head = core::AuditRowRef{head.at(0).int8(0), head.at(0).text(1)};
  return facts;
}

// Whether the job is finished as far as receipts go, and has no receipt yet: an export or purge
// completed, or an erase completed and finalized (an erase cancelled or failed part-way and then
// finalized did not answer the request: no receipt, no ledger entry).
bool needs_receipt(long long job_id) {
  return pg::spi_query_bool(
      "SELECT (((j.kind OPERATOR(pg_catalog.<>) 'erase'::privacy.job_kind"
      "         AND j.status OPERATOR(pg_catalog.=) 'completed'::privacy.job_status)"
      "        OR (j.kind OPERATOR(pg_catalog.=) 'erase'::privacy.job_kind"
      "            AND j.status OPERATOR(pg_catalog.=) 'completed'::privacy.job_status"
      "            AND j.finalized_at IS NOT NULL))"
      "       AND NOT EXISTS (SELECT FROM privacy.receipts r WHERE r.job_id OPERATOR(pg_catalog.=) j.id))"
      "       ::pg_catalog.text FROM privacy.jobs j WHERE j.id OPERATOR(pg_catalog.=) $1",
      {int8_param(job_id)});
}

// Signs a receipt document; the audit detail says whether it was signed and by whom.
struct Signature {
  std::optional<std::string> der;
  std::optional<std::string> fingerprint;
  std::string why_not;
};

Signature sign(const std::string& document) {
  CurrentSigner current = current_signer();
  if (!current.signer) return Signature{std::nullopt, std::nullopt, current.why_not};
  return Signature{current.signer->sign(document), current.fingerprint, ""};
}

}  // namespace

std::string utc_text(const std::string& expression) {
  return "pg_catalog.to_char((" + expression +
         ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')";
}

std::string installation_id() {
  pg::SpiConnection spi;
  return pg::spi_query_text(
             "SELECT id::pg_catalog.text FROM privacy.installation ORDER BY created_at, id LIMIT 1")
      .value_or("unknown");
}

CurrentSigner current_signer() {
  pg::SpiConnection spi;
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "SELECT c.certificate, k.private_key, c.fingerprint FROM privacy.signing_key k"
      "  JOIN privacy.signing_certificates c ON c.fingerprint OPERATOR(pg_catalog.=) k.fingerprint AND c.active");
  if (rows.empty()) return CurrentSigner{std::nullopt, std::nullopt, "no signing key is set"};
  try {
    return CurrentSigner{core::CmsSigner(*rows[0][0], *rows[0][1], std::time(nullptr)), rows[0][2],
                         ""};
  } catch (const core::Error& unusable) {  // thrown by core, not by PostgreSQL: nothing to clean up
    return CurrentSigner{std::nullopt, rows[0][2], unusable.what()};
  }
}

std::optional<SealingKey> active_sealing_key() {
  pg::SpiConnection spi;
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "SELECT k.fingerprint, k.private_key FROM privacy.signing_key k"
      "  JOIN privacy.signing_certificates c ON c.fingerprint OPERATOR(pg_catalog.=) k.fingerprint AND c.active");
  if (rows.empty()) return std::nullopt;
  return SealingKey{*rows[0][0], core::sealing_key_of(*rows[0][1])};
}

std::optional<std::string> sealing_key_of(const std::string& fingerprint) {
  pg::SpiConnection spi;
  std::optional<std::string> pem = pg::spi_query_text(
      "SELECT private_key FROM privacy.signing_key WHERE fingerprint OPERATOR(pg_catalog.=) $1",
      {text_param(fingerprint)});
  if (!pem) return std::nullopt;
  return core::sealing_key_of(*pem);
}

std::vector<std::string> known_certificates() {
  pg::SpiConnection spi;
  std::vector<std::string> certificates;
  for (const pg::TextRow& row :
       pg::spi_query_rows("SELECT certificate FROM privacy.signing_certificates ORDER BY set_at")) {
    certificates.push_back(*row[0]);
  }
  return certificates;
}

void job_closed(long long job_id) {
  pg::SpiConnection spi;
  if (!needs_receipt(job_id)) return;
  std::optional<erasure_ledger::Appended> ledger = erasure_ledger::append_if_erasure(job_id);
  core::ReceiptFacts facts = load_facts(job_id);
  if (ledger) {
    facts.ledger_seq = ledger->seq;
    facts.ledger_hash = ledger->hash;
  }
  std::string document = core::receipt_json(facts);
  std::string digest = core::sha256_hex(document);
  Signature signature = sign(document);
  pg::spi_execute(
      "INSERT INTO privacy.receipts (job_id, document, sha256, signature, signed_by, signed_at)"
      " VALUES ($1, $2, $3, pg_catalog.decode($4, 'base64'), $5, CASE WHEN $4 IS NOT NULL THEN pg_catalog.now() END)",
      {int8_param(job_id), text_param(document), text_param(digest),
       text_param(signature.der ? std::optional<std::string>(core::base64_encode(*signature.der))
                                : std::nullopt),
       text_param(signature.der ? signature.fingerprint : std::nullopt)});

  std::string detail = core::json_object_of_values(
      {{"sha256", core::json_string(digest)},
       {"signed_by", signature.der
                         ? std::optional<std::string>(core::json_string(*signature.fingerprint))
                         : std::nullopt},
       {"not_signed", signature.der
                          ? std::nullopt
                          : std::optional<std::string>(core::json_string(signature.why_not))},
       {"erasure_ledger", ledger ? std::optional<std::string>(core::json_object_of_values(
                                       {{"seq", std::to_string(ledger->seq)},
                                        {"hash", core::json_string(ledger->hash)}}))
                                 : std::nullopt}});
  audit::append(
      jobs::job_audit_entry(jobs::load(job_id, jobs::Lock::None), "receipt_issued", detail));
}

}  // namespace privacy::evidence

namespace {

namespace pg = privacy::pg;
namespace core = privacy::core;
using privacy::core::Error;

// Signs the receipts issued while no key was set, with the signer just stored.
long long sign_pending_receipts(const core::CmsSigner& signer, const std::string& fingerprint) {
  long long signed_now = 0;
  for (const pg::TextRow& row : pg::spi_query_rows(
           "SELECT job_id::pg_catalog.text, document FROM privacy.receipts WHERE signature IS NULL"
           " ORDER BY job_id FOR UPDATE")) {
    pg::spi_execute(
        "UPDATE privacy.receipts SET signature = pg_catalog.decode($2, 'base64'), signed_by = $3,"
        " signed_at = pg_catalog.now() WHERE job_id OPERATOR(pg_catalog.=) $1",
        {pg::int8_param(row.int8(0)), pg::text_param(core::base64_encode(signer.sign(row.text(1)))),
         pg::text_param(fingerprint)});
    ++signed_now;
  }
  return signed_now;
}

}  // namespace

// privacy.set_signing_key(certificate, private_key): checks both (core::CmsSigner), makes the
// certificate the active one (keeping earlier ones, for old evidence), stores the key where no
// role can read it, signs the receipts that waited for a key, audits 'signing_key_set' with the
// fingerprint (never the key).
PRIVACY_SQL_FUNCTION(privacy_set_signing_key) {
  privacy::tenant_scope::require(std::nullopt, std::nullopt,
                                 "privacy.set_signing_key");  // platform-wide only
  std::string certificate = pg::text_arg(
      fcinfo, 0, "certificate",
      "Pass the PEM text of the signing certificate (-----BEGIN CERTIFICATE----- ...).");
  std::string key = pg::text_arg(fcinfo, 1, "private_key", "Pass the PEM text of its private key.");
  core::CmsSigner signer(certificate, key, std::time(nullptr));
  const core::CertificateInfo& info = signer.certificate();

  pg::SpiConnection spi;
  std::optional<std::string> replaced = pg::spi_query_text(
      "UPDATE privacy.signing_certificates SET active = false, replaced_at = pg_catalog.now()"
      " WHERE active AND fingerprint OPERATOR(pg_catalog.<>) $1 RETURNING fingerprint",
      {pg::text_param(info.sha256_fingerprint)});
  pg::spi_execute(
      "INSERT INTO privacy.signing_certificates (fingerprint, certificate, subject, key_type, not_after)"
      " VALUES ($1, $2, $3, $4, $5::pg_catalog.timestamptz)"
      " ON CONFLICT (fingerprint) DO UPDATE SET active = true, replaced_at = NULL,"
      "   set_by = session_user, set_at = pg_catalog.now()",
      {pg::text_param(info.sha256_fingerprint), pg::text_param(certificate),
       pg::text_param(info.subject), pg::text_param(info.key_type),
       pg::text_param(info.not_after)});
  // Earlier keys stay: they open the ledger entries they sealed (SealingKeys).
  pg::spi_execute(
      "INSERT INTO privacy.signing_key (fingerprint, private_key) VALUES ($1, $2)"
      " ON CONFLICT (fingerprint) DO UPDATE SET private_key = EXCLUDED.private_key, set_at = pg_catalog.now()",
      {pg::text_param(info.sha256_fingerprint), pg::text_param(key)});
  long long signed_now = sign_pending_receipts(signer, info.sha256_fingerprint);

  privacy::audit::Entry entry;
  entry.action = "signing_key_set";
  entry.target = "privacy.signing_key";
  entry.detail_json = core::json_object_of_values(
      {{"fingerprint", core::json_string(info.sha256_fingerprint)},
       {"subject", core::json_string(info.subject)},
       {"key_type", core::json_string(info.key_type)},
       {"not_after", core::json_string(info.not_after)},
       {"replaced",
        replaced ? std::optional<std::string>(core::json_string(*replaced)) : std::nullopt},
       {"receipts_signed", std::to_string(signed_now)}});
  privacy::audit::append(entry);

  TupleDesc descriptor = pg::pg_guard([&] {
    TupleDesc result_type = nullptr;
    if (get_call_result_type(fcinfo, nullptr, &result_type) != TYPEFUNC_COMPOSITE) {
      elog(ERROR, "privacy.set_signing_key must return a record");
    }
    return BlessTupleDesc(result_type);
  });
  std::string not_after = info.not_after;
  return pg::pg_guard([&] {
    Datum values[5] = {PointerGetDatum(cstring_to_text(info.subject.c_str())),
                       PointerGetDatum(cstring_to_text(info.key_type.c_str())),
                       DirectFunctionCall3(timestamptz_in, CStringGetDatum(not_after.c_str()),
                                           ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)),
                       PointerGetDatum(cstring_to_text(info.sha256_fingerprint.c_str())),
                       Int64GetDatum(signed_now)};
    bool nulls[5] = {false, false, false, false, false};
    return HeapTupleGetDatum(heap_form_tuple(descriptor, values, nulls));
  });
}

// privacy.receipt(job_id): the signed receipt as PEM. 22023 for an unknown job, 55000 when the
// job has no receipt yet or it waits for a signing key.
PRIVACY_SQL_FUNCTION(privacy_receipt) {
  long long job_id = pg::int8_arg(fcinfo, 0, "job_id");
  pg::SpiConnection spi;
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "SELECT j.kind::pg_catalog.text, j.status::pg_catalog.text, (r.job_id IS NOT NULL)::pg_catalog.text,"
      "       pg_catalog.encode(r.signature, 'base64'), j.tenant_id"
      "  FROM privacy.jobs j LEFT JOIN privacy.receipts r ON r.job_id OPERATOR(pg_catalog.=) j.id"
      " WHERE j.id OPERATOR(pg_catalog.=) $1",
      {pg::int8_param(job_id)}, true);
  std::string job = "job " + std::to_string(job_id);
  if (rows.empty()) {
    throw Error(core::sqlstate::kInvalidParameter, job + " does not exist", "",
                "See privacy.job_overview for the jobs.");
  }
  const pg::TextRow& row = rows[0];
  privacy::tenant_scope::require(*row[4], std::nullopt, "privacy.receipt of " + job);
  if (*row[2] != "true") {
    std::string when = *row[0] == "erase"
                           ? "an erase's receipt is issued when its rows are finalized"
                           : "a receipt is issued when the job completes";
    throw Error(core::sqlstate::kObjectNotInPrerequisiteState,
                job + " has no receipt yet (" + *row[0] + " job, " + *row[1] + ")", when);
  }
  if (!row[3]) {
    throw Error(
        core::sqlstate::kObjectNotInPrerequisiteState,
        "the receipt of " + job + " is not signed: no signing key was set when it was issued", "",
        "Set one with privacy.set_signing_key(certificate, private_key); it signs every waiting receipt.");
  }
  std::string base64;
  for (char c : *row[3]) {
    if (c != '\n') base64 += c;
  }
  std::string pem = core::der_to_pem(*core::base64_decode(base64));
  if (!pem.empty() && pem.back() == '\n') pem.pop_back();  // psql -At adds the last newline
  return pg::pg_guard(
      [&] { return PointerGetDatum(cstring_to_text_with_len(pem.data(), pem.size())); });
}
