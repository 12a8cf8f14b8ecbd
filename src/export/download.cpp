// Reading finished export files back out, and deleting them when they expire (docs/exports.md).
//
//   privacy.download_export(job_id)  the file as PEM text ("-----BEGIN CMS-----"), one row per
//                                    stored chunk (the lines it completes), for
//                                    psql -Atc "select privacy.download_export(42)" > export.pem
//   privacy.export_chunks(job_id)    the same bytes as DER, one bytea per stored chunk
//
// Both stream: they are value-per-call set-returning functions that read, encode and hand out
// one stored chunk (1 MB) per call, so the downloading backend's memory is the same for any
// file size (docs/exports.md, "Download").
//
// Both are granted to privacy_admin only (the EXECUTE grant is the access check: these are
// SECURITY DEFINER, so current_user inside is the extension owner). Each call writes one
// export_downloaded audit row naming the session user.
//
// The launcher step "expire exports" deletes files once expires_at has passed (export_ttl),
// and the ciphertext left behind by export runs that failed or were cancelled.
#include "access/tenant_scope.hpp"
#include "export/export.hpp"

#include "audit/audit.hpp"
#include "core/cms_writer.hpp"
#include "pg/boundary.hpp"
#include "pg/spi.hpp"

#include <new>
#include <optional>
#include <string>
#include <type_traits>

namespace privacy::exports {

using pg::int8_param;
using pg::text_param;

namespace {

// A stored export file that may be handed out.
struct StoredFile {
  long long job_id;
  long long size_bytes;
  std::string sha256;
  int chunks;
};

[[noreturn]] void raise_expired(long long job_id, const std::string& expired_at) {
  throw core::Error(
      core::sqlstate::kObjectNotInPrerequisiteState,
      "export of job " + std::to_string(job_id) + " expired at " + expired_at,
      "Export files are deleted when their time to live (privacy.export_ttl, or the "
      "tenant's export_ttl) runs out.",
      "Request a new export with privacy.request_export(tenant_id, subject_id, reason).");
}

// Why there is no file to hand out for an export job: expired (when the file row is gone, the
// export_expired audit row or the job's result says when), not finished yet, or never made.
[[noreturn]] void raise_no_file(long long job_id, const std::string& status) {
  std::optional<std::string> expired_at = pg::spi_query_text(
      "SELECT coalesce((SELECT (a.detail->>'expires_at')::timestamptz::text FROM privacy.audit_log a"
      "                  WHERE a.job_id = $1 AND a.action = 'export_expired' ORDER BY a.id DESC LIMIT 1),"
      "                (SELECT (j.result->>'expires_at')::timestamptz::text FROM privacy.jobs j"
      "                  WHERE j.id = $1 AND (j.result->>'expires_at')::timestamptz <= now()))",
      {int8_param(job_id)});
  if (expired_at) raise_expired(job_id, *expired_at);
  if (status != "completed") {
    throw core::Error(
        core::sqlstate::kObjectNotInPrerequisiteState,
        "export of job " + std::to_string(job_id) + " is not ready: the job is " + status, "",
        "Wait until the job is completed: SELECT status, processed_items, total_items "
        "FROM privacy.jobs WHERE id = " +
            std::to_string(job_id) + ";");
  }
  throw core::Error(
      core::sqlstate::kObjectNotInPrerequisiteState,
      "export of job " + std::to_string(job_id) + " has no stored file", "",
      "Request a new export with privacy.request_export(tenant_id, subject_id, reason).");
}

// Checks that job_id is an export whose file can be handed out, and audits the download.
StoredFile open_for_download(long long job_id, const char* format) {
  std::vector<pg::TextRow> jobs = pg::spi_query_rows(
      "SELECT kind::text, status::text, tenant_id, target_id FROM privacy.jobs WHERE id = $1",
      {int8_param(job_id)});
  if (jobs.empty()) {
    throw core::Error(core::sqlstate::kInvalidParameter,
                      "job " + std::to_string(job_id) + " does not exist", "",
                      "List export jobs with: SELECT id, status, finished_at FROM privacy.jobs "
                      "WHERE kind = 'export' ORDER BY id;");
  }
  tenant_scope::require(*jobs[0][2], std::string("decide"),
                        "download of export job " + std::to_string(job_id));
  const std::string& kind = *jobs[0][0];
  const std::string& status = *jobs[0][1];
  if (kind != "export") {
    throw core::Error(core::sqlstate::kInvalidParameter,
                      "job " + std::to_string(job_id) + " is an " + kind + " job, not an export",
                      "", "Only export jobs have a file to download.");
  }
  // Read in the calling statement's snapshot, like every chunk after it (fetch_chunk).
  std::vector<pg::TextRow> files = pg::spi_query_rows(
      "SELECT size_bytes::text, sha256, chunks::text, expires_at::text, (expires_at <= now())::text"
      "  FROM privacy.export_files WHERE job_id = $1",
      {int8_param(job_id)}, true);
  if (files.empty()) raise_no_file(job_id, status);
  const pg::TextRow& file = files[0];
  if (file.boolean(4)) raise_expired(job_id, file.text(3));
  StoredFile stored{job_id, file.int8(0), file.text(1), file.int4(2)};
  audit::append(audit::Entry{
      "export_downloaded", *jobs[0][2], job_id, *jobs[0][3], "ok",
      *pg::spi_query_text(
          "SELECT jsonb_build_object('format', $1, 'size_bytes', $2::bigint, 'sha256', $3)::text",
          {text_param(format), int8_param(stored.size_bytes), text_param(stored.sha256)}),
      std::nullopt});
  return stored;
}

// Chunk `seq` of a job's file, as a bytea copied into the caller's memory context (outside the
// SPI connection), or an error if it is missing (a file row promises every chunk).
// read_only: the chunk is read in the snapshot of the statement calling the download function,
// the one in which open_for_download found the file. A download spans many calls; this way it
// reads one consistent file even if the file expires and is deleted meanwhile.
Datum fetch_chunk(long long job_id, int seq) {
  uint64 found =
      pg::spi_execute("SELECT data FROM privacy.export_file_chunks WHERE job_id = $1 AND seq = $2",
                      {int8_param(job_id), int8_param(static_cast<long long>(seq))}, true);
  if (found != 1) {
    throw core::Error(
        core::sqlstate::kInternalError,
        "export of job " + std::to_string(job_id) + " is missing chunk " + std::to_string(seq));
  }
  return pg::pg_guard([&] {
    bool is_null = false;
    Datum value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &is_null);
    // Chunks are stored out of line (TOAST): fetch the bytes before copying them out.
    struct varlena* bytes =
        pg_detoast_datum_packed(reinterpret_cast<struct varlena*>(DatumGetPointer(value)));
    Datum copy = SPI_datumTransfer(PointerGetDatum(bytes), false, -1);
    SPI_freetuptable(SPI_tuptable);
    return copy;
  });
}

// Where one download stands between the calls of a download function. It lives in the call's
// multi-call memory, which PostgreSQL frees however the query ends (last row, LIMIT, error,
// cancel): so it holds nothing that owns heap memory, and no destructor has to run.
struct Download {
  long long job_id;
  int chunks;
  int next_seq;          // the chunk the next call reads
  core::PemEncoder pem;  // download_export only: the base64 remainder between chunks
  bool pem_finished;     // download_export only: the END line is out
};
static_assert(std::is_trivially_destructible_v<Download>, "see the comment above Download");

// The Download of this call of a download function. On the first call: checks that the file
// can be handed out, audits the download once (open_for_download), and sets the Download up.
Download& download_of(FunctionCallInfo fcinfo, const char* format, FuncCallContext*& context) {
  if (SRF_IS_FIRSTCALL()) {
    long long job_id = PG_GETARG_INT64(0);
    StoredFile file = [&] {
      pg::SpiConnection spi;
      return open_for_download(job_id, format);
    }();
    pg::pg_guard([&] {
      context = SRF_FIRSTCALL_INIT();
      void* memory = MemoryContextAlloc(context->multi_call_memory_ctx, sizeof(Download));
      context->user_fctx = new (memory) Download{job_id, file.chunks, 0, core::PemEncoder(), false};
    });
  }
  context = pg::pg_guard([&] { return SRF_PERCALL_SETUP(); });
  return *static_cast<Download*>(context->user_fctx);
}

// Ends a value-per-call result set (what SRF_RETURN_DONE does, with the call that can fail
// guarded).
Datum end_of_set(FunctionCallInfo fcinfo, FuncCallContext* context) {
  pg::pg_guard([&] { end_MultiFuncCall(fcinfo, context); });
  reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo)->isDone = ExprEndResult;
  fcinfo->isnull = true;
  return (Datum)0;
}

// The PEM lines of the next stored chunk (with the lines carried over from the one before).
// Needs SPI.
std::string encode_next_chunk(Download& download) {
  Datum chunk = fetch_chunk(download.job_id, download.next_seq++);
  bytea* data = reinterpret_cast<bytea*>(DatumGetPointer(chunk));
  std::string lines =
      download.pem.update(std::string_view(VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data)));
  pg::pg_guard([&] { pfree(data); });
  return lines;
}

// The next row of download_export: the PEM lines the next stored chunk completes, the BEGIN
// line before the first, the last short line and the END line after the last; nullopt once the
// END line is out. Each row goes without its final newline, which whoever writes the rows adds
// (psql -At ends each row with one): the rows joined by newlines, plus one at the end, are
// exactly the PEM file. Needs SPI.
std::optional<std::string> next_pem_row(Download& download) {
  std::string row;
  // A chunk shorter than a line completes no line (only a file's last chunk can be that short):
  // go on to the end rather than return an empty row, which would be an empty line in the file.
  while (row.empty() && !download.pem_finished) {
    if (download.next_seq < download.chunks) row = encode_next_chunk(download);
    if (download.next_seq == download.chunks) {
      row += download.pem.finish();
      download.pem_finished = true;
    }
  }
  if (row.empty()) return std::nullopt;
  row.pop_back();  // the newline
  return row;
}

}  // namespace

// Deletes expired files (audited export_expired) and the partial ciphertext of export jobs
// that failed or were cancelled (a retry starts over anyway). The launcher's step "expire exports".
void expire_export_files() {
  std::vector<pg::TextRow> expired = pg::spi_query_rows(
      "SELECT f.job_id::text, j.tenant_id, j.target_id, f.expires_at::text, f.size_bytes::text"
      "  FROM privacy.export_files f JOIN privacy.jobs j ON j.id = f.job_id"
      " WHERE f.expires_at <= now() ORDER BY f.job_id LIMIT 100 FOR UPDATE OF f SKIP LOCKED",
      {}, false);
  for (const pg::TextRow& row : expired) {
    long long job_id = row.int8(0);
    uint64 chunks = pg::spi_execute("DELETE FROM privacy.export_file_chunks WHERE job_id = $1",
                                    {int8_param(job_id)});
    pg::spi_execute("DELETE FROM privacy.export_files WHERE job_id = $1", {int8_param(job_id)});
    audit::append(audit::Entry{
        "export_expired", *row[1], job_id, *row[2], "ok",
        *pg::spi_query_text(
            "SELECT jsonb_build_object('expires_at', $1::timestamptz, 'size_bytes', $2::bigint,"
            " 'chunks', $3::bigint)::text",
            {text_param(row.text(3)), int8_param(row.int8(4)),
             int8_param(static_cast<long long>(chunks))}),
        std::nullopt});
  }
  std::vector<pg::TextRow> abandoned = pg::spi_query_rows(
      "SELECT j.id::text, j.tenant_id, j.target_id, j.status::text FROM privacy.jobs j"
      " WHERE j.kind = 'export' AND j.status IN ('failed', 'cancelled')"
      "   AND EXISTS (SELECT FROM privacy.export_file_chunks c WHERE c.job_id = j.id)"
      "   AND NOT EXISTS (SELECT FROM privacy.export_files f WHERE f.job_id = j.id)"
      " ORDER BY j.id LIMIT 100",
      {}, false);
  for (const pg::TextRow& row : abandoned) {
    long long job_id = row.int8(0);
    uint64 chunks = pg::spi_execute("DELETE FROM privacy.export_file_chunks WHERE job_id = $1",
                                    {int8_param(job_id)});
    audit::append(audit::Entry{
        "export_expired", *row[1], job_id, *row[2], "ok",
        *pg::spi_query_text(
            "SELECT jsonb_build_object('partial', true, 'job_status', $1, 'chunks', $2::bigint)::text",
            {text_param(*row[3]), int8_param(static_cast<long long>(chunks))}),
        std::nullopt});
  }
}

}  // namespace privacy::exports

// Value-per-call: one stored chunk read, encoded and returned per call (next_pem_row), so the
// memory used is that of one chunk whatever the file size. The checks and the audit row happen
// on the first call.
PRIVACY_SQL_FUNCTION(privacy_download_export) {
  using namespace privacy;
  FuncCallContext* context = nullptr;
  exports::Download& download = exports::download_of(fcinfo, "pem", context);
  std::optional<std::string> row;
  {
    pg::SpiConnection spi;
    row = exports::next_pem_row(download);
  }
  if (!row) return exports::end_of_set(fcinfo, context);
  Datum text = pg::pg_guard(
      [&] { return PointerGetDatum(cstring_to_text_with_len(row->data(), row->size())); });
  SRF_RETURN_NEXT(context, text);
}

// Value-per-call: one chunk per call, so only one chunk is in memory whatever the file size.
// The checks and the audit row happen on the first call.
PRIVACY_SQL_FUNCTION(privacy_export_chunks) {
  using namespace privacy;
  FuncCallContext* context = nullptr;
  exports::Download& download = exports::download_of(fcinfo, "der", context);
  if (download.next_seq == download.chunks) return exports::end_of_set(fcinfo, context);
  Datum chunk;
  {
    pg::SpiConnection spi;
    chunk = exports::fetch_chunk(download.job_id, download.next_seq++);
  }
  SRF_RETURN_NEXT(context, chunk);
}
