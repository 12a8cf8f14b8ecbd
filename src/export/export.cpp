// The export job (docs/exports.md): the subject's rows from every registered table, as one JSON
// document, encrypted on the fly into a CMS AuthEnvelopedData stream and stored in chunks.
//
// Data flow, one batch at a time (the job loop calls begin / run_batch / finish; the relations
// come in the order of the one relation walk, data/walk.hpp: children before parents):
//
//   batch::read_batch (<= limit rows, keyset)  ->  ExportDocument (JSON framing)  ->
//   CmsEnvelopeWriter
//     (AES-256-GCM, one key copy per recipient)  ->  ChunkBuffer (1 MB chunks + SHA-256)
//     ->  INSERT INTO privacy.export_file_chunks, in the batch's own transaction.
//
// Memory stays flat: each batch's SPI result is freed when the batch ends, the writer holds less
// than 64 kB of plaintext and the chunk buffer less than one chunk. Rows are exported without
// pg_privacy's column privacy_erased_by; the "_erased" field of each row says whether it is marked.
//
// Every read of an application table (and the check that the subject id fits a column's type)
// runs as that table's owner (docs/security.md); privacy.* is read and written as the extension
// owner. Every statement is schema-qualified.
//
// The encryption stream lives in this process only, so it cannot survive a crash: a resumed run
// would have committed chunks but no stream to continue them. begin() therefore always starts
// over (deletes any old chunks, asks the loop to reset its counters). The file row in
// privacy.export_files is written by finish() alone, so a half file is never offered.
#include "export/export.hpp"

#include "audit/audit.hpp"
#include "data/batch.hpp"
#include "core/certificate.hpp"
#include "core/chunk_buffer.hpp"
#include "core/cms_writer.hpp"
#include "core/export_document.hpp"
#include "core/json.hpp"
#include "jobs/executor.hpp"
#include "pg/boundary.hpp"
#include "pg/guc.hpp"
#include "pg/security_context.hpp"
#include "pg/spi.hpp"
#include "data/walk.hpp"

#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace privacy::exports {

using pg::int8_param;
using pg::text_param;

namespace {

constexpr size_t kChunkBytes = 1024 * 1024;

const char* const kAddRecipientHint =
    "Add a recipient certificate with privacy.add_export_recipient(name, certificate); "
    "see docs/exports.md for an openssl command that makes a key and certificate.";

}  // namespace

std::vector<Recipient> load_active_recipients() {
  pg::SpiConnection spi;
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "SELECT name, certificate FROM privacy.export_recipients WHERE active ORDER BY name");
  if (rows.empty()) {
    throw core::Error(core::sqlstate::kObjectNotInPrerequisiteState,
                      "no active export recipient: nobody could open an export file",
                      "Exports are encrypted to the certificates in privacy.export_recipients.",
                      kAddRecipientHint);
  }
  std::vector<Recipient> recipients;
  for (const pg::TextRow& row : rows) {
    const std::string& name = *row[0];
    core::CertificateInfo info;
    try {
      info = core::inspect_recipient_certificate(*row[1], std::time(nullptr));
    } catch (const core::Error& error) {
      throw core::Error(core::sqlstate::kObjectNotInPrerequisiteState,
                        "export recipient \"" + name + "\" cannot receive exports: " + error.what(),
                        error.detail(),
                        "Remove it with privacy.remove_export_recipient('" + name +
                            "') and add a current certificate with privacy.add_export_recipient.");
    }
    recipients.push_back(Recipient{name, *row[1], info.sha256_fingerprint});
  }
  return recipients;
}

void ensure_recipient_available() { load_active_recipients(); }

namespace {

// A bytea datum (palloc'd in the current memory context) holding `bytes`.
pg::SqlParam bytea_param(std::string_view bytes) {
  Datum value = pg::pg_guard([&] {
    bytea* data = static_cast<bytea*>(palloc(VARHDRSZ + bytes.size()));
    SET_VARSIZE(data, VARHDRSZ + bytes.size());
    memcpy(VARDATA(data), bytes.data(), bytes.size());
    return PointerGetDatum(data);
  });
  return pg::SqlParam{BYTEAOID, value, false};
}

void store_chunk(long long job_id, int seq, std::string_view chunk) {
  pg::SpiConnection spi;  // the chunk's palloc'd copy is freed when this closes
  pg::spi_execute(
      "INSERT INTO privacy.export_file_chunks (job_id, seq, data) VALUES ($1, $2, $3)",
      {int8_param(job_id), int8_param(static_cast<long long>(seq)), bytea_param(chunk)});
}

// The export's action in each relation: its part of the document, the subject's rows in key order.
class ReadAction final : public walk::RelationAction {
 public:
  void use(const jobs::Job& job, core::ExportDocument* document) {
    job_ = job;
    document_ = document;
  }
  long long count(const registry::TableInfo& table,
                  const std::optional<std::string>& after) override {
    return batch::count_rows(job_, table, batch::Operation::Read, after);
  }
  batch::BatchResult run(const registry::TableInfo& table, const std::optional<std::string>& after,
                         int limit) override {
    batch::BatchResult result = batch::read_batch(
        job_, table, after, limit, [&](std::string_view row) { document_->add_row(row); });
    rows_.back().second += result.processed;
    return result;
  }
  void enter(const registry::TableInfo& table) override {
    document_->begin_table(table.qualified);
    rows_.emplace_back(table.qualified, 0);
  }
  void leave(const registry::TableInfo&) override { document_->end_table(); }
  // Rows written per table, in document order.
  const std::vector<std::pair<std::string, long long>>& rows() const { return rows_; }

 private:
  jobs::Job job_;
  core::ExportDocument* document_ = nullptr;
  std::vector<std::pair<std::string, long long>> rows_;
};

class ExportExecutor final : public jobs::PhaseExecutor {
 public:
  jobs::RunStart begin(const jobs::Job& job) override;
  jobs::BatchStep run_batch(const jobs::Job& job, int limit) override;
  std::string finish(const jobs::Job& job) override;

 private:
  void check_stream_in_step(long long job_id) const;
  std::string cursor_json() const;
  std::string result_json(const jobs::Job& job, const std::string& expires_at) const;

  std::vector<Recipient> recipients_;
  walk::Walk walk_{"export", walk::HoldPolicy::Ignore};
  ReadAction action_;
  bool finished_ = false;
  // Declared in pipeline order: destroyed document first, chunk buffer last.
  std::unique_ptr<core::ChunkBuffer> chunks_;
  std::unique_ptr<core::CmsEnvelopeWriter> writer_;
  std::unique_ptr<core::ExportDocument> document_;
};

// Checks the recipients, throws away whatever an earlier run left, counts the rows and opens
// the encryption stream. An export always starts over (see the top of this file).
jobs::RunStart ExportExecutor::begin(const jobs::Job& job) {
  pg::SpiConnection spi;
  recipients_ = load_active_recipients();
  uint64 stale_chunks = pg::spi_execute(
      "DELETE FROM privacy.export_file_chunks WHERE job_id OPERATOR(pg_catalog.=) $1",
      {int8_param(job.id)});
  uint64 stale_files =
      pg::spi_execute("DELETE FROM privacy.export_files WHERE job_id OPERATOR(pg_catalog.=) $1",
                      {int8_param(job.id)});
  bool restart =
      job.cursor_json.has_value() || job.processed_items > 0 || stale_chunks > 0 || stale_files > 0;

  std::vector<std::string> pems;
  for (const Recipient& recipient : recipients_) pems.push_back(recipient.certificate_pem);
  long long job_id = job.id;
  chunks_ = std::make_unique<core::ChunkBuffer>(
      kChunkBytes, [job_id](int seq, std::string_view chunk) { store_chunk(job_id, seq, chunk); });
  core::ChunkBuffer* chunk_sink = chunks_.get();
  writer_ = std::make_unique<core::CmsEnvelopeWriter>(
      pems,
      [chunk_sink](const unsigned char* data, size_t size) { chunk_sink->append(data, size); });
  core::CmsEnvelopeWriter* writer = writer_.get();
  document_ = std::make_unique<core::ExportDocument>(
      [writer](std::string_view piece) { writer->write(piece); });
  action_.use(job, document_.get());
  walk_.start(job, true);
  long long total = walk_.remaining(job, action_);
  std::string generated_at = *pg::spi_query_text(
      "SELECT pg_catalog.to_char(pg_catalog.now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')");
  document_->begin(job.id, job.tenant_id, job.target_id, generated_at);
  return jobs::RunStart{total, restart};
}

// The chunks committed so far must be exactly the ones this stream wrote. If a batch's
// transaction was rolled back after the stream had moved on (or another run touched the job),
// continuing would store a corrupt file: fail instead, and the next run starts over.
void ExportExecutor::check_stream_in_step(long long job_id) const {
  long long stored =
      pg::spi_query_int8(
          "SELECT pg_catalog.count(*) FROM privacy.export_file_chunks WHERE job_id OPERATOR(pg_catalog.=) $1",
          {int8_param(job_id)}, false /* not read-only: see this transaction's own inserts */)
          .value_or(0);
  if (stored != chunks_->chunks_written()) {
    throw core::Error(core::sqlstate::kObjectNotInPrerequisiteState,
                      "export of job " + std::to_string(job_id) +
                          " lost its place: " + std::to_string(stored) + " chunks stored, " +
                          std::to_string(chunks_->chunks_written()) + " written by this run",
                      "", "Retry the job; an export always starts over from the beginning.");
  }
}

jobs::BatchStep ExportExecutor::run_batch(const jobs::Job& job, int limit) {
  pg::SpiConnection spi;
  check_stream_in_step(job.id);
  action_.use(job, document_.get());
  walk::Step step = walk_.step(job, action_, limit > 0 ? limit : 1);
  finished_ = step.finished;
  return jobs::BatchStep{step.processed, 0, cursor_json(), step.finished, false};
}

// Where the stream is, for people reading privacy.jobs.cursor. A run never resumes from it.
std::string ExportExecutor::cursor_json() const {
  std::string out = "{\"restart\": \"an export always starts over\", \"tables_started\": " +
                    std::to_string(action_.rows().size());
  if (!action_.rows().empty()) {
    out += ", \"table\": " + core::json_string(action_.rows().back().first) +
           ", \"rows_done\": " + std::to_string(action_.rows().back().second);
  }
  return out + ", \"bytes_out\": " + std::to_string(chunks_->total_bytes()) + "}";
}

std::string ExportExecutor::finish(const jobs::Job& job) {
  pg::SpiConnection spi;
  check_stream_in_step(job.id);
  if (!finished_) {
    throw core::Error(core::sqlstate::kInternalError,
                      "export finish() called before every table was read");
  }
  document_->finish();
  writer_->finish();
  chunks_->finish();
  std::optional<std::string> expires_at = pg::spi_query_text(
      "INSERT INTO privacy.export_files (job_id, size_bytes, sha256, chunks, expires_at)"
      " SELECT $1, $2, $3, $4, pg_catalog.now() OPERATOR(pg_catalog.+) s.export_ttl"
      "   FROM privacy._tenant_settings($5::pg_catalog.text) AS s"
      " RETURNING expires_at::pg_catalog.text",
      {int8_param(job.id), int8_param(static_cast<long long>(chunks_->total_bytes())),
       text_param(chunks_->sha256_hex()),
       int8_param(static_cast<long long>(chunks_->chunks_written())), text_param(job.tenant_id)},
      false);
  std::string result = result_json(job, *expires_at);
  std::vector<std::string> names;
  for (const Recipient& recipient : recipients_) names.push_back(recipient.name);
  audit::append(audit::Entry{
      "export_created", job.tenant_id, job.id, job.target_id, "ok",
      *pg::spi_query_text(
          "SELECT ($1::pg_catalog.jsonb OPERATOR(pg_catalog.-) 'download'"
          " OPERATOR(pg_catalog.-) 'decrypt' OPERATOR(pg_catalog.-) 'check')::pg_catalog.text",
          {text_param(result)}),
      std::nullopt});
  return result;
}

// The job's result: what was exported, the file's size and digest, and the exact commands.
std::string ExportExecutor::result_json(const jobs::Job& job, const std::string& expires_at) const {
  std::string tables = "[";
  long long rows = 0;
  for (size_t i = 0; i < action_.rows().size(); ++i) {
    const auto& [name, count] = action_.rows()[i];
    tables += (i ? ", " : "") + std::string("{\"table\": ") + core::json_string(name) +
              ", \"rows\": " + std::to_string(count) + "}";
    rows += count;
  }
  tables += "]";
  std::string recipients = "[";
  for (size_t i = 0; i < recipients_.size(); ++i) {
    recipients += (i ? ", " : "") + std::string("{\"name\": ") +
                  core::json_string(recipients_[i].name) +
                  ", \"fingerprint\": " + core::json_string(recipients_[i].fingerprint) + "}";
  }
  recipients += "]";
  std::string id = std::to_string(job.id);
  std::string pem = "export-" + id + ".pem";
  return *pg::spi_query_text(
      "SELECT pg_catalog.jsonb_build_object('format', 'pg_privacy.export/1', 'size_bytes', $1::pg_catalog.int8,"
      " 'sha256', $2, 'chunks', $3::pg_catalog.int4, 'rows', $4::pg_catalog.int8, 'tables', $5::pg_catalog.jsonb,"
      " 'recipients', $6::pg_catalog.jsonb, 'expires_at', $7::pg_catalog.timestamptz,"
      " 'download', $8, 'decrypt', $9, 'check', $10)::pg_catalog.text",
      {int8_param(static_cast<long long>(chunks_->total_bytes())),
       text_param(chunks_->sha256_hex()),
       int8_param(static_cast<long long>(chunks_->chunks_written())), int8_param(rows),
       text_param(tables), text_param(recipients), text_param(expires_at),
       text_param("psql -Atc \"select privacy.download_export(" + id + ")\" > " + pem),
       text_param("openssl cms -decrypt -inform PEM -in " + pem +
                  " -inkey YOUR_KEY.pem -recip YOUR_CERT.pem -out export-" + id +
                  ".json || { echo 'decryption failed: do not use export-" + id +
                  ".json'; rm -f export-" + id + ".json; }"),
       text_param("grep -v -- ----- " + pem + " | base64 -d | sha256sum   # must print " +
                  chunks_->sha256_hex())});
}

}  // namespace

}  // namespace privacy::exports

std::unique_ptr<privacy::jobs::PhaseExecutor> privacy::jobs::make_export_executor() {
  return std::make_unique<exports::ExportExecutor>();
}

// privacy._inspect_certificate(certificate): what add_export_recipient stores and shows about a
// certificate, or the 22023 error of core::inspect_recipient_certificate. Internal.
PRIVACY_SQL_FUNCTION(privacy_inspect_certificate) {
  using namespace privacy;
  using pg::int8_param;
  using pg::text_param;
  std::string pem = pg::text_arg(fcinfo, 0, "certificate");  // the function is STRICT
  core::CertificateInfo info = core::inspect_recipient_certificate(pem, std::time(nullptr));
  const char* values[4] = {info.subject.c_str(), info.not_after.c_str(), info.key_type.c_str(),
                           info.sha256_fingerprint.c_str()};
  return pg::pg_guard([&] {
    TupleDesc descriptor;
    if (get_call_result_type(fcinfo, nullptr, &descriptor) != TYPEFUNC_COMPOSITE) {
      elog(ERROR, "privacy._inspect_certificate must return a record");
    }
    AttInMetadata* metadata = TupleDescGetAttInMetadata(BlessTupleDesc(descriptor));
    return HeapTupleGetDatum(BuildTupleFromCStrings(metadata, const_cast<char**>(values)));
  });
}
