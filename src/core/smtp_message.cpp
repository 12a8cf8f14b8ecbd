#include "core/smtp_message.hpp"

#include "core/encoding.hpp"
#include "core/error.hpp"

#include <cstdio>
#include <string_view>

namespace privacy::core {

namespace {

constexpr std::size_t kMaxLineOctets = 998;    // RFC 5322 section 2.1.1
constexpr std::size_t kQpLineChars = 76;       // RFC 2045 section 6.7 rule 5
constexpr std::size_t kEncodedWordBytes = 45;  // raw bytes per encoded word: 60 base64 chars

bool is_plain_ascii_line(std::string_view text) {
  for (unsigned char c : text) {
    if (c >= 0x80 || c == '\r' || c == '\n') return false;
  }
  return true;
}

// The subject is one line: any CR or LF would start a new header (header injection).
void refuse_line_breaks(const std::string& value, const char* what) {
  if (value.find_first_of("\r\n") != std::string::npos) {
    throw Error(sqlstate::kInvalidParameter, std::string(what) + " must not contain line breaks",
                "A carriage return or line feed would start a new mail header.",
                "Remove the line breaks.");
  }
}

// True when every line of a CRLF text fits the 998-octet limit.
bool lines_fit(const std::string& crlf_text) {
  std::size_t start = 0;
  while (start <= crlf_text.size()) {
    std::size_t end = crlf_text.find("\r\n", start);
    if (end == std::string::npos) end = crlf_text.size();
    if (end - start > kMaxLineOctets) return false;
    start = end + 2;
  }
  return true;
}

// Length of the longest prefix of `text` (at most `limit` bytes) that ends on a UTF-8
// character boundary, so an encoded word never splits a character.
std::size_t utf8_prefix(std::string_view text, std::size_t limit) {
  if (text.size() <= limit) return text.size();
  std::size_t cut = limit;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return cut == 0 ? limit : cut;
}

}  // namespace

void validate_mail_address(const std::string& address, const char* what) {
  auto refuse = [&](const std::string& why) {
    throw Error(sqlstate::kInvalidParameter, std::string(what) + " is not a valid e-mail address",
                why, "Use one plain address such as dpo@example.com.");
  };
  if (address.empty()) refuse("The address is empty.");
  if (address.size() > 254) refuse("The address is longer than 254 characters.");
  for (unsigned char c : address) {
    if (c == '\r' || c == '\n') refuse("The address contains a line break.");
    if (c < 0x20 || c == 0x7F) refuse("The address contains a control character.");
    if (c == ' ' || c == '<' || c == '>' || c == ',' || c == ';' || c == '"' || c == '(' ||
        c == ')' || c == '\\')
      refuse("The address contains a space or one of <>,;\"()\\.");
  }
  std::size_t at = address.rfind('@');
  if (at == std::string::npos || at == 0 || at + 1 == address.size())
    refuse("The address needs a local part, '@' and a domain.");
  if (address.find('@') != at) refuse("The address contains more than one '@'.");
}

std::string normalize_line_ends(const std::string& text) {
  std::string out;
  out.reserve(text.size() + text.size() / 16);
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\r') {
      out += "\r\n";
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else if (c == '\n') {
      out += "\r\n";
    } else {
      out += c;
    }
  }
  return out;
}

// Plain ASCII stays as it is. Otherwise the text becomes encoded words of at most 75 characters,
// separated by folding whitespace (CRLF SP), which a reader joins back without the space.
std::string encode_header_text(const std::string& text) {
  if (is_plain_ascii_line(text)) return text;
  std::string out;
  std::string_view rest(text);
  while (!rest.empty()) {
    std::size_t take = utf8_prefix(rest, kEncodedWordBytes);
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + base64_encode(rest.substr(0, take)) + "?=";
    rest.remove_prefix(take);
  }
  return out;
}

// Quoted-printable (RFC 2045 6.7) of a CRLF text: line breaks stay hard breaks, '=' and bytes
// outside printable ASCII become =XX, trailing blanks are encoded, long lines get soft breaks.
// A '.' starting an encoded line is encoded too, so no line of the body starts with a dot.
std::string quoted_printable_encode(const std::string& text) {
  std::string out;
  std::size_t column = 0;
  auto put = [&](const std::string& piece) {
    if (column + piece.size() > kQpLineChars - 1) {  // keep room for the soft break '='
      out += "=\r\n";
      column = 0;
    }
    out += piece;
    column += piece.size();
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      out += "\r\n";
      column = 0;
      ++i;
      continue;
    }
    bool line_end_follows = i + 1 == text.size() || text[i + 1] == '\r';
    bool literal = (c >= 33 && c <= 126 && c != '=') || (c == ' ' && !line_end_follows) ||
                   (c == '\t' && !line_end_follows);
    if (c == '.' && column == 0) literal = false;
    if (literal) {
      put(std::string(1, static_cast<char>(c)));
    } else {
      char hex[4];
      std::snprintf(hex, sizeof(hex), "=%02X", c);
      put(hex);
    }
  }
  return out;
}

std::string format_mail_date(std::time_t when) {
  static const char* const kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::tm utc{};
  gmtime_r(&when, &utc);
  char text[64];
  std::snprintf(text, sizeof(text), "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[utc.tm_wday],
                utc.tm_mday, kMonths[utc.tm_mon], utc.tm_year + 1900, utc.tm_hour, utc.tm_min,
                utc.tm_sec);
  return text;
}

std::string notification_message_id(long long notification_id, long long created_epoch,
                                    const std::string& from_address) {
  std::size_t at = from_address.rfind('@');
  std::string domain = at == std::string::npos ? "localhost" : from_address.substr(at + 1);
  return "pg_privacy.notification." + std::to_string(notification_id) + "." +
         std::to_string(created_epoch) + "@" + domain;
}

std::string build_mail_message(const MailMessage& message) {
  validate_mail_address(message.from, "the sender (privacy.smtp_from)");
  validate_mail_address(message.to, "the recipient (notify_email)");
  refuse_line_breaks(message.subject, "the mail subject");
  refuse_line_breaks(message.message_id, "the Message-ID");

  std::string body = normalize_line_ends(message.body);
  if (body.size() < 2 || body.compare(body.size() - 2, 2, "\r\n") != 0) body += "\r\n";
  bool eight_bit = lines_fit(body);

  std::string out;
  out += "From: " + message.from + "\r\n";
  out += "To: " + message.to + "\r\n";
  out += "Subject: " + encode_header_text(message.subject) + "\r\n";
  out += "Date: " + format_mail_date(message.date) + "\r\n";
  out += "Message-ID: <" + message.message_id + ">\r\n";
  out += "MIME-Version: 1.0\r\n";
  out += "Content-Type: text/plain; charset=utf-8\r\n";
  out += std::string("Content-Transfer-Encoding: ") + (eight_bit ? "8bit" : "quoted-printable") +
         "\r\n";
  out += "Auto-Submitted: auto-generated\r\n";
  out += "\r\n";
  out += eight_bit ? body : quoted_printable_encode(body);
  return out;
}

}  // namespace privacy::core
