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

#include "core/error.hpp"

namespace privacy::core {

namespace {

// No real certificate comes near this; the limit keeps the int-sized OpenSSL length honest.
constexpr size_t kMaxCertificateBytes = 1024 * 1024;

// The hint for every "this is not a usable certificate" error: a command that makes a good one
// (the same as in docs/exports.md).
constexpr const char* kHowToMakeOne =
    "create a key and self-signed certificate with: openssl req -x509 -newkey rsa:3072 -nodes "
    "-keyout recipient.key -out recipient.crt -days 365 -subj \"/CN=privacy export recipient\" "
    "-addext keyUsage=keyEncipherment (or, for EC: -newkey ec -pkeyopt "
    "ec_paramgen_curve:prime256v1 -addext keyUsage=keyAgreement), then pass the contents of "
    "recipient.crt and keep recipient.key private";

// The weakest keys an export is encrypted to. Exports hold personal data that must stay
// confidential for years: RSA under 2048 bits and elliptic curves under 256 bits (about 112
// and 128 bits of security) are refused, as current guidance (NIST SP 800-57, BSI TR-02102)
// does for data protected beyond today.
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

// A recipient certificate is public by nature and gets stored in a table many roles can read.
// Someone who pastes their whole "key + certificate" file would leak the private key that
// protects every export, so that text is refused outright rather than silently trimmed.
void refuse_private_key(std::string_view pem) {
  if (pem.find("PRIVATE KEY-----") == std::string_view::npos) return;
  refuse("export recipient certificate text contains a private key",
         "a recipient is registered with its certificate only",
         "pass only the -----BEGIN CERTIFICATE----- block; keep the private key with the "
         "recipient, and consider it exposed if it was pasted somewhere shared");
}

// PEM_read_bio_X509 happily skips other blocks and stops after the first certificate. We want
// exactly one: a chain file registered by mistake would otherwise encrypt to whichever
// certificate comes first, which is not always the recipient's own.
openssl::X509Ptr read_exactly_one_certificate(std::string_view pem) {
  openssl::BioPtr bio = memory_bio_over(pem);
  openssl::X509Ptr first(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!first) {
    refuse("export recipient certificate is not a PEM X.509 certificate",
           "OpenSSL said: " + openssl::take_error_text(), kHowToMakeOne);
  }
  openssl::X509Ptr second(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();  // reading past the last block always leaves a "no start line" error
  if (second) {
    refuse("export recipient certificate text contains more than one certificate",
           "a recipient is one certificate, not a chain",
           "pass only the recipient's own certificate (usually the first block of a chain file)");
  }
  return first;
}

// The name OpenSSL gives the key type ("ED25519", "DSA", "RSA-PSS", ...), for error messages.
std::string key_type_name(EVP_PKEY* key) {
  const char* name = EVP_PKEY_get0_type_name(key);
  if (name != nullptr) return name;
  return OBJ_nid2sn(EVP_PKEY_get_base_id(key));
}

// "RSA" or "EC", the two key types CMS can encrypt to (RSA key transport and ECDH key
// agreement). Anything else, such as Ed25519 which only signs, is refused naming what we found.
std::string usable_key_type(const X509* cert) {
  EVP_PKEY* key = X509_get0_pubkey(cert);
  if (key == nullptr) {
    refuse("export recipient certificate has no readable public key",
           "OpenSSL said: " + openssl::take_error_text(), kHowToMakeOne);
  }
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
      return "RSA";
    case EVP_PKEY_EC:
      return "EC";
    default:
      refuse("export recipient certificate has a " + key_type_name(key) +
                 " key, but only RSA and EC keys can receive an encrypted export",
             "exports are CMS envelopes: RSA keys receive the content key by key transport, EC "
             "keys by ECDH key agreement; other key types cannot do either",
             kHowToMakeOne);
  }
}

// Refuses an RSA key shorter than kMinRsaBits.
void check_rsa_strength(EVP_PKEY* key) {
  const int bits = EVP_PKEY_get_bits(key);
  if (bits >= kMinRsaBits) return;
  refuse("export recipient certificate has a " + std::to_string(bits) +
             "-bit RSA key, but an RSA recipient key needs at least " +
             std::to_string(kMinRsaBits) + " bits",
         "exports hold personal data that must stay confidential for years; shorter RSA keys "
         "are within reach of attackers now or soon",
         kHowToMakeOne);
}

// Refuses an EC key on a curve of fewer than kMinEcOrderBits bits, or given by explicit
// parameters instead of a curve name (such parameters are what the recipient's software
// trusts blindly, and no standard certificate needs them).
void check_ec_strength(EVP_PKEY* key) {
  char encoding[32] = "";
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_EC_ENCODING, encoding,
                                     sizeof encoding, nullptr) == 1 &&
      std::string(encoding) == OSSL_PKEY_EC_ENCODING_EXPLICIT) {
    refuse("export recipient certificate has an EC key with explicit curve parameters, but only "
           "named curves are accepted",
           "use P-256 (prime256v1), P-384 (secp384r1) or P-521 (secp521r1)", kHowToMakeOne);
  }
  char curve[64] = "";
  if (EVP_PKEY_get_group_name(key, curve, sizeof curve, nullptr) != 1) {
    refuse("export recipient certificate has an EC key on an unknown curve",
           "OpenSSL said: " + openssl::take_error_text(), kHowToMakeOne);
  }
  const int bits = EVP_PKEY_get_bits(key);
  if (bits >= kMinEcOrderBits) return;
  refuse("export recipient certificate has an EC key on curve " + std::string(curve) + " (" +
             std::to_string(bits) + " bits), but an EC recipient key needs a curve of at least " +
             std::to_string(kMinEcOrderBits) + " bits",
         "use P-256 (prime256v1), P-384 (secp384r1) or P-521 (secp521r1); exports hold personal "
         "data that must stay confidential for years",
         kHowToMakeOne);
}

// The names of the keyUsage bits, as openssl.cnf and `openssl x509 -text` spell them.
std::string key_usage_names(uint32_t usage) {
  static const struct {
    uint32_t bit;
    const char* name;
  } kNames[] = {{KU_DIGITAL_SIGNATURE, "digitalSignature"}, {KU_NON_REPUDIATION, "nonRepudiation"},
                {KU_KEY_ENCIPHERMENT, "keyEncipherment"},   {KU_DATA_ENCIPHERMENT, "dataEncipherment"},
                {KU_KEY_AGREEMENT, "keyAgreement"},         {KU_KEY_CERT_SIGN, "keyCertSign"},
                {KU_CRL_SIGN, "cRLSign"},                   {KU_ENCIPHER_ONLY, "encipherOnly"},
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
// agreement, which needs keyAgreement. A certificate that has the extension without the bit
// its key needs was made for something else (signing, a CA) and is refused; one without the
// extension allows every use.
void check_key_usage(X509* cert, const std::string& key_type) {
  if (X509_check_purpose(cert, -1, 0) != 1) {  // also caches the extensions read below
    refuse("export recipient certificate has an extension OpenSSL cannot read",
           "OpenSSL said: " + openssl::take_error_text(), kHowToMakeOne);
  }
  if ((X509_get_extension_flags(cert) & EXFLAG_KUSAGE) == 0) return;
  const uint32_t usage = X509_get_key_usage(cert);
  const bool rsa = key_type == "RSA";
  const uint32_t needed = rsa ? KU_KEY_ENCIPHERMENT : KU_KEY_AGREEMENT;
  if ((usage & needed) != 0) return;
  const std::string needed_name = rsa ? "keyEncipherment" : "keyAgreement";
  refuse("export recipient certificate's keyUsage does not allow " + needed_name + ", which an " +
             key_type + " key needs to receive an export",
         "its keyUsage allows: " + key_usage_names(usage),
         "make a certificate with keyUsage " + needed_name + " (or without a keyUsage " +
             "extension): " + kHowToMakeOne);
}

// Refuses what CMS could encrypt to but should not: weak keys and keys not meant for it.
void check_recipient_key(X509* cert, const std::string& key_type) {
  EVP_PKEY* key = X509_get0_pubkey(cert);
  if (key_type == "RSA") {
    check_rsa_strength(key);
  } else {
    check_ec_strength(key);
  }
  check_key_usage(cert, key_type);
}

// An ASN1_TIME as ISO 8601 UTC, "2027-01-31T12:00:00Z".
std::string iso8601_utc(const ASN1_TIME* time) {
  struct tm parts {};
  if (time == nullptr || ASN1_TIME_to_tm(time, &parts) != 1) {
    refuse("export recipient certificate has an unreadable validity date",
           "OpenSSL said: " + openssl::take_error_text(), kHowToMakeOne);
  }
  char text[32];
  strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

// X509_cmp_time: negative when `time` is before `now`, positive after, 0 when unreadable.
int compare_with(const ASN1_TIME* time, std::time_t now) {
  int order = X509_cmp_time(time, &now);
  if (order == 0) {
    refuse("export recipient certificate has an unreadable validity date",
           "OpenSSL said: " + openssl::take_error_text(), kHowToMakeOne);
  }
  return order;
}

// Refuses a certificate outside its validity window at `now`, saying when the window was.
void check_validity(const X509* cert, const std::string& subject, std::time_t now) {
  const ASN1_TIME* not_before = X509_get0_notBefore(cert);
  const ASN1_TIME* not_after = X509_get0_notAfter(cert);
  if (compare_with(not_after, now) < 0) {
    refuse("export recipient certificate expired on " + iso8601_utc(not_after),
           "certificate subject: " + subject,
           "ask the recipient for a renewed certificate and register that one");
  }
  if (compare_with(not_before, now) > 0) {
    refuse("export recipient certificate is not valid until " + iso8601_utc(not_before),
           "certificate subject: " + subject,
           "check the clock of the machine that made it, or register it once it becomes valid");
  }
}

// The subject in RFC 2253 form ("CN=DPO,O=Example"), with UTF-8 left readable.
std::string subject_text(const X509* cert) {
  openssl::BioPtr out(BIO_new(BIO_s_mem()));
  if (!out) {
    throw Error(sqlstate::kOutOfMemory, "could not allocate an OpenSSL memory BIO",
                openssl::take_error_text());
  }
  const unsigned long flags = XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB;
  if (X509_NAME_print_ex(out.get(), X509_get_subject_name(cert), 0, flags) < 0) {
    refuse("export recipient certificate has an unreadable subject",
           "OpenSSL said: " + openssl::take_error_text(), kHowToMakeOne);
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
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0x0f];
  }
  return hex;
}

}  // namespace

openssl::X509Ptr parse_recipient_certificate(std::string_view pem) {
  ERR_clear_error();  // so that an error message only shows what went wrong here
  if (pem.size() > kMaxCertificateBytes) {
    refuse("export recipient certificate is not a PEM X.509 certificate",
           "the text is " + std::to_string(pem.size()) + " bytes long, far more than a certificate",
           kHowToMakeOne);
  }
  refuse_private_key(pem);
  openssl::X509Ptr cert = read_exactly_one_certificate(pem);
  check_recipient_key(cert.get(), usable_key_type(cert.get()));
  return cert;
}

CertificateInfo inspect_recipient_certificate(std::string_view pem, std::time_t now) {
  openssl::X509Ptr cert = parse_recipient_certificate(pem);
  CertificateInfo info;
  info.subject = subject_text(cert.get());
  check_validity(cert.get(), info.subject, now);
  info.not_after = iso8601_utc(X509_get0_notAfter(cert.get()));
  info.key_type = usable_key_type(cert.get());
  info.sha256_fingerprint = sha256_fingerprint(cert.get());
  return info;
}

}  // namespace privacy::core
