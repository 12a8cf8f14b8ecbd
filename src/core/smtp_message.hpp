// An e-mail as the SMTP server receives it (RFC 5322 + MIME), built from plain fields.
//
// Pure C++ (no PostgreSQL): unit-tested in test/unit/smtp_message_test.cpp.
//
// What this file does and does not do:
//  * Lines end in CRLF. Header values are checked: a CR or LF in an address or the subject
//    would let a value inject extra headers or recipients, so it is refused (core::Error 22023).
//  * A non-ASCII subject is sent as RFC 2047 encoded words (=?UTF-8?B?...?=).
//  * The body is sent as 8bit UTF-8 when every line fits the RFC 5322 limit of 998 octets,
//    otherwise as quoted-printable.
//  * NO dot-stuffing: libcurl's SMTP upload doubles a leading '.' on every line and appends the
//    terminating CRLF.CRLF itself (lib/smtp.c, since curl 7.26; curl's tests 803 and 901 check
//    it). Stuffing here as well would deliver lines starting with "..".
#pragma once

#include <ctime>
#include <string>

namespace privacy::core {

struct MailMessage {
  std::string from;        // bare address: name@example.com
  std::string to;          // bare address
  std::string subject;     // UTF-8, one line
  std::string body;        // UTF-8 text, '\n' or "\r\n" line ends
  std::string message_id;  // without angle brackets: local@domain
  std::time_t date = 0;    // the Date: header (UTC)
};

// Refuses (core::Error 22023) anything that is not one plain address local@domain: empty,
// CR/LF or other control characters, spaces, angle brackets, commas, quotes, no '@'.
void validate_mail_address(const std::string& address, const char* what);

// The whole message, headers and body, CRLF line ends, ready for an SMTP DATA upload.
std::string build_mail_message(const MailMessage& message);

// "Mon, 23 Nov 2026 12:59:09 +0000" (RFC 5322 section 3.3).
std::string format_mail_date(std::time_t when);

// A stable Message-ID for an outbox row: retries of the same row carry the same id, so a
// receiving system can drop a duplicate delivered after a crash (docs/notifications.md).
std::string notification_message_id(long long notification_id, long long created_epoch,
                                    const std::string& from_address);

// Building blocks, exposed for the unit tests.
std::string encode_header_text(const std::string& text);       // RFC 2047 when not plain ASCII
std::string quoted_printable_encode(const std::string& text);  // input lines end in CRLF
std::string normalize_line_ends(const std::string& text);      // '\n', '\r' and "\r\n" -> "\r\n"

}  // namespace privacy::core
