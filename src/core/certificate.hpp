// Checking an export recipient's X.509 certificate before we trust it with personal data.
//
// privacy.add_export_recipient(name, certificate) stores a PEM certificate; every export is then
// encrypted to the public key inside it. A certificate we cannot use must be refused when it is
// added, with a message that says what is wrong and how to fix it, not when an export job fails
// hours later. This file does that check and reports what the SQL layer shows about a recipient.
#pragma once

#include <ctime>
#include <string>
#include <string_view>

#include "core/openssl_handles.hpp"

namespace privacy::core {

// What we show about an accepted recipient certificate.
struct CertificateInfo {
  std::string subject;             // RFC 2253 form, e.g. "CN=DPO,O=Example"
  std::string not_after;           // ISO 8601 UTC, e.g. "2027-01-31T12:00:00Z"
  std::string key_type;            // "RSA" or "EC"
  std::string sha256_fingerprint;  // SHA-256 of the DER certificate, 64 lowercase hex digits
};

// Parses exactly one PEM X.509 certificate and checks it can receive an export at time `now`.
// Throws Error(SQLSTATE 22023) with a message, detail and hint when the text is not a PEM
// certificate, holds more than one certificate or a private key, has a key that is neither RSA
// nor EC, a weak key (RSA under 2048 bits, an EC curve under 256 bits or with explicit
// parameters), a keyUsage that does not allow the key's use (keyEncipherment for RSA,
// keyAgreement for EC), has expired, or is not yet valid (docs/exports.md).
CertificateInfo inspect_recipient_certificate(std::string_view pem, std::time_t now);

// The parsing half of inspect_recipient_certificate(), without the validity-date checks: one PEM
// certificate with a strong enough RSA or EC key meant for encryption, or Error(SQLSTATE
// 22023). The CMS writer uses it so that a certificate that went bad in the database gives the
// same clear message as at registration.
openssl::X509Ptr parse_recipient_certificate(std::string_view pem);

}  // namespace privacy::core
