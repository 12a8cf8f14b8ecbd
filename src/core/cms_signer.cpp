#include "core/cms_signer.hpp"

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "core/error.hpp"
#include "core/sealed_subject.hpp"

#include <memory>

namespace privacy::core {

namespace {

// No real key comes near this; the limit keeps the int-sized OpenSSL length honest.
constexpr size_t kMaxKeyBytes = 1024 * 1024;

constexpr const char* kKeyHint =
    "pass the unencrypted PEM private key that belongs to the certificate (-----BEGIN PRIVATE KEY-----), "
    "e.g. signing.key made with: openssl req -x509 -newkey rsa:3072 -nodes -keyout signing.key "
    "-out signing.crt -days 1095 -subj \"/CN=pg_privacy receipts\" -addext keyUsage=digitalSignature";

[[noreturn]] void refuse(const std::string& message, const std::string& detail,
                         const std::string& hint = kKeyHint) {
  throw Error(sqlstate::kInvalidParameter, message, detail, hint);
}

openssl::BioPtr memory_bio_over(std::string_view bytes) {
  openssl::BioPtr bio(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
  if (!bio)
    throw Error(sqlstate::kOutOfMemory, "could not allocate an OpenSSL memory BIO",
                openssl::take_error_text());
  return bio;
}

// A passphrase callback that never gives one: an encrypted key fails to load instead of waiting
// for a terminal the server does not have.
int no_passphrase(char*, int, int, void*) { return -1; }

// The private key, read without ever putting its text into a message.
openssl::EvpPkeyPtr read_private_key(std::string_view key_pem) {
  if (key_pem.size() > kMaxKeyBytes)
    refuse("receipt signing key is not a PEM private key", "the text is far too long");
  if (key_pem.find("ENCRYPTED") != std::string_view::npos) {
    refuse(
        "receipt signing key is encrypted",
        "the database signs receipts without a person present, so it cannot ask for a passphrase",
        "decrypt it first (openssl pkey -in signing.key -out plain.key) and pass plain.key; the key "
        "is stored where no role can read it (docs/compliance.md)");
  }
  openssl::BioPtr bio = memory_bio_over(key_pem);
  openssl::EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  if (!key) {
    ERR_clear_error();  // OpenSSL's text says nothing useful here and must not echo the input
    refuse("receipt signing key is not a PEM private key",
           "no -----BEGIN PRIVATE KEY----- block could be read");
  }
  return key;
}

[[noreturn]] void internal_error(const std::string& message) {
  throw Error(sqlstate::kInternalError, message, "OpenSSL said: " + openssl::take_error_text());
}

}  // namespace

CmsSigner::CmsSigner(std::string_view certificate_pem, std::string_view key_pem, std::time_t now) {
  info_ = inspect_certificate(certificate_pem, CertificateUse::ReceiptSigner, now);
  certificate_ = parse_certificate(certificate_pem, CertificateUse::ReceiptSigner);
  key_ = read_private_key(key_pem);
  if (X509_check_private_key(certificate_.get(), key_.get()) != 1) {
    ERR_clear_error();
    refuse("receipt signing key does not belong to the certificate",
           "the certificate's public key (SHA-256 fingerprint of the certificate " +
               info_.sha256_fingerprint + ") is not the public half of this key",
           "pass the key the certificate was made for");
  }
}

std::string CmsSigner::sign(std::string_view content) const {
  ERR_clear_error();
  openssl::BioPtr input = memory_bio_over(content);
  const unsigned int flags = CMS_BINARY | CMS_NOSMIMECAP;
  openssl::CmsPtr cms(CMS_sign(certificate_.get(), key_.get(), nullptr, input.get(), flags));
  if (!cms) internal_error("could not sign with the receipt signing key");
  openssl::BioPtr output(BIO_new(BIO_s_mem()));
  if (!output || i2d_CMS_bio(output.get(), cms.get()) != 1)
    internal_error("could not encode a CMS SignedData");
  char* data = nullptr;
  long length = BIO_get_mem_data(output.get(), &data);
  return std::string(data, static_cast<size_t>(length));
}

std::string CmsSigner::sealing_key() const { return derive_sealing_key(key_.get()); }

std::string sealing_key_of(std::string_view key_pem) {
  return derive_sealing_key(read_private_key(key_pem).get());
}

std::string verified_cms_content(std::string_view der,
                                 const std::vector<std::string>& trusted_certificate_pems) {
  ERR_clear_error();
  openssl::BioPtr input = memory_bio_over(der);
  openssl::CmsPtr cms(d2i_CMS_bio(input.get(), nullptr));
  if (!cms || OBJ_obj2nid(CMS_get0_type(cms.get())) != NID_pkcs7_signed) {
    throw Error(sqlstate::kInvalidParameter, "the signature is not a CMS SignedData structure",
                "OpenSSL said: " + openssl::take_error_text());
  }
  STACK_OF(X509)* trusted = sk_X509_new_null();
  std::unique_ptr<STACK_OF(X509), void (*)(STACK_OF(X509)*)> trusted_owner(
      trusted, [](STACK_OF(X509) * stack) { sk_X509_pop_free(stack, X509_free); });
  for (const std::string& pem : trusted_certificate_pems) {
    openssl::BioPtr bio = memory_bio_over(pem);
    X509* certificate = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (certificate != nullptr && sk_X509_push(trusted, certificate) == 0) X509_free(certificate);
  }
  ERR_clear_error();
  openssl::BioPtr output(BIO_new(BIO_s_mem()));
  // CMS_NOINTERN: the signer must be one of ours, never a certificate the file brings along.
  // CMS_NO_SIGNER_CERT_VERIFY: ours are trusted as they are (no chain, no dates).
  const unsigned int flags = CMS_BINARY | CMS_NOINTERN | CMS_NO_SIGNER_CERT_VERIFY;
  if (CMS_verify(cms.get(), trusted, nullptr, nullptr, output.get(), flags) != 1) {
    throw Error(
        sqlstate::kInvalidParameter,
        "the signature does not verify with any known signing certificate",
        "OpenSSL said: " + openssl::take_error_text(),
        "the signed content was altered, or another key signed it; privacy.signing_certificates lists "
        "the certificates this database knows");
  }
  char* data = nullptr;
  long length = BIO_get_mem_data(output.get(), &data);
  return std::string(data, static_cast<size_t>(length));
}

}  // namespace privacy::core
