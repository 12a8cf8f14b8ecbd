// The export job (DESIGN section 9): the subject's rows from every registered table, as one JSON
// document, encrypted on the fly into a CMS AuthEnvelopedData stream and stored in chunks.
//
// Data flow, one batch at a time (the batch loop of jobs.cpp calls begin / run_batch / finish):
//
//   SPI query (<= limit rows, keyset)  ->  ExportDocument (JSON framing)  ->  CmsEnvelopeWriter
//     (AES-256-GCM, one key copy per recipient)  ->  ChunkBuffer (1 MB chunks + SHA-256)
//     ->  INSERT INTO privacy.export_file_chunks, in the batch's own transaction.
//
// Memory stays flat: each batch's SPI result is freed when the batch ends, the writer holds less
// than 64 kB of plaintext and the chunk buffer less than one chunk.
//
// Every read of an application table (and the check that the subject id fits a column's type)
// runs as that table's owner (docs/security.md); privacy.* is read and written as the extension
// owner. Every statement is schema-qualified.
//
// The encryption stream lives in this process only, so it cannot survive a crash: a resumed run
// would have committed chunks but no stream to continue them. begin() therefore always starts
// over (deletes any old chunks, asks the loop to reset its counters). The file row in
// privacy.export_files is written by finish() alone, so a half file is never offered.
#include "export.hpp"

#include "audit.hpp"
#include "batch.hpp"
#include "core/certificate.hpp"
#include "core/chunk_buffer.hpp"
#include "core/cms_writer.hpp"
#include "core/export_document.hpp"
#include "core/json.hpp"
#include "job_executor.hpp"
#include "pg/boundary.hpp"
#include "pg/guc.hpp"
#include "pg/security_context.hpp"
#include "pg/spi.hpp"

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

// Columns the extension adds to registered tables. They never appear in an export; the soft-
// delete marker becomes the "_erased" field of each row instead.
constexpr const char* kErasedMarkerColumn = "privacy_erased_by";
bool is_internal_column(const std::string& column) { return column == kErasedMarkerColumn; }

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

// What the export reads from one registered table, decided once per run in begin().
struct TablePlan {
  Oid relid = InvalidOid;       // read as its owner
  std::string name;             // "schema.table", as shown in the document
  std::string first_sql;        // first page: $1 subject, $2 tenant, $3 limit
  std::string next_sql;         // later pages: the same plus $4.. the last key seen
  std::string count_sql;        // $1 subject, $2 tenant
  size_t key_count = 0;
  bool subject_fits = true;     // false: the subject id is not a valid value of the column's type
  long long expected_rows = 0;  // counted in begin(), for progress
  long long rows_written = 0;
  bool opened = false;
  std::optional<std::vector<std::string>> last_key;  // text of the key columns of the last row
};

// One registered table as the catalog describes it.
struct TableColumns {
  Oid relid = InvalidOid;
  std::string qualified_name;
  std::vector<std::string> columns;  // exported columns, in table order (internal ones left out)
  bool has_erased_marker = false;
  std::string subject_column, subject_type;
  std::optional<std::string> tenant_column, tenant_type;
  std::vector<std::pair<std::string, std::string>> keys;  // (column, type)
};

std::string column_type(const std::string& relid, const std::string& column) {
  std::optional<std::string> type = pg::spi_query_text(
      "SELECT pg_catalog.format_type(atttypid, atttypmod) FROM pg_catalog.pg_attribute"
      " WHERE attrelid OPERATOR(pg_catalog.=) $1::pg_catalog.oid AND attname OPERATOR(pg_catalog.=) $2::pg_catalog.name"
      "   AND attnum OPERATOR(pg_catalog.>) 0 AND NOT attisdropped",
      {text_param(relid), text_param(column)});
  if (!type) {
    throw core::Error(core::sqlstate::kUndefinedColumn,
                      "registered column \"" + column + "\" does not exist in table " + relid,
                      "", "Fix the registration in privacy.registered_tables.");
  }
  return *type;
}

std::vector<TableColumns> describe_registered_tables() {
  std::vector<TableColumns> tables;
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "SELECT r.relation::pg_catalog.oid::pg_catalog.text, pg_catalog.format('%I.%I', n.nspname, c.relname),"
      "       r.subject_column, r.tenant_column, r.key_columns::pg_catalog.text[]"
      "  FROM privacy.registered_tables r"
      "  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) r.relation"
      "  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
      " ORDER BY 2");
  for (const pg::TextRow& row : rows) {
    TableColumns table;
    const std::string relid = *row[0];
    table.relid = static_cast<Oid>(std::stoul(relid));
    table.qualified_name = *row[1];
    table.subject_column = *row[2];
    table.subject_type = column_type(relid, table.subject_column);
    if (row[3]) {
      table.tenant_column = *row[3];
      table.tenant_type = column_type(relid, *row[3]);
    }
    for (const pg::TextRow& key : pg::spi_query_rows(
             "SELECT k FROM pg_catalog.unnest($1::pg_catalog.text[]) WITH ORDINALITY AS u(k, i) ORDER BY i",
             {text_param(*row[4])})) {
      table.keys.emplace_back(*key[0], column_type(relid, *key[0]));
    }
    for (const pg::TextRow& column : pg::spi_query_rows(
             "SELECT attname FROM pg_catalog.pg_attribute"
             " WHERE attrelid OPERATOR(pg_catalog.=) $1::pg_catalog.oid AND attnum OPERATOR(pg_catalog.>) 0"
             "   AND NOT attisdropped ORDER BY attnum",
             {text_param(relid)})) {
      if (is_internal_column(*column[0])) {
        table.has_erased_marker = true;
      } else {
        table.columns.push_back(*column[0]);
      }
    }
    tables.push_back(std::move(table));
  }
  return tables;
}

// Builds the queries of one table. Each row comes back as the JSON text of its exported columns
// (row_to_json keeps the table's column order) plus "_erased", then the text of its key
// columns for the keyset position.
TablePlan plan_table(const TableColumns& table) {
  TablePlan plan;
  plan.relid = table.relid;
  plan.name = table.qualified_name;
  plan.key_count = table.keys.size();
  std::string from = " FROM " + table.qualified_name + " AS t";
  const std::string equals = " OPERATOR(pg_catalog.=) ";
  std::string where = " WHERE t." + pg::quote_ident(table.subject_column) + equals + "$1::" + table.subject_type;
  if (table.tenant_column) {
    where += " AND t." + pg::quote_ident(*table.tenant_column) + equals + "$2::" + *table.tenant_type;
  }
  std::string select_list;
  for (const std::string& column : table.columns) {
    select_list += "t." + pg::quote_ident(column) + ", ";
  }
  select_list += table.has_erased_marker
                     ? "t." + pg::quote_ident(kErasedMarkerColumn) + " IS NOT NULL AS \"_erased\""
                     : std::string("false AS \"_erased\"");
  std::string key_list, key_texts, key_params;
  for (size_t i = 0; i < table.keys.size(); ++i) {
    const auto& [column, type] = table.keys[i];
    std::string separator = i == 0 ? "" : ", ";
    key_list += separator + "t." + pg::quote_ident(column);
    key_texts += ", t." + pg::quote_ident(column) + "::pg_catalog.text";
    key_params += separator + "$" + std::to_string(i + 4) + "::" + type;
  }
  std::string select = "SELECT (SELECT pg_catalog.row_to_json(x) FROM (SELECT " + select_list +
                       ") AS x)::pg_catalog.text" + key_texts + from + where;
  std::string order = " ORDER BY " + key_list + " LIMIT $3";
  plan.first_sql = select + order;
  plan.next_sql = select + " AND (" + key_list + ") OPERATOR(pg_catalog.>) (" + key_params + ")" + order;
  plan.count_sql = "SELECT pg_catalog.count(*)" + from + where;
  return plan;
}

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
  pg::spi_execute("INSERT INTO privacy.export_file_chunks (job_id, seq, data) VALUES ($1, $2, $3)",
                  {int8_param(job_id), int8_param(static_cast<long long>(seq)), bytea_param(chunk)});
}

class ExportExecutor final : public jobs::JobExecutor {
 public:
  jobs::RunStart begin(const jobs::JobInfo& job) override;
  jobs::BatchStep run_batch(const jobs::JobInfo& job, int limit) override;
  std::string finish(const jobs::JobInfo& job) override;

 private:
  long long fetch_page(TablePlan& table, long long limit);
  void check_stream_in_step(long long job_id) const;
  std::string cursor_json() const;
  std::string result_json(const jobs::JobInfo& job, const std::string& expires_at) const;

  std::string subject_, tenant_;
  std::vector<Recipient> recipients_;
  std::vector<TablePlan> tables_;
  size_t current_table_ = 0;
  // Declared in pipeline order: destroyed document first, chunk buffer last.
  std::unique_ptr<core::ChunkBuffer> chunks_;
  std::unique_ptr<core::CmsEnvelopeWriter> writer_;
  std::unique_ptr<core::ExportDocument> document_;
};

// Checks the recipients, throws away whatever an earlier run left, plans and counts the tables
// and opens the encryption stream.
jobs::RunStart ExportExecutor::begin(const jobs::JobInfo& job) {
  pg::SpiConnection spi;
  subject_ = job.target_id;
  tenant_ = job.tenant_id;
  recipients_ = load_active_recipients();
  uint64 stale_chunks = pg::spi_execute(
      "DELETE FROM privacy.export_file_chunks WHERE job_id OPERATOR(pg_catalog.=) $1", {int8_param(job.id)});
  uint64 stale_files = pg::spi_execute(
      "DELETE FROM privacy.export_files WHERE job_id OPERATOR(pg_catalog.=) $1", {int8_param(job.id)});
  bool restart = job.cursor_json.has_value() || job.processed_items > 0 || stale_chunks > 0 ||
                 stale_files > 0;

  long long total = 0;
  for (const TableColumns& columns : describe_registered_tables()) {
    TablePlan plan = plan_table(columns);
    plan.subject_fits = batch::value_fits(columns.relid, columns.subject_type, job.target_id) &&
                        (!columns.tenant_type || batch::value_fits(columns.relid, *columns.tenant_type, job.tenant_id));
    if (plan.subject_fits) {
      pg::TableOwnerScope owner(plan.relid);
      plan.expected_rows = pg::spi_query_int8(plan.count_sql, {text_param(job.target_id),
                                                               text_param(job.tenant_id)})
                               .value_or(0);
    }
    total += plan.expected_rows;
    tables_.push_back(std::move(plan));
  }

  std::vector<std::string> pems;
  for (const Recipient& recipient : recipients_) pems.push_back(recipient.certificate_pem);
  long long job_id = job.id;
  chunks_ = std::make_unique<core::ChunkBuffer>(
      kChunkBytes, [job_id](int seq, std::string_view chunk) { store_chunk(job_id, seq, chunk); });
  core::ChunkBuffer* chunk_sink = chunks_.get();
  writer_ = std::make_unique<core::CmsEnvelopeWriter>(
      pems, [chunk_sink](const unsigned char* data, size_t size) { chunk_sink->append(data, size); });
  core::CmsEnvelopeWriter* writer = writer_.get();
  document_ = std::make_unique<core::ExportDocument>(
      [writer](std::string_view piece) { writer->write(piece); });
  std::string generated_at = *pg::spi_query_text(
      "SELECT pg_catalog.to_char(pg_catalog.now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')");
  document_->begin(job.id, job.tenant_id, job.target_id, generated_at);
  return jobs::RunStart{total, restart};
}

// The chunks committed so far must be exactly the ones this stream wrote. If a batch's
// transaction was rolled back after the stream had moved on (or another run touched the job),
// continuing would store a corrupt file: fail instead, and the next run starts over.
void ExportExecutor::check_stream_in_step(long long job_id) const {
  long long stored = pg::spi_query_int8(
      "SELECT pg_catalog.count(*) FROM privacy.export_file_chunks WHERE job_id OPERATOR(pg_catalog.=) $1",
      {int8_param(job_id)},
      false /* not read-only: see this transaction's own inserts */)
                         .value_or(0);
  if (stored != chunks_->chunks_written()) {
    throw core::Error(core::sqlstate::kObjectNotInPrerequisiteState,
                      "export of job " + std::to_string(job_id) +
                          " lost its place: " + std::to_string(stored) + " chunks stored, " +
                          std::to_string(chunks_->chunks_written()) + " written by this run",
                      "", "Retry the job; an export always starts over from the beginning.");
  }
}

// Fetches and writes at most `limit` rows of `table` after its last key. Returns how many.
long long ExportExecutor::fetch_page(TablePlan& table, long long limit) {
  std::vector<pg::SqlParam> params{text_param(subject_), text_param(tenant_), int8_param(limit)};
  if (table.last_key) {
    for (const std::string& key : *table.last_key) params.push_back(text_param(key));
  }
  uint64 count = 0;
  {
    pg::TableOwnerScope owner(table.relid);
    count = pg::spi_execute(table.last_key ? table.next_sql : table.first_sql, params);
  }
  SPITupleTable* page = SPI_tuptable;
  for (uint64 row = 0; row < count; ++row) {
    HeapTuple tuple = page->vals[row];
    text* json = pg::pg_guard([&] {
      bool is_null = false;
      Datum value = SPI_getbinval(tuple, page->tupdesc, 1, &is_null);
      return is_null ? nullptr : pg_detoast_datum_packed(reinterpret_cast<struct varlena*>(DatumGetPointer(value)));
    });
    if (json == nullptr) throw core::Error(core::sqlstate::kInternalError, "row_to_json returned NULL");
    document_->add_row(std::string_view(VARDATA_ANY(json), VARSIZE_ANY_EXHDR(json)));
    if (row + 1 == count) {
      std::vector<std::string> key;
      for (size_t i = 0; i < table.key_count; ++i) {
        char* value = pg::pg_guard([&] { return SPI_getvalue(tuple, page->tupdesc, static_cast<int>(i) + 2); });
        if (value == nullptr) {
          throw core::Error(core::sqlstate::kObjectNotInPrerequisiteState,
                            "a key column of " + table.name + " is NULL: the export cannot page through it",
                            "", "Register the table with key columns that are never NULL (its primary key).");
        }
        key.emplace_back(value);
      }
      table.last_key = std::move(key);
    }
  }
  pg::pg_guard([&] { SPI_freetuptable(page); });
  table.rows_written += static_cast<long long>(count);
  return static_cast<long long>(count);
}

jobs::BatchStep ExportExecutor::run_batch(const jobs::JobInfo& job, int limit) {
  pg::SpiConnection spi;  // every page of this batch is freed when it closes
  check_stream_in_step(job.id);
  jobs::BatchStep step;
  long long remaining = limit > 0 ? limit : 1;
  while (remaining > 0 && current_table_ < tables_.size()) {
    TablePlan& table = tables_[current_table_];
    if (!table.opened) {
      document_->begin_table(table.name);
      table.opened = true;
    }
    long long got = table.subject_fits ? fetch_page(table, remaining) : 0;
    remaining -= got;
    step.processed += got;
    if (got == 0 || remaining > 0) {  // a short page: the table is done
      document_->end_table();
      ++current_table_;
    }
  }
  step.done = current_table_ >= tables_.size();
  step.cursor_json = cursor_json();
  return step;
}

// Where the stream is, for people reading privacy.jobs.cursor. A run never resumes from it.
std::string ExportExecutor::cursor_json() const {
  std::string out = "{\"restart\": \"an export always starts over\", \"table_index\": " +
                    std::to_string(current_table_);
  if (current_table_ < tables_.size()) {
    const TablePlan& table = tables_[current_table_];
    out += ", \"table\": " + core::json_string(table.name) + ", \"rows_done\": " +
           std::to_string(table.rows_written);
  }
  return out + ", \"bytes_out\": " + std::to_string(chunks_->total_bytes()) + "}";
}

std::string ExportExecutor::finish(const jobs::JobInfo& job) {
  pg::SpiConnection spi;
  check_stream_in_step(job.id);
  if (current_table_ < tables_.size()) {
    throw core::Error(core::sqlstate::kInternalError, "export finish() called before every table was read");
  }
  document_->finish();
  writer_->finish();
  chunks_->finish();
  std::optional<std::string> expires_at = pg::spi_query_text(
      "INSERT INTO privacy.export_files (job_id, size_bytes, sha256, chunks, expires_at)"
      " SELECT $1, $2, $3, $4, pg_catalog.now() OPERATOR(pg_catalog.+) s.export_ttl"
      "   FROM privacy.tenant_settings($5::pg_catalog.text) AS s"
      " RETURNING expires_at::pg_catalog.text",
      {int8_param(job.id), int8_param(static_cast<long long>(chunks_->total_bytes())),
       text_param(chunks_->sha256_hex()), int8_param(static_cast<long long>(chunks_->chunks_written())),
       text_param(job.tenant_id)},
      false);
  std::string result = result_json(job, *expires_at);
  std::vector<std::string> names;
  for (const Recipient& recipient : recipients_) names.push_back(recipient.name);
  audit::append(audit::Entry{
      "export_created", job.tenant_id, job.id, job.target_id, "ok",
      *pg::spi_query_text("SELECT ($1::pg_catalog.jsonb OPERATOR(pg_catalog.-) 'download'"
                          " OPERATOR(pg_catalog.-) 'decrypt' OPERATOR(pg_catalog.-) 'check')::pg_catalog.text",
                          {text_param(result)}),
      std::nullopt});
  return result;
}

// The job's result: what was exported, the file's size and digest, and the exact commands.
std::string ExportExecutor::result_json(const jobs::JobInfo& job, const std::string& expires_at) const {
  std::string tables = "[";
  long long rows = 0;
  for (size_t i = 0; i < tables_.size(); ++i) {
    tables += (i ? ", " : "") + std::string("{\"table\": ") + core::json_string(tables_[i].name) +
              ", \"rows\": " + std::to_string(tables_[i].rows_written) + "}";
    rows += tables_[i].rows_written;
  }
  tables += "]";
  std::string recipients = "[";
  for (size_t i = 0; i < recipients_.size(); ++i) {
    recipients += (i ? ", " : "") + std::string("{\"name\": ") + core::json_string(recipients_[i].name) +
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
      {int8_param(static_cast<long long>(chunks_->total_bytes())), text_param(chunks_->sha256_hex()),
       int8_param(static_cast<long long>(chunks_->chunks_written())), int8_param(rows),
       text_param(tables), text_param(recipients), text_param(expires_at),
       text_param("psql -Atc \"select privacy.download_export(" + id + ")\" > " + pem),
       text_param("openssl cms -decrypt -inform PEM -in " + pem +
                  " -inkey YOUR_KEY.pem -recip YOUR_CERT.pem -out export-" + id +
                  ".json || { echo 'decryption failed: do not use export-" + id + ".json'; rm -f export-" +
                  id + ".json; }"),
       text_param("grep -v -- ----- " + pem + " | base64 -d | sha256sum   # must print " +
                  chunks_->sha256_hex())});
}

std::unique_ptr<jobs::JobExecutor> make_export_executor() { return std::make_unique<ExportExecutor>(); }

jobs::ExecutorRegistration export_registration(core::JobKind::Export, &make_export_executor);

}  // namespace

// privacy._run_export_now(job_id, stop_after_batches): a superuser-only test hook that runs the
// export executor of one job to the end in the calling transaction, the way the batch loop does
// (begin, run_batch until done, finish), and marks the job completed. With stop_after_batches
// it stops after that many batches without finishing, leaving committed chunks and a cursor
// behind like a worker that crashed, so tests can prove that the next run starts over.
jobs::JobInfo load_job(long long job_id) {
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "SELECT kind::pg_catalog.text, target_type::pg_catalog.text, target_id, tenant_id, cursor::pg_catalog.text,"
      "       processed_items::pg_catalog.text, failed_items::pg_catalog.text"
      "  FROM privacy.jobs WHERE id OPERATOR(pg_catalog.=) $1",
      {int8_param(job_id)});
  if (rows.empty()) {
    throw core::Error(core::sqlstate::kInvalidParameter, "job " + std::to_string(job_id) + " does not exist");
  }
  const pg::TextRow& row = rows[0];
  std::optional<core::JobKind> kind = core::parse_job_kind(*row[0]);
  if (kind != core::JobKind::Export) {
    throw core::Error(core::sqlstate::kInvalidParameter,
                      "job " + std::to_string(job_id) + " is an " + *row[0] + " job, not an export");
  }
  return jobs::JobInfo{job_id, *kind, *row[1], *row[2], *row[3], row[4],
                       std::stoll(*row[5]), std::stoll(*row[6])};
}

}  // namespace privacy::exports

PRIVACY_SQL_FUNCTION(privacy_run_export_now) {
  using namespace privacy;
  using pg::int8_param;
  using pg::text_param;
  if (!pg::pg_guard([] { return superuser(); })) {
    throw core::Error(core::sqlstate::kInsufficientPrivilege,
                      "privacy._run_export_now is a test hook for superusers only");
  }
  long long job_id = PG_GETARG_INT64(0);
  std::optional<long long> stop_after;
  if (!PG_ARGISNULL(1)) stop_after = PG_GETARG_INT32(1);
  std::string result;
  {
    pg::PinnedSearchPath pinned;  // like every unit of work (docs/security.md)
    pg::SpiConnection spi;
    jobs::JobInfo job = exports::load_job(job_id);
    std::unique_ptr<jobs::JobExecutor> executor = jobs::make_executor(core::JobKind::Export);
    jobs::RunStart start = executor->begin(job);
    if (start.restart_from_scratch) {
      job.cursor_json.reset();
      job.processed_items = 0;
      job.failed_items = 0;
    }
    pg::spi_execute("UPDATE privacy.jobs SET total_items = $2, processed_items = $3, cursor = NULL"
                    " WHERE id OPERATOR(pg_catalog.=) $1",
                    {int8_param(job_id), int8_param(start.total_items), int8_param(job.processed_items)});
    long long batches = 0;
    for (bool done = false; !done;) {
      if (stop_after && batches >= *stop_after) {
        fcinfo->isnull = true;
        return (Datum)0;
      }
      jobs::BatchStep step = executor->run_batch(job, pg::guc::batch_size);
      ++batches;
      job.processed_items += step.processed;
      job.cursor_json = step.cursor_json;
      done = step.done;
      pg::spi_execute("UPDATE privacy.jobs SET processed_items = $2, cursor = $3::pg_catalog.jsonb"
                      " WHERE id OPERATOR(pg_catalog.=) $1",
                      {int8_param(job_id), int8_param(job.processed_items), text_param(step.cursor_json)});
    }
    result = executor->finish(job);
    pg::spi_execute(
        "UPDATE privacy.jobs SET status = 'completed', result = $2::pg_catalog.jsonb, cursor = NULL,"
        " finished_at = pg_catalog.now(), updated_at = pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1",
        {int8_param(job_id), text_param(result)});
  }
  return pg::pg_guard([&] { return DirectFunctionCall1(jsonb_in, CStringGetDatum(result.c_str())); });
}

// privacy._inspect_certificate(certificate): what add_export_recipient stores and shows about a
// certificate, or the 22023 error of core::inspect_recipient_certificate. Internal.
PRIVACY_SQL_FUNCTION(privacy_inspect_certificate) {
  using namespace privacy;
  using pg::int8_param;
  using pg::text_param;
  std::string pem = pg::pg_guard([&] { return text_to_cstring(PG_GETARG_TEXT_PP(0)); });
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
