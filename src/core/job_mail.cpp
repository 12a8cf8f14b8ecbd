#include "core/job_mail.hpp"

#include <sstream>

namespace privacy::core {

namespace {

// Longest error or reason text quoted in a mail; the full text stays in privacy.jobs.
constexpr std::size_t kMaxQuotedChars = 2000;

std::string clipped(const std::string& text) {
  if (text.size() <= kMaxQuotedChars) return text;
  std::size_t cut = kMaxQuotedChars;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut) + " [...]";
}

// Subject lines stay one line whatever the ids contain.
std::string one_line(std::string text) {
  for (char& c : text) {
    if (c == '\r' || c == '\n' || c == '\t') c = ' ';
  }
  return text;
}

std::string outcome_word(const std::string& status) {
  if (status == "completed") return "completed";
  if (status == "failed") return "FAILED";
  if (status == "rejected") return "was rejected";
  return status;
}

std::string counts_line(const JobEvent& event) {
  std::string line = std::to_string(event.processed_items);
  if (event.total_items) line += " of " + std::to_string(*event.total_items);
  return line + " items processed, " + std::to_string(event.failed_items) + " failed";
}

void write_next_steps(std::ostringstream& out, const JobEvent& event) {
  const std::string id = std::to_string(event.job_id);
  if (event.failed_items > 0) {
    out << "\n"
        << event.failed_items << " item(s) could not be processed and wait for review:\n"
        << "  psql -c \"SELECT * FROM privacy.job_errors WHERE job_id = " << id
        << " AND resolved_at IS NULL\"\n";
  }
  if (event.new_status == "failed") {
    out << "\nThe job stopped. Its progress is kept; after fixing the cause, resume it with:\n"
        << "  psql -c \"SELECT privacy.retry(" << id << ")\"\n";
  }
  if (event.new_status == "completed" && event.kind == "erase") {
    out << "\nThe erased rows stay recoverable until "
        << event.recoverable_until.value_or("the end of the recovery window")
        << "; after that they are removed for good. To restore them before then:\n"
        << "  psql -c \"SELECT privacy.restore(" << id << ")\"\n";
  }
  if (event.new_status == "completed" && event.kind == "export") {
    out << "\nThe export is encrypted for the registered export recipients. A privacy_admin\n"
        << "downloads and decrypts it with:\n"
        << "  psql -Atc \"select privacy.download_export(" << id << ")\" > export.pem\n"
        << "  openssl cms -decrypt -inform PEM -in export.pem -inkey admin.key -recip admin.crt"
        << " -out export.json\n"
        << "The file expires after privacy.export_ttl.\n";
  }
  out << "\nDetails:\n  psql -c \"SELECT privacy.job_detail(" << id << ")\"\n";
}

}  // namespace

bool should_email(const JobEvent& event, long long notify_min_items) {
  if (!event.notify_email || event.notify_email->empty()) return false;
  if (event.new_status == "failed" || event.new_status == "rejected") return true;
  if (event.new_status == "completed") {
    return event.total_items.value_or(event.processed_items + event.failed_items) >=
           notify_min_items;
  }
  return false;
}

MailText job_mail_text(const JobEvent& event) {
  const std::string id = std::to_string(event.job_id);
  MailText mail;
  mail.subject = one_line("[pg_privacy] " + event.kind + " job " + id + " " +
                          outcome_word(event.new_status) + " (tenant " + event.tenant_id + ")");

  std::ostringstream out;
  out << "pg_privacy " << event.kind << " job " << id << " " << outcome_word(event.new_status)
      << ".\n\n"
      << "  Job:     " << id << " (" << event.kind << ")\n"
      << "  Tenant:  " << event.tenant_id << "\n"
      << "  Target:  " << event.target_type << " " << event.target_id << "\n"
      << "  Status:  " << event.old_status.value_or("(new)") << " -> " << event.new_status << "\n";
  if (event.new_status != "rejected") out << "  Counts:  " << counts_line(event) << "\n";

  if (event.new_status == "rejected") {
    out << "\nThe request was rejected and nothing was changed. Reason given:\n  "
        << clipped(event.reason_or_error.value_or("(none given)")) << "\n";
  } else if (event.new_status == "failed") {
    out << "\nError:\n  " << clipped(event.reason_or_error.value_or("(no message)")) << "\n";
  }
  if (event.new_status != "rejected") write_next_steps(out, event);

  out << "\n-- \nThis message was sent by the pg_privacy extension because the request named\n"
      << "this address as its notify_email. It contains no personal data beyond the target id.\n";
  mail.body = out.str();
  return mail;
}

std::string deadline_notice_name(DeadlineNotice notice) {
  switch (notice) {
    case DeadlineNotice::Warning:
      return "deadline_warning";
    case DeadlineNotice::Overdue:
      return "deadline_overdue";
    case DeadlineNotice::Extended:
      return "deadline_extended";
  }
  return "deadline_warning";
}

MailText deadline_mail_text(const DeadlineEvent& event) {
  const std::string id = std::to_string(event.job_id);
  std::string what = event.notice == DeadlineNotice::Warning   ? "is due soon"
                     : event.notice == DeadlineNotice::Overdue ? "is OVERDUE"
                                                               : "has a new deadline";
  MailText mail;
  mail.subject = one_line("[pg_privacy] " + event.kind + " request " + id + " " + what +
                          " (tenant " + event.tenant_id + ", due " + event.due_at + ")");
  std::ostringstream out;
  out << "pg_privacy " << event.kind << " request " << id << " " << what << ".\n\n"
      << "  Job:        " << id << " (" << event.kind << ", " << event.status << ")\n"
      << "  Tenant:     " << event.tenant_id << "\n"
      << "  Target:     " << event.target_type << " " << event.target_id << "\n"
      << "  Regulation: " << event.regulation << "\n"
      << "  Received:   " << event.requested_at << "\n";
  if (event.notice == DeadlineNotice::Extended) {
    out << "  Was due:    " << event.previous_due_at.value_or("(unknown)") << "\n";
  }
  out << "  Due:        " << event.due_at << "\n";
  switch (event.notice) {
    case DeadlineNotice::Warning:
      out << "\nThe request must be answered by then. Decide or run it now, or, where the regulation\n"
          << "allows it and within its first period, extend the deadline with a reason:\n"
          << "  psql -c \"SELECT privacy.extend_deadline(" << id << ", '1 month', 'reason')\"\n";
      break;
    case DeadlineNotice::Overdue:
      out << "\nThe deadline has passed without an answer. Answer the request as soon as possible;\n"
          << "privacy.sla_report() counts it as late.\n";
      break;
    case DeadlineNotice::Extended:
      out << "\nThe time to answer this request was extended. Reason given:\n  "
          << clipped(event.reason.value_or("(none given)")) << "\n";
      break;
  }
  out << "\nDetails:\n  psql -c \"SELECT privacy.job_detail(" << id << ")\"\n"
      << "\n-- \nThis message was sent by the pg_privacy extension"
      << (event.notice == DeadlineNotice::Extended
              ? " because the request named this address as its\nnotify_email."
              : " to the tenant's privacy contact.")
      << " It contains no personal data beyond the target id.\n";
  mail.body = out.str();
  return mail;
}

}  // namespace privacy::core
