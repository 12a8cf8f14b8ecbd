#include "core/certificate.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <string>

#include "core/encoding.hpp"
#include "core/error.hpp"

namespace privacy::core {

namespace {

// No real certificate comes near this; the limit keeps the int-sized OpenSSL length honest.
constexpr size_t kMaxCertificateBytes = 1024 * 1024;

// How messages name a certificate of each use, and the hint for every "this is not a usable
// certificate" error: a command that makes a good one (the same as in docs/exports.md and
// docs/compliance.md).
struct Wording {
  CertificateUse use;
  const char* noun;        // "export recipient certificate"
  const char* key_role;    // "an RSA <key_role> key needs at least ..."
  const char* why_strong;  // why a weak key is refused
  const char* how_to_make_one;
};

constexpr Wording kRecipientWording{
    CertificateUse::ExportRecipient, "export recipient certificate", "recipient",
    "exports hold personal data that must stay confidential for years",
    "create a key and self-signed certificate with: openssl req -x509 -newkey rsa:3072 -nodes "
    "-keyout recipient.key -out recipient.crt -days 365 -subj \"/CN=privacy export recipient\" "
    "-addext keyUsage=keyEncipherment (or, for EC: -newkey ec -pkeyopt "
    "ec_paramgen_curve:prime256v1 -addext keyUsage=keyAgreement), then pass the contents of "
    "recipient.crt and keep recipient.key private"};

constexpr Wording kSignerWording{
    CertificateUse::ReceiptSigner, "receipt signing certificate", "signing",
    "receipts are evidence that must stay unforgeable for years",
    "create a key and self-signed certificate with: openssl req -x509 -newkey rsa:3072 -nodes "
    "-keyout signing.key -out signing.crt -days 1095 -subj \"/CN=pg_privacy receipts\" "
    "-addext keyUsage=digitalSignature (or, for EC: -newkey ec -pkeyopt ec_paramgen_curve:prime256v1), "
    "then pass the contents of signing.crt and signing.key to privacy.set_signing_key"};

const Wording& wording_of(CertificateUse use) {
  return use == CertificateUse::ExportRecipient ? kRecipientWording : kSignerWording;
}

// The weakest keys an export is encrypted to, or a receipt is signed with. Exports hold personal
// data that must stay confidential for years, and receipts must stay unforgeable as long: RSA
// under 2048 bits and elliptic curves under 256 bits (about 112 and 128 bits of security) are
// refused, as current guidance (NIST SP 800-57, BSI TR-02102) does for protection beyond today.
constexpr int kMinRsaBits = 2048;
constexpr int kMinEcOrderBits = 256;

[[noreturn]] void refuse(const std::string& message, const std::string& detail,
                         const std::string& hint) {
  throw Error(sqlstate::kInvalidParameter, message, detail, hint);
}

// A read-only memory BIO over `pem`; the text must outlive the BIO.
openssl::BioPtr memory_bio_over(std::string_view pem) {
  openssl::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) {
    throw Error(sqlstate::kOutOfMemory, "could not allocate an OpenSSL memory BIO",
                openssl::take_error_text());
  }
  return bio;
}

// A certificate is public by nature and gets stored in a table many roles can read. Someone who
// pastes their whole "key + certificate" file would leak the private key that protects every
// export (or signs every receipt), so that text is refused outright rather than silently trimmed.
void refuse_private_key(std::string_view pem, const Wording& wording) {
  if (pem.find("PRIVATE KEY-----") == std::string_view::npos) return;
  if (wording.use == CertificateUse::ExportRecipient) {
    refuse("export recipient certificate text contains a private key",
           "a recipient is registered with its certificate only",
           "pass only the -----BEGIN CERTIFICATE----- block; keep the private key with the "
           "recipient, and consider it exposed if it was pasted somewhere shared");
  }
  refuse(std::string(wording.noun) + " text contains a private key",
         "the certificate and the private key are passed separately",
         "pass only the -----BEGIN CERTIFICATE----- block as the certificate and the key as the "
         "private key");
}

// PEM_read_bio_X509 happily skips other blocks and stops after the first certificate. We want
// exactly one: a chain file registered by mistake would otherwise use whichever certificate
// comes first, which is not always the holder's own.
openssl::X509Ptr read_exactly_one_certificate(std::string_view pem, const Wording& wording) {
  openssl::BioPtr bio = memory_bio_over(pem);
  openssl::X509Ptr first(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!first) {
    refuse(std::string(wording.noun) + " is not a PEM X.509 certificate",
           "OpenSSL said: " + openssl::take_error_text(), wording.how_to_make_one);
  }
  openssl::X509Ptr second(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();  // reading past the last block always leaves a "no start line" error
  if (second) {
    if (wording.use == CertificateUse::ExportRecipient) {
      refuse("export recipient certificate text contains more than one certificate",
             "a recipient is one certificate, not a chain",
             "pass only the recipient's own certificate (usually the first block of a chain file)");
    }
    refuse(std::string(wording.noun) + " text contains more than one certificate",
           "the signer is one certificate, not a chain",
           "pass only the signing certificate itself (usually the first block of a chain file)");
  }
  return first;
}

// The name OpenSSL gives the key type ("ED25519", "DSA", "RSA-PSS", ...), for error messages.
std::string key_type_name(EVP_PKEY* key) {
  const char* name = EVP_PKEY_get0_type_name(key);
  if (name != nullptr) return name;
  return OBJ_nid2sn(EVP_PKEY_get_base_id(key));
}

// "RSA" or "EC": the two key types CMS can encrypt to (RSA key transport and ECDH key agreement),
// and the two pg_privacy signs receipts with. Anything else, such as Ed25519 which only signs, is
// refused naming what we found.
std::string usable_key_type(const X509* cert, const Wording& wording) {
  EVP_PKEY* key = X509_get0_pubkey(cert);
  if (key == nullptr) {
    refuse(std::string(wording.noun) + " has no readable public key",
           "OpenSSL said: " + openssl::take_error_text(), wording.how_to_make_one);
  }
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
      return "RSA";
    case EVP_PKEY_EC:
      return "EC";
    default:
      if (wording.use == CertificateUse::ExportRecipient) {
        refuse("export recipient certificate has a " + key_type_name(key) +
                   " key, but only RSA and EC keys can receive an encrypted export",
               "exports are CMS envelopes: RSA keys receive the content key by key transport, EC "
               "keys by ECDH key agreement; other key types cannot do either",
               wording.how_to_make_one);
      }
      refuse(std::string(wording.noun) + " has a " + key_type_name(key) +
                 " key, but receipts are signed with RSA or EC keys only",
             "RSA and ECDSA signatures in CMS are what every OpenSSL version verifies",
             wording.how_to_make_one);
  }
}

// Refuses an RSA key shorter than kMinRsaBits.
void check_rsa_strength(EVP_PKEY* key, const Wording& wording) {
  const int bits = EVP_PKEY_get_bits(key);
  if (bits >= kMinRsaBits) return;
  refuse(std::string(wording.noun) + " has a " + std::to_string(bits) +
             "-bit RSA key, but an RSA " + wording.key_role + " key needs at least " +
             std::to_string(kMinRsaBits) + " bits",
         std::string(wording.why_strong) +
             "; shorter RSA keys are within reach of attackers now or soon",
         wording.how_to_make_one);
}

// Refuses an EC key on a curve of fewer than kMinEcOrderBits bits, or given by explicit
// parameters instead of a curve name (such parameters are what the other side's software
// trusts blindly, and no standard certificate needs them).
void check_ec_strength(EVP_PKEY* key, const Wording& wording) {
  char encoding[32] = "";
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_EC_ENCODING, encoding, sizeof encoding,
                                     nullptr) == 1 &&
      std::string(encoding) == OSSL_PKEY_EC_ENCODING_EXPLICIT) {
    refuse(std::string(wording.noun) +
               " has an EC key with explicit curve parameters, but only "
               "named curves are accepted",
           "use P-256 (prime256v1), P-384 (secp384r1) or P-521 (secp521r1)",
           wording.how_to_make_one);
  }
  char curve[64] = "";
  if (EVP_PKEY_get_group_name(key, curve, sizeof curve, nullptr) != 1) {
    refuse(std::string(wording.noun) + " has an EC key on an unknown curve",
           "OpenSSL said: " + openssl::take_error_text(), wording.how_to_make_one);
  }
  const int bits = EVP_PKEY_get_bits(key);
  if (bits >= kMinEcOrderBits) return;
  refuse(std::string(wording.noun) + " has an EC key on curve " + std::string(curve) + " (" +
             std::to_string(bits) + " bits), but an EC " + wording.key_role +
             " key needs a curve of at least " + std::to_string(kMinEcOrderBits) + " bits",
         "use P-256 (prime256v1), P-384 (secp384r1) or P-521 (secp521r1); " +
             std::string(wording.why_strong),
         wording.how_to_make_one);
}

// The names of the keyUsage bits, as openssl.cnf and `openssl x509 -text` spell them.
std::string key_usage_names(uint32_t usage) {
  static const struct {
    uint32_t bit;
    const char* name;
  } kNames[] = {{KU_DIGITAL_SIGNATURE, "digitalSignature"},
                {KU_NON_REPUDIATION, "nonRepudiation"},
                {KU_KEY_ENCIPHERMENT, "keyEncipherment"},
                {KU_DATA_ENCIPHERMENT, "dataEncipherment"},
                {KU_KEY_AGREEMENT, "keyAgreement"},
                {KU_KEY_CERT_SIGN, "keyCertSign"},
                {KU_CRL_SIGN, "cRLSign"},
                {KU_ENCIPHER_ONLY, "encipherOnly"},
                {KU_DECIPHER_ONLY, "decipherOnly"}};
  std::string names;
  for (const auto& entry : kNames) {
    if ((usage & entry.bit) == 0) continue;
    if (!names.empty()) names += ", ";
    names += entry.name;
  }
  return names.empty() ? "nothing" : names;
}

// A certificate may say what its key is for (the keyUsage extension). An export reaches an RSA
// recipient by key transport, which needs keyEncipherment, and an EC recipient by key
// agreement, which needs keyAgreement; a receipt signer needs digitalSignature (or
// nonRepudiation, which S/MIME verification accepts too). A certificate that has the extension
// without the bit its key needs was made for something else and is refused; one without the
// extension allows every use.
void check_key_usage(X509* cert, const std::string& key_type, const Wording& wording) {
  if (X509_check_purpose(cert, -1, 0) != 1) {  // also caches the extensions read below
    refuse(std::string(wording.noun) + " has an extension OpenSSL cannot read",
           "OpenSSL said: " + openssl::take_error_text(), wording.how_to_make_one);
  }
  if ((X509_get_extension_flags(cert) & EXFLAG_KUSAGE) == 0) return;
  const uint32_t usage = X509_get_key_usage(cert);
  if (wording.use == CertificateUse::ReceiptSigner) {
    if ((usage & (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION)) != 0) return;
    refuse(
        "receipt signing certificate's keyUsage does not allow digitalSignature, which signing a receipt needs",
        "its keyUsage allows: " + key_usage_names(usage),
        "make a certificate with keyUsage digitalSignature (or without a keyUsage extension): " +
            std::string(wording.how_to_make_one));
  }
  const bool rsa = key_type == "RSA";
  const uint32_t needed = rsa ? KU_KEY_ENCIPHERMENT : KU_KEY_AGREEMENT;
  if ((usage & needed) != 0) return;
  const std::string needed_name = rsa ? "keyEncipherment" : "keyAgreement";
  refuse("export recipient certificate's keyUsage does not allow " + needed_name + ", which an " +
             key_type + " key needs to receive an export",
         "its keyUsage allows: " + key_usage_names(usage),
         "make a certificate with keyUsage " + needed_name + " (or without a keyUsage " +
             "extension): " + wording.how_to_make_one);
}

// Refuses what CMS could use but should not: weak keys and keys not meant for the use.
void check_key(X509* cert, const std::string& key_type, const Wording& wording) {
  EVP_PKEY* key = X509_get0_pubkey(cert);
  if (key_type == "RSA") {
    check_rsa_strength(key, wording);
  } else {
    check_ec_strength(key, wording);
  }
  check_key_usage(cert, key_type, wording);
}

// An ASN1_TIME as ISO 8601 UTC, "2027-01-31T12:00:00Z".
std::string iso8601_utc(const ASN1_TIME* time, const Wording& wording) {
  struct tm parts {};
  if (time == nullptr || ASN1_TIME_to_tm(time, &parts) != 1) {
    refuse(std::string(wording.noun) + " has an unreadable validity date",
           "OpenSSL said: " + openssl::take_error_text(), wording.how_to_make_one);
  }
  char text[32];
  strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

// X509_cmp_time: negative when `time` is before `now`, positive after, 0 when unreadable.
int compare_with(const ASN1_TIME* time, std::time_t now, const Wording& wording) {
  int order = X509_cmp_time(time, &now);
  if (order == 0) {
    refuse(std::string(wording.noun) + " has an unreadable validity date",
           "OpenSSL said: " + openssl::take_error_text(), wording.how_to_make_one);
  }
  return order;
}

// Refuses a certificate outside its validity window at `now`, saying when the window was.
void check_validity(const X509* cert, const std::string& subject, std::time_t now,
                    const Wording& wording) {
  const ASN1_TIME* not_before = X509_get0_notBefore(cert);
  const ASN1_TIME* not_after = X509_get0_notAfter(cert);
  if (compare_with(not_after, now, wording) < 0) {
    refuse(std::string(wording.noun) + " expired on " + iso8601_utc(not_after, wording),
           "certificate subject: " + subject,
           wording.use == CertificateUse::ExportRecipient
               ? "ask the recipient for a renewed certificate and register that one"
               : "make a new key and certificate and set them with privacy.set_signing_key");
  }
  if (compare_with(not_before, now, wording) > 0) {
    refuse(std::string(wording.noun) + " is not valid until " + iso8601_utc(not_before, wording),
           "certificate subject: " + subject,
           "check the clock of the machine that made it, or register it once it becomes valid");
  }
}

// The subject in RFC 2253 form ("CN=DPO,O=Example"), with UTF-8 left readable.
std::string subject_text(const X509* cert, const Wording& wording) {
  openssl::BioPtr out(BIO_new(BIO_s_mem()));
  if (!out) {
    throw Error(sqlstate::kOutOfMemory, "could not allocate an OpenSSL memory BIO",
                openssl::take_error_text());
  }
  const unsigned long flags = XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB;
  if (X509_NAME_print_ex(out.get(), X509_get_subject_name(cert), 0, flags) < 0) {
    refuse(std::string(wording.noun) + " has an unreadable subject",
           "OpenSSL said: " + openssl::take_error_text(), wording.how_to_make_one);
  }
  char* data = nullptr;
  long length = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<size_t>(length));
}

// SHA-256 of the DER certificate in lowercase hex, the form PostgreSQL's
// encode(sha256(...), 'hex') produces, so fingerprints can be compared in SQL.
std::string sha256_fingerprint(const X509* cert) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (X509_digest(cert, EVP_sha256(), digest, &length) != 1) {
    throw Error(sqlstate::kInternalError, "could not compute a certificate fingerprint",
                openssl::take_error_text());
  }
  return hex_encode(digest, length);
}

}  // namespace

openssl::X509Ptr parse_certificate(std::string_view pem, CertificateUse use) {
  const Wording& wording = wording_of(use);
  ERR_clear_error();  // so that an error message only shows what went wrong here
  if (pem.size() > kMaxCertificateBytes) {
    refuse(std::string(wording.noun) + " is not a PEM X.509 certificate",
           "the text is " + std::to_string(pem.size()) + " bytes long, far more than a certificate",
           wording.how_to_make_one);
  }
  refuse_private_key(pem, wording);
  openssl::X509Ptr cert = read_exactly_one_certificate(pem, wording);
  check_key(cert.get(), usable_key_type(cert.get(), wording), wording);
  return cert;
}

CertificateInfo inspect_certificate(std::string_view pem, CertificateUse use, std::time_t now) {
  const Wording& wording = wording_of(use);
  openssl::X509Ptr cert = parse_certificate(pem, use);
  CertificateInfo info;
  info.subject = subject_text(cert.get(), wording);
  check_validity(cert.get(), info.subject, now, wording);
  info.not_after = iso8601_utc(X509_get0_notAfter(cert.get()), wording);
  info.key_type = usable_key_type(cert.get(), wording);
  info.sha256_fingerprint = sha256_fingerprint(cert.get());
  return info;
}

openssl::X509Ptr parse_recipient_certificate(std::string_view pem) {
  return parse_certificate(pem, CertificateUse::ExportRecipient);
}

CertificateInfo inspect_recipient_certificate(std::string_view pem, std::time_t now) {
  return inspect_certificate(pem, CertificateUse::ExportRecipient, now);
}

}  // namespace privacy::core
