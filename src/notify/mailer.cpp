// The launcher's step "mailer" (docs/notifications.md): delivers the due rows of the outbox
// (privacy.notifications, filled by notify/events.cpp) over SMTP with libcurl, records each
// attempt and retries with backoff; and the mailer's line in privacy.worker_status().
#include "core/backoff.hpp"
#include "core/error.hpp"
#include "core/smtp_message.hpp"
#include "notify/notify.hpp"
#include "notify/outbox.hpp"
#include "pg/guc.hpp"
#include "pg/spi.hpp"

#include <curl/curl.h>

#include <cstring>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

namespace privacy::notify {

using pg::int8_param;
using pg::text_param;

namespace {

constexpr int kMailsPerCycle = 5;  // a cycle sends at most this many
constexpr int kMaxAttempts = 24;   // then the row is given up (next_attempt_at = infinity)
constexpr long kConnectTimeoutS = 5;
constexpr long kTransferTimeoutS = 10;  // the launcher waits at most this long per mail

struct OutboxRow {
  long long id;
  std::optional<long long> job_id;
  std::optional<std::string> tenant_id;
  std::string recipient;
  std::string subject;
  std::string body;
  int attempts;  // before this one
  long long created_epoch;
};

// libcurl pulls the message through this callback while uploading the DATA part.
struct UploadSource {
  const std::string* data;
  std::size_t offset;
};

extern "C" size_t read_upload(char* buffer, size_t size, size_t count, void* user) {
  auto* source = static_cast<UploadSource*>(user);
  std::size_t room = size * count;
  std::size_t left = source->data->size() - source->offset;
  std::size_t n = left < room ? left : room;
  std::memcpy(buffer, source->data->data() + source->offset, n);
  source->offset += n;
  return n;
}

// The mail server and how to talk to it, from the settings (docs/notifications.md).
struct SmtpServer {
  std::string url;      // privacy.smtp_url: smtp://... or smtps://...
  std::string ca_file;  // privacy.smtp_ca_file; empty: the system's CA store
  bool require_tls;     // privacy.smtp_require_tls
};

SmtpServer configured_server() {
  return SmtpServer{pg::guc::smtp_url ? pg::guc::smtp_url : "",
                    pg::guc::smtp_ca_file ? pg::guc::smtp_ca_file : "", pg::guc::smtp_require_tls};
}

// TLS for the mail: smtps:// is TLS from the first byte. On smtp://, libcurl upgrades with
// STARTTLS whenever the server offers it (CURLUSESSL_TRY); with require_tls it sends nothing
// unless the upgrade succeeds (CURLUSESSL_ALL), because a server that does not offer STARTTLS
// may be an attacker in the middle who removed the offer. Once TLS is on, the server's
// certificate and name are verified (libcurl's default, never turned off); ca_file lets a
// private relay's CA be trusted.
void set_tls_options(CURL* curl, const SmtpServer& server) {
  curl_easy_setopt(curl, CURLOPT_USE_SSL,
                   static_cast<long>(server.require_tls ? CURLUSESSL_ALL : CURLUSESSL_TRY));
  if (!server.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, server.ca_file.c_str());
}

// One SMTP transaction with libcurl. Returns nullopt on success, else the error text.
// libcurl dot-stuffs the upload and appends the final CRLF.CRLF (see core/smtp_message.hpp).
// No PostgreSQL call happens in here.
std::optional<std::string> smtp_send(const SmtpServer& server, const std::string& from,
                                     const std::string& to, const std::string& message) {
  static bool curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  if (!curl_ready) return std::string("libcurl could not be initialised");
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return std::string("libcurl could not create a handle");
  UploadSource source{&message, 0};
  std::string from_path = "<" + from + ">";
  std::string to_path = "<" + to + ">";
  curl_slist* recipients = curl_slist_append(nullptr, to_path.c_str());
  char error_buffer[CURL_ERROR_SIZE] = {0};

  curl_easy_setopt(curl, CURLOPT_URL, server.url.c_str());
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
#else
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_SMTP | CURLPROTO_SMTPS));
#endif
  set_tls_options(curl, server);
  curl_easy_setopt(curl, CURLOPT_MAIL_FROM, from_path.c_str());
  curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, recipients);
  curl_easy_setopt(curl, CURLOPT_READFUNCTION, &read_upload);
  curl_easy_setopt(curl, CURLOPT_READDATA, &source);
  curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, kConnectTimeoutS);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, kTransferTimeoutS);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);

  CURLcode code = curl_easy_perform(curl);
  curl_slist_free_all(recipients);
  curl_easy_cleanup(curl);
  if (code == CURLE_OK) return std::nullopt;
  std::string error = curl_easy_strerror(code);
  if (error_buffer[0] != '\0') error += ": " + std::string(error_buffer);
  if (code == CURLE_USE_SSL_FAILED) {
    error =
        "TLS is required (privacy.smtp_require_tls = on) but the mail server did not start it: " +
        error;
  }
  return error;
}

// Due rows, oldest first, locked so that a second sender (never expected, but cheap to rule
// out) skips them.
std::vector<OutboxRow> lock_due_rows() {
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "SELECT n.id, n.job_id, j.tenant_id, n.recipient, n.subject, n.body, n.attempts,"
      "       extract(epoch FROM n.created_at)::bigint"
      "  FROM privacy.notifications n LEFT JOIN privacy.jobs j ON j.id = n.job_id"
      " WHERE n.sent_at IS NULL AND n.next_attempt_at <= pg_catalog.now()"
      " ORDER BY n.next_attempt_at, n.id LIMIT $1"
      "   FOR UPDATE OF n SKIP LOCKED",
      {int8_param(kMailsPerCycle)}, false);
  std::vector<OutboxRow> due;
  for (const pg::TextRow& row : rows) {
    due.push_back(OutboxRow{row.int8(0), row.optional_int8(1), row[2], row[3].value_or(""),
                            row[4].value_or(""), row[5].value_or(""), row.int4(6), row.int8(7)});
  }
  return due;
}

void record_sent(const OutboxRow& row) {
  pg::spi_execute(
      "UPDATE privacy.notifications SET sent_at = pg_catalog.now(), attempts = attempts + 1,"
      "       last_error = NULL WHERE id = $1",
      {int8_param(row.id)});
  audit_mail("notification_sent", "ok", row.tenant_id, row.job_id, row.id,
             json_object_sql("'notification_id', $1::bigint, 'attempts', $2::int",
                             {int8_param(row.id), int8_param(row.attempts + 1)}));
}

// A failed attempt: count it, keep the error, and schedule the next one with exponential
// backoff; after kMaxAttempts the row is given up (next_attempt_at = 'infinity').
void record_failure(const OutboxRow& row, const std::string& error) {
  int attempts = row.attempts + 1;
  bool will_retry = attempts < kMaxAttempts;
  double delay = core::retry_delay_seconds(attempts, pg::guc::notify_retry_base_s);
  pg::spi_execute(
      "UPDATE privacy.notifications SET attempts = $2::int, last_error = $3,"
      "       next_attempt_at = CASE WHEN $4::bool"
      "         THEN pg_catalog.now() + pg_catalog.make_interval(secs => $5::float8)"
      "         ELSE 'infinity' END"
      " WHERE id = $1",
      {int8_param(row.id), int8_param(attempts), text_param(error), pg::bool_param(will_retry),
       pg::float8_param(delay)});
  audit_mail(
      "notification_failed", "error", row.tenant_id, row.job_id, row.id,
      json_object_sql("'notification_id', $1::bigint, 'attempts', $2::int, 'error', $3::text, "
                      "'will_retry', $4::bool",
                      {int8_param(row.id), int8_param(attempts), text_param(error),
                       pg::bool_param(will_retry)}));
}

}  // namespace

// The launcher step "mailer". It runs in the launcher's transaction: a row is marked sent in the
// same transaction that sent it, committed when the step ends. If the server crashed after the SMTP
// server accepted a mail but before that commit, the mail would be sent again (at-least-once; both
// copies carry the same Message-ID). A failed connection ends the cycle early, so a dead mail
// server costs the launcher at most one timeout per cycle.
void send_due_mail() {
  SmtpServer server = configured_server();
  std::string from = pg::guc::smtp_from ? pg::guc::smtp_from : "";
  if (server.url.empty()) return;  // mail stays queued; privacy.worker_status() says so
  for (const OutboxRow& row : lock_due_rows()) {
    std::string message;
    try {
      core::MailMessage mail{from,
                             row.recipient,
                             row.subject,
                             row.body,
                             core::notification_message_id(row.id, row.created_epoch, from),
                             std::time(nullptr)};
      message = core::build_mail_message(mail);
    } catch (const core::Error& unusable) {
      record_failure(row, std::string(unusable.what()) + ": " + unusable.detail());
      continue;
    }
    std::optional<std::string> error = smtp_send(server, from, row.recipient, message);
    if (!error) {
      record_sent(row);
      continue;
    }
    record_failure(row, *error);
    break;
  }
}

MailerStatus mailer_status() {
  pg::SpiConnection spi;
  bool empty_url = pg::guc::smtp_url == nullptr || pg::guc::smtp_url[0] == '\0';
  MailerStatus status{empty_url ? "disabled" : "ready", ""};
  bool may_read = pg::spi_query_bool(
      "SELECT pg_catalog.has_table_privilege('privacy.notifications', 'SELECT')");
  if (!may_read) {
    status.detail = empty_url ? "privacy.smtp_url is empty: e-mails stay queued"
                              : "sends queued e-mails (outbox counts: privacy_admin only)";
    return status;
  }
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "SELECT count(*) FILTER (WHERE sent_at IS NULL AND next_attempt_at < 'infinity'),"
      "       count(*) FILTER (WHERE sent_at IS NULL AND attempts > 0 AND next_attempt_at < 'infinity'),"
      "       count(*) FILTER (WHERE sent_at IS NULL AND next_attempt_at = 'infinity')"
      "  FROM privacy.notifications");
  std::string queued = rows.at(0)[0].value_or("0");
  std::string retrying = rows.at(0)[1].value_or("0");
  std::string given_up = rows.at(0)[2].value_or("0");
  if (empty_url) {
    status.detail = "privacy.smtp_url is empty: " + queued + " e-mails queued";
  } else {
    status.detail = queued + " e-mails queued (" + retrying + " after a failed attempt), " +
                    given_up + " given up";
  }
  return status;
}

}  // namespace privacy::notify
