#include "core/job_mail.hpp"

#include <gtest/gtest.h>

using privacy::core::JobEvent;

namespace {

JobEvent event(const std::string& kind, const std::string& status) {
  JobEvent e;
  e.job_id = 42;
  e.kind = kind;
  e.tenant_id = "acme";
  e.target_type = "subject";
  e.target_id = "user-17";
  e.old_status = "processing";
  e.new_status = status;
  e.processed_items = 1500;
  e.failed_items = 0;
  e.total_items = 1500;
  e.notify_email = "dpo@example.com";
  return e;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST(JobMail, CompletedNeedsEnoughItems) {
  JobEvent e = event("erase", "completed");
  EXPECT_TRUE(privacy::core::should_email(e, 1000));
  EXPECT_TRUE(privacy::core::should_email(e, 1500));
  EXPECT_FALSE(privacy::core::should_email(e, 1501));
}

TEST(JobMail, FailuresAndRejectionsAlwaysMail) {
  JobEvent e = event("erase", "failed");
  e.total_items = 1;
  EXPECT_TRUE(privacy::core::should_email(e, 1000));
  e = event("export", "rejected");
  e.total_items.reset();
  EXPECT_TRUE(privacy::core::should_email(e, 1000));
}

TEST(JobMail, OtherStatusesAndNoAddressNeverMail) {
  for (const char* status : {"pending", "approved", "processing", "cancelled"}) {
    EXPECT_FALSE(privacy::core::should_email(event("erase", status), 0)) << status;
  }
  JobEvent e = event("erase", "failed");
  e.notify_email.reset();
  EXPECT_FALSE(privacy::core::should_email(e, 0));
  e.notify_email = "";
  EXPECT_FALSE(privacy::core::should_email(e, 0));
}

TEST(JobMail, CompletedEraseNamesRecoveryWindowAndErrors) {
  JobEvent e = event("erase", "completed");
  e.failed_items = 3;
  e.recoverable_until = "2026-12-23 12:00:00+00";
  privacy::core::MailText mail = privacy::core::job_mail_text(e);
  EXPECT_EQ(mail.subject, "[pg_privacy] erase job 42 completed (tenant acme)");
  EXPECT_TRUE(contains(mail.body, "Tenant:  acme"));
  EXPECT_TRUE(contains(mail.body, "Target:  subject user-17"));
  EXPECT_TRUE(contains(mail.body, "Status:  processing -> completed"));
  EXPECT_TRUE(contains(mail.body, "1500 of 1500 items processed, 3 failed"));
  EXPECT_TRUE(contains(mail.body, "privacy.job_errors WHERE job_id = 42"));
  EXPECT_TRUE(contains(mail.body, "recoverable until 2026-12-23 12:00:00+00"));
  EXPECT_TRUE(contains(mail.body, "privacy.restore(42)"));
  EXPECT_FALSE(contains(mail.body, "download_export"));
}

TEST(JobMail, CompletedExportSaysHowToDownload) {
  privacy::core::MailText mail = privacy::core::job_mail_text(event("export", "completed"));
  EXPECT_TRUE(contains(mail.body, "psql -Atc \"select privacy.download_export(42)\" > export.pem"));
  EXPECT_TRUE(contains(mail.body, "openssl cms -decrypt -inform PEM -in export.pem"));
  EXPECT_FALSE(contains(mail.body, "job_errors"));
}

TEST(JobMail, FailureQuotesTheError) {
  JobEvent e = event("purge", "failed");
  e.reason_or_error = "relation \"public.orders\" does not exist";
  privacy::core::MailText mail = privacy::core::job_mail_text(e);
  EXPECT_EQ(mail.subject, "[pg_privacy] purge job 42 FAILED (tenant acme)");
  EXPECT_TRUE(contains(mail.body, "relation \"public.orders\" does not exist"));
  EXPECT_TRUE(contains(mail.body, "privacy.retry(42)"));
}

TEST(JobMail, RejectionGivesTheReasonWithoutCounts) {
  JobEvent e = event("erase", "rejected");
  e.old_status = "pending";
  e.reason_or_error = "duplicate of job 41";
  privacy::core::MailText mail = privacy::core::job_mail_text(e);
  EXPECT_EQ(mail.subject, "[pg_privacy] erase job 42 was rejected (tenant acme)");
  EXPECT_TRUE(contains(mail.body, "Reason given:\n  duplicate of job 41"));
  EXPECT_FALSE(contains(mail.body, "Counts:"));
}

TEST(JobMail, SubjectStaysOneLineAndLongErrorsAreClipped) {
  JobEvent e = event("erase", "failed");
  e.tenant_id = "evil\r\nBcc: x@y.z";
  e.reason_or_error = std::string(5000, 'e');
  privacy::core::MailText mail = privacy::core::job_mail_text(e);
  EXPECT_EQ(mail.subject.find_first_of("\r\n"), std::string::npos);
  EXPECT_TRUE(contains(mail.body, std::string(2000, 'e') + " [...]"));
  EXPECT_FALSE(contains(mail.body, std::string(2001, 'e')));
}

namespace {

privacy::core::DeadlineEvent deadline_event(privacy::core::DeadlineNotice notice) {
  privacy::core::DeadlineEvent e;
  e.notice = notice;
  e.job_id = 42;
  e.kind = "erase";
  e.tenant_id = "acme";
  e.target_type = "subject";
  e.target_id = "user-17";
  e.regulation = "gdpr";
  e.status = "pending";
  e.requested_at = "2024-01-31 10:00:00 UTC";
  e.due_at = "2024-02-29 10:00:00 UTC";
  return e;
}

}  // namespace

TEST(JobMail, DeadlineWarningAndOverdue) {
  using privacy::core::DeadlineNotice;
  auto warning = privacy::core::deadline_mail_text(deadline_event(DeadlineNotice::Warning));
  EXPECT_EQ(warning.subject,
            "[pg_privacy] erase request 42 is due soon (tenant acme, due 2024-02-29 10:00:00 UTC)");
  EXPECT_TRUE(contains(warning.body, "Regulation: gdpr"));
  EXPECT_TRUE(contains(warning.body, "privacy.extend_deadline(42,"));
  EXPECT_TRUE(contains(warning.body, "privacy contact"));
  auto overdue = privacy::core::deadline_mail_text(deadline_event(DeadlineNotice::Overdue));
  EXPECT_TRUE(contains(overdue.subject, "request 42 is OVERDUE"));
  EXPECT_TRUE(contains(overdue.body, "has passed"));
  EXPECT_EQ(privacy::core::deadline_notice_name(DeadlineNotice::Overdue), "deadline_overdue");
}

TEST(JobMail, DeadlineExtendedQuotesTheReason) {
  auto event = deadline_event(privacy::core::DeadlineNotice::Extended);
  event.previous_due_at = "2024-02-29 10:00:00 UTC";
  event.due_at = "2024-04-29 10:00:00 UTC";
  event.reason = "complex request\nsecond line";
  auto mail = privacy::core::deadline_mail_text(event);
  EXPECT_EQ(
      mail.subject,
      "[pg_privacy] erase request 42 has a new deadline (tenant acme, due 2024-04-29 10:00:00 UTC)");
  EXPECT_TRUE(contains(mail.body, "Was due:    2024-02-29 10:00:00 UTC"));
  EXPECT_TRUE(contains(mail.body, "Due:        2024-04-29 10:00:00 UTC"));
  EXPECT_TRUE(contains(mail.body, "complex request\nsecond line"));
  EXPECT_TRUE(contains(mail.body, "notify_email"));
  event.tenant_id = "evil\r\nBcc: x@example.com";
  EXPECT_EQ(privacy::core::deadline_mail_text(event).subject.find('\n'), std::string::npos);
}
