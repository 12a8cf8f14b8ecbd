// Reading finished export files back out, and deleting them when they expire (DESIGN section 9).
//
//   privacy.download_export(job_id)  the file as PEM text ("-----BEGIN CMS-----"), for
//                                    psql -Atc "select privacy.download_export(42)" > export.pem
//   privacy.export_chunks(job_id)    the same bytes as DER, one bytea per stored chunk, streamed
//                                    one chunk per call (for files too big for one text value)
//
// Both are granted to privacy_admin only (the EXECUTE grant is the access check: these are
// SECURITY DEFINER, so current_user inside is the extension owner). Each call writes an
// export_downloaded audit row naming the session user.
//
// The launcher step "expire exports" deletes files once expires_at has passed (export_ttl),
// and the ciphertext left behind by export runs that failed or were cancelled.
#include "export.hpp"

#include "audit.hpp"
#include "core/cms_writer.hpp"
#include "launcher.hpp"
#include "pg/boundary.hpp"
#include "pg/spi.hpp"

#include <optional>
#include <string>

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
  throw core::Error(core::sqlstate::kObjectNotInPrerequisiteState,
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
    throw core::Error(core::sqlstate::kObjectNotInPrerequisiteState,
                      "export of job " + std::to_string(job_id) + " is not ready: the job is " + status,
                      "",
                      "Wait until the job is completed: SELECT status, processed_items, total_items "
                      "FROM privacy.jobs WHERE id = " + std::to_string(job_id) + ";");
  }
  throw core::Error(core::sqlstate::kObjectNotInPrerequisiteState,
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
  const std::string& kind = *jobs[0][0];
  const std::string& status = *jobs[0][1];
  if (kind != "export") {
    throw core::Error(core::sqlstate::kInvalidParameter,
                      "job " + std::to_string(job_id) + " is an " + kind + " job, not an export",
                      "", "Only export jobs have a file to download.");
  }
  std::vector<pg::TextRow> files = pg::spi_query_rows(
      "SELECT size_bytes::text, sha256, chunks::text, expires_at::text, (expires_at <= now())::text"
      "  FROM privacy.export_files WHERE job_id = $1",
      {int8_param(job_id)});
  if (files.empty()) raise_no_file(job_id, status);
  const pg::TextRow& file = files[0];
  if (*file[4] == "true") raise_expired(job_id, *file[3]);
  StoredFile stored{job_id, std::stoll(*file[0]), *file[1], std::stoi(*file[2])};
  audit::append(audit::Entry{
      "export_downloaded", *jobs[0][2], job_id, *jobs[0][3], "ok",
      *pg::spi_query_text("SELECT jsonb_build_object('format', $1, 'size_bytes', $2::bigint, 'sha256', $3)::text",
                          {text_param(format), int8_param(stored.size_bytes), text_param(stored.sha256)}),
      std::nullopt});
  return stored;
}

// Chunk `seq` of a job's file, as a bytea copied into the caller's memory context (outside the
// SPI connection), or an error if it is missing (a file row promises every chunk).
Datum fetch_chunk(long long job_id, int seq) {
  uint64 found = pg::spi_execute(
      "SELECT data FROM privacy.export_file_chunks WHERE job_id = $1 AND seq = $2",
      {int8_param(job_id), int8_param(static_cast<long long>(seq))});
  if (found != 1) {
    throw core::Error(core::sqlstate::kInternalError,
                      "export of job " + std::to_string(job_id) + " is missing chunk " + std::to_string(seq));
  }
  return pg::pg_guard([&] {
    bool is_null = false;
    Datum value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &is_null);
    // Chunks are stored out of line (TOAST): fetch the bytes before copying them out.
    struct varlena* bytes = pg_detoast_datum_packed(reinterpret_cast<struct varlena*>(DatumGetPointer(value)));
    Datum copy = SPI_datumTransfer(PointerGetDatum(bytes), false, -1);
    SPI_freetuptable(SPI_tuptable);
    return copy;
  });
}

// The whole file as PEM. Each chunk is fetched, encoded and released in turn; only the PEM
// text itself (which is the function's result) grows with the file size.
std::string file_as_pem(const StoredFile& file) {
  core::PemEncoder encoder;
  std::string pem;
  pem.reserve(static_cast<size_t>(file.size_bytes / 48 + 1) * 65 + 64);
  for (int seq = 0; seq < file.chunks; ++seq) {
    Datum chunk = fetch_chunk(file.job_id, seq);
    bytea* data = reinterpret_cast<bytea*>(DatumGetPointer(chunk));
    pem += encoder.update(std::string_view(VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data)));
    pg::pg_guard([&] { pfree(data); });
  }
  pem += encoder.finish();
  return pem;
}

// Largest file whose PEM still fits in one text value (1 GB); bigger ones need export_chunks.
constexpr long long kMaxPemFileBytes = 700LL * 1024 * 1024;

}  // namespace

// Deletes expired files (audited export_expired) and the partial ciphertext of export jobs
// that failed or were cancelled (a retry starts over anyway). Runs in the launcher's cycle.
void expire_export_files() {
  std::vector<pg::TextRow> expired = pg::spi_query_rows(
      "SELECT f.job_id::text, j.tenant_id, j.target_id, f.expires_at::text, f.size_bytes::text"
      "  FROM privacy.export_files f JOIN privacy.jobs j ON j.id = f.job_id"
      " WHERE f.expires_at <= now() ORDER BY f.job_id LIMIT 100 FOR UPDATE OF f SKIP LOCKED",
      {}, false);
  for (const pg::TextRow& row : expired) {
    long long job_id = std::stoll(*row[0]);
    uint64 chunks = pg::spi_execute("DELETE FROM privacy.export_file_chunks WHERE job_id = $1", {int8_param(job_id)});
    pg::spi_execute("DELETE FROM privacy.export_files WHERE job_id = $1", {int8_param(job_id)});
    audit::append(audit::Entry{
        "export_expired", *row[1], job_id, *row[2], "ok",
        *pg::spi_query_text("SELECT jsonb_build_object('expires_at', $1::timestamptz, 'size_bytes', $2::bigint,"
                            " 'chunks', $3::bigint)::text",
                            {text_param(*row[3]), int8_param(std::stoll(*row[4])),
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
    long long job_id = std::stoll(*row[0]);
    uint64 chunks = pg::spi_execute("DELETE FROM privacy.export_file_chunks WHERE job_id = $1", {int8_param(job_id)});
    audit::append(audit::Entry{
        "export_expired", *row[1], job_id, *row[2], "ok",
        *pg::spi_query_text("SELECT jsonb_build_object('partial', true, 'job_status', $1, 'chunks', $2::bigint)::text",
                            {text_param(*row[3]), int8_param(static_cast<long long>(chunks))}),
        std::nullopt});
  }
}

namespace {
launcher::StepRegistration expire_step(50, "expire exports", &expire_export_files);
}  // namespace

}  // namespace privacy::exports

PRIVACY_SQL_FUNCTION(privacy_download_export) {
  using namespace privacy;
  long long job_id = PG_GETARG_INT64(0);
  std::string pem;
  {
    pg::SpiConnection spi;
    exports::StoredFile file = exports::open_for_download(job_id, "pem");
    if (file.size_bytes > exports::kMaxPemFileBytes) {
      throw core::Error("54000",
                        "export of job " + std::to_string(job_id) + " is too large for download_export (" +
                            std::to_string(file.size_bytes) + " bytes)",
                        "A text value holds at most 1 GB, and PEM is a third larger than the file.",
                        "Stream it as DER instead: psql -Atc \"select encode(c, 'hex') from "
                        "privacy.export_chunks(" + std::to_string(job_id) + ") c\" | xxd -r -p > export.der");
    }
    pem = exports::file_as_pem(file);
  }
  return pg::pg_guard([&] { return PointerGetDatum(cstring_to_text_with_len(pem.data(), pem.size())); });
}

// Value-per-call: one chunk per call, so only one chunk is in memory whatever the file size.
// The checks and the audit row happen on the first call.
PRIVACY_SQL_FUNCTION(privacy_export_chunks) {
  using namespace privacy;
  FuncCallContext* context = nullptr;
  if (SRF_IS_FIRSTCALL()) {
    long long job_id = PG_GETARG_INT64(0);
    exports::StoredFile file = [&] {
      pg::SpiConnection spi;
      return exports::open_for_download(job_id, "der");
    }();
    pg::pg_guard([&] {
      context = SRF_FIRSTCALL_INIT();
      context->max_calls = static_cast<uint64>(file.chunks);
    });
  }
  context = pg::pg_guard([&] { return SRF_PERCALL_SETUP(); });
  if (context->call_cntr < context->max_calls) {
    Datum chunk;
    {
      pg::SpiConnection spi;
      chunk = exports::fetch_chunk(PG_GETARG_INT64(0), static_cast<int>(context->call_cntr));
    }
    SRF_RETURN_NEXT(context, chunk);
  }
  pg::pg_guard([&] { end_MultiFuncCall(fcinfo, context); });
  reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo)->isDone = ExprEndResult;
  fcinfo->isnull = true;
  return (Datum)0;
}
