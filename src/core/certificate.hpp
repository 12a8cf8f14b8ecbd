// Checking an X.509 certificate before we trust it: an export recipient's with personal data, or
// the installation's receipt signer's with evidence.
//
// privacy.add_export_recipient(name, certificate) stores a PEM certificate; every export is then
// encrypted to the public key inside it. privacy.set_signing_key(certificate, key) stores the
// certificate whose key signs receipts (docs/compliance.md). A certificate we cannot use must be
// refused when it is given, with a message that says what is wrong and how to fix it, not when a
// job fails hours later. This file does that check and reports what the SQL layer shows about a
// certificate.
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

// What a certificate is for: each use wants its own key usage, and messages name the use.
//   ExportRecipient  RSA or EC, keyUsage (if any) keyEncipherment (RSA) / keyAgreement (EC)
//   ReceiptSigner    RSA or EC, keyUsage (if any) digitalSignature or nonRepudiation
// Both refuse weak keys the same way: RSA under 2048 bits, EC curves under 256 bits or with
// explicit parameters.
enum class CertificateUse { ExportRecipient, ReceiptSigner };

// Parses exactly one PEM certificate for `use` and checks it at time `now`, as below.
CertificateInfo inspect_certificate(std::string_view pem, CertificateUse use, std::time_t now);

// The parsing half of inspect_certificate(), without the validity-date checks.
openssl::X509Ptr parse_certificate(std::string_view pem, CertificateUse use);

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
