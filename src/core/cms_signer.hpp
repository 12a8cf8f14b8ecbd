// Signing evidence as CMS SignedData, and checking such signatures (docs/compliance.md).
//
// A receipt, and the head of the erasure ledger, leave the database: a DPO hands them to a
// regulator, who checks them with nothing but the stock OpenSSL command line and the
// installation's certificate:
//
//   openssl cms -verify -inform PEM -in receipt-42.pem -CAfile signing.crt -out receipt-42.json
//
// The SignedData carries its content (it is not "detached"), the signer's certificate, and the
// signed attributes OpenSSL adds (content type, signing time, message digest); the content is
// signed as binary (no MIME canonicalisation), with SHA-256.
#pragma once

#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/certificate.hpp"
#include "core/openssl_handles.hpp"

namespace privacy::core {

class CmsSigner {
 public:
  // Checks the certificate as a receipt signer at time `now` (inspect_certificate with
  // CertificateUse::ReceiptSigner) and the key: one unencrypted PEM private key that belongs to
  // the certificate. Throws Error(22023) saying what is wrong; the key's text never appears in
  // a message.
  CmsSigner(std::string_view certificate_pem, std::string_view key_pem, std::time_t now);

  // What set_signing_key shows and stores about the certificate.
  const CertificateInfo& certificate() const { return info_; }

  // `content` signed: CMS SignedData as DER.
  std::string sign(std::string_view content) const;

  // The key that seals subject ids in the erasure ledger, derived from this signer's private key
  // (core/sealed_subject.hpp).
  std::string sealing_key() const;

 private:
  openssl::X509Ptr certificate_;
  openssl::EvpPkeyPtr key_;
  CertificateInfo info_;
};

// The content of the CMS SignedData `der` when one of its signatures verifies with the key of one
// of `trusted_certificate_pems`. The certificates are trusted as they are (the database keeps
// them): no chain is built and their dates are not looked at, so that evidence signed with a key
// that has expired since still verifies. Throws Error(22023) when `der` is not SignedData, or no
// trusted certificate's key made its signature (altered content, another signer).
std::string verified_cms_content(std::string_view der,
                                 const std::vector<std::string>& trusted_certificate_pems);

// The sealing key of a PEM private key stored earlier (core/sealed_subject.hpp): the key that
// opens ledger entries sealed while it was the signing key, whatever its certificate's dates.
// Throws Error(22023) when the text is not a PEM private key.
std::string sealing_key_of(std::string_view key_pem);

}  // namespace privacy::core
