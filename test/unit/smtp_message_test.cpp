#include "core/encoding.hpp"
#include "core/error.hpp"
#include "core/smtp_message.hpp"

#include <gtest/gtest.h>

using privacy::core::Error;
using privacy::core::MailMessage;

namespace {

MailMessage sample() {
  MailMessage m;
  m.from = "pg_privacy@db.example.com";
  m.to = "dpo@example.com";
  m.subject = "[pg_privacy] erase job 7 completed (tenant acme)";
  m.body = "line one\nline two\n";
  m.message_id = "pg_privacy.notification.3.1700000000@db.example.com";
  m.date = 1700000000;  // Tue, 14 Nov 2023 22:13:20 UTC
  return m;
}

std::string header_block(const std::string& message) {
  return message.substr(0, message.find("\r\n\r\n") + 2);
}
std::string body_of(const std::string& message) {
  return message.substr(message.find("\r\n\r\n") + 4);
}

std::string sqlstate_of(const MailMessage& m) {
  try {
    privacy::core::build_mail_message(m);
  } catch (const Error& e) {
    return e.sqlstate();
  }
  return "none";
}

}  // namespace

TEST(SmtpMessage, HasAllHeadersInOrderWithCrlf) {
  std::string msg = privacy::core::build_mail_message(sample());
  EXPECT_EQ(header_block(msg),
            "From: pg_privacy@db.example.com\r\n"
            "To: dpo@example.com\r\n"
            "Subject: [pg_privacy] erase job 7 completed (tenant acme)\r\n"
            "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
            "Message-ID: <pg_privacy.notification.3.1700000000@db.example.com>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n"
            "Auto-Submitted: auto-generated\r\n");
  EXPECT_EQ(body_of(msg), "line one\r\nline two\r\n");
}

TEST(SmtpMessage, EveryLineEndsInCrlf) {
  MailMessage m = sample();
  m.body = "a\nb\r\nc\rd";
  std::string msg = privacy::core::build_mail_message(m);
  for (std::size_t i = 0; i < msg.size(); ++i) {
    if (msg[i] == '\n') {
      ASSERT_TRUE(i > 0 && msg[i - 1] == '\r') << "bare LF at " << i;
    }
    if (msg[i] == '\r') {
      ASSERT_TRUE(i + 1 < msg.size() && msg[i + 1] == '\n') << "bare CR at " << i;
    }
  }
  EXPECT_EQ(body_of(msg), "a\r\nb\r\nc\r\nd\r\n");
}

TEST(SmtpMessage, LeadingDotsAreLeftToLibcurl) {
  // libcurl dot-stuffs the DATA upload itself; doing it here would deliver "..".
  MailMessage m = sample();
  m.body = ".\n.hidden\n";
  EXPECT_EQ(body_of(privacy::core::build_mail_message(m)), ".\r\n.hidden\r\n");
}

TEST(SmtpMessage, RefusesHeaderInjection) {
  MailMessage m = sample();
  m.subject = "hello\r\nBcc: victim@example.com";
  EXPECT_EQ(sqlstate_of(m), "22023");
  m = sample();
  m.to = "dpo@example.com\r\nBcc: victim@example.com";
  EXPECT_EQ(sqlstate_of(m), "22023");
  m = sample();
  m.to = "dpo@example.com\nX: y";
  EXPECT_EQ(sqlstate_of(m), "22023");
  m = sample();
  m.from = "a@b.c\rX: y";
  EXPECT_EQ(sqlstate_of(m), "22023");
  m = sample();
  m.subject = "only LF\n";
  EXPECT_EQ(sqlstate_of(m), "22023");
}

TEST(SmtpMessage, RefusesAddressesThatAreNotOnePlainAddress) {
  for (const char* bad : {"", "no-at-sign", "@example.com", "dpo@", "a@b@c", "a b@c.d",
                          "a@b.c, x@y.z", "Name <a@b.c>", "a@b.c;x@y.z", "a\t@b.c"}) {
    MailMessage m = sample();
    m.to = bad;
    EXPECT_EQ(sqlstate_of(m), "22023") << bad;
  }
  EXPECT_NO_THROW(privacy::core::validate_mail_address("first.last+tag@sub.example.org", "x"));
}

TEST(SmtpMessage, NonAsciiSubjectBecomesEncodedWords) {
  EXPECT_EQ(privacy::core::encode_header_text("plain"), "plain");
  EXPECT_EQ(privacy::core::encode_header_text("é"), "=?UTF-8?B?w6k=?=");
  // 30 two-byte characters = 60 bytes: two words, split on a character boundary, folded.
  std::string many;
  for (int i = 0; i < 30; ++i) many += "é";
  std::string encoded = privacy::core::encode_header_text(many);
  std::size_t fold = encoded.find("\r\n ");
  ASSERT_NE(fold, std::string::npos);
  EXPECT_EQ(encoded.substr(0, fold),
            "=?UTF-8?B?" + privacy::core::base64_encode(many.substr(0, 44)) + "?=");
  EXPECT_LE(fold, 75u);
}

TEST(SmtpMessage, Base64) {
  EXPECT_EQ(privacy::core::base64_encode(""), "");
  EXPECT_EQ(privacy::core::base64_encode("f"), "Zg==");
  EXPECT_EQ(privacy::core::base64_encode("fo"), "Zm8=");
  EXPECT_EQ(privacy::core::base64_encode("foo"), "Zm9v");
  EXPECT_EQ(privacy::core::base64_encode("foobar"), "Zm9vYmFy");
}

TEST(SmtpMessage, LongLinesSwitchToQuotedPrintable) {
  MailMessage m = sample();
  m.body = std::string(1200, 'x') + "\n";
  std::string msg = privacy::core::build_mail_message(m);
  EXPECT_NE(header_block(msg).find("Content-Transfer-Encoding: quoted-printable\r\n"),
            std::string::npos);
  std::string body = body_of(msg);
  std::size_t start = 0;
  while (start < body.size()) {
    std::size_t end = body.find("\r\n", start);
    ASSERT_NE(end, std::string::npos);
    EXPECT_LE(end - start, 76u);
    start = end + 2;
  }
}

TEST(SmtpMessage, QuotedPrintableRules) {
  EXPECT_EQ(privacy::core::quoted_printable_encode("a=b\r\n"), "a=3Db\r\n");
  EXPECT_EQ(privacy::core::quoted_printable_encode("trailing \r\n"), "trailing=20\r\n");
  EXPECT_EQ(privacy::core::quoted_printable_encode("é\r\n"), "=C3=A9\r\n");
  EXPECT_EQ(privacy::core::quoted_printable_encode(".x\r\n"), "=2Ex\r\n");
  std::string soft = privacy::core::quoted_printable_encode(std::string(100, 'a'));
  EXPECT_EQ(soft, std::string(75, 'a') + "=\r\n" + std::string(25, 'a'));
}

TEST(SmtpMessage, DateAndMessageId) {
  EXPECT_EQ(privacy::core::format_mail_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
  EXPECT_EQ(privacy::core::notification_message_id(12, 34, "pg@db.example.com"),
            "pg_privacy.notification.12.34@db.example.com");
}
