// Test helpers: throw-away keys and self-signed certificates made with the OpenSSL API, a
// scratch directory, and a way to run the `openssl` command line, so that the unit tests can
// check our output against the stock tools a data protection officer would use.
#pragma once

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/wait.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

#include "core/openssl_handles.hpp"

namespace privacy::test {

enum class KeyKind { Rsa, Ec, Ed25519 };

struct KeyAndCertificate {
  std::string key_pem;          // PKCS#8 private key, unencrypted
  std::string certificate_pem;  // self-signed X.509 certificate
};

inline core::openssl::EvpPkeyPtr generate_key(KeyKind kind) {
  EVP_PKEY* key = nullptr;
  switch (kind) {
    case KeyKind::Rsa:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
      break;
    case KeyKind::Ec:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "prime256v1");
      break;
    case KeyKind::Ed25519:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
      break;
  }
  if (key == nullptr) throw std::runtime_error("key generation failed");
  return core::openssl::EvpPkeyPtr(key);
}

// Keys of a chosen strength, for the tests that weak ones are refused.
inline core::openssl::EvpPkeyPtr rsa_key(size_t bits) {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", bits);
  if (key == nullptr) throw std::runtime_error("RSA key generation failed");
  return core::openssl::EvpPkeyPtr(key);
}
inline core::openssl::EvpPkeyPtr ec_key(const char* curve) {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve);
  if (key == nullptr) throw std::runtime_error(std::string("EC key generation failed: ") + curve);
  return core::openssl::EvpPkeyPtr(key);
}
// An EC key whose certificate will carry the curve's parameters instead of its name.
inline core::openssl::EvpPkeyPtr ec_key_with_explicit_parameters(const char* curve) {
  core::openssl::EvpPkeyPtr key = ec_key(curve);
  if (EVP_PKEY_set_utf8_string_param(key.get(), OSSL_PKEY_PARAM_EC_ENCODING,
                                     OSSL_PKEY_EC_ENCODING_EXPLICIT) != 1) {
    throw std::runtime_error("could not switch the EC key to explicit parameters");
  }
  return key;
}

inline std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long length = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(length));
}

// A self-signed certificate for `key`, valid from `not_before` to `not_after` (Unix times),
// with a keyUsage extension when `key_usage` is not empty (openssl.cnf syntax, e.g.
// "digitalSignature,keyCertSign").
inline std::string self_signed_certificate(EVP_PKEY* key, KeyKind kind,
                                           const std::string& common_name, std::time_t not_before,
                                           std::time_t not_after,
                                           const std::string& key_usage = "") {
  core::openssl::X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  ASN1_TIME_set(X509_getm_notBefore(cert.get()), not_before);
  ASN1_TIME_set(X509_getm_notAfter(cert.get()), not_after);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), key);
  if (!key_usage.empty()) {
    X509_EXTENSION* extension =
        X509V3_EXT_conf_nid(nullptr, nullptr, NID_key_usage, key_usage.c_str());
    if (extension == nullptr) throw std::runtime_error("bad keyUsage: " + key_usage);
    X509_add_ext(cert.get(), extension, -1);
    X509_EXTENSION_free(extension);
  }
  // Ed25519 signs the message itself: it takes no separate digest.
  const EVP_MD* digest = kind == KeyKind::Ed25519 ? nullptr : EVP_sha256();
  if (X509_sign(cert.get(), key, digest) <= 0) throw std::runtime_error("X509_sign failed");
  core::openssl::BioPtr out(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(out.get(), cert.get());
  return bio_text(out.get());
}

inline std::string private_key_pem(EVP_PKEY* key) {
  core::openssl::BioPtr out(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(out.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  return bio_text(out.get());
}

// A fresh key and certificate, by default valid from an hour ago for 30 days.
inline KeyAndCertificate make_recipient(KeyKind kind, const std::string& common_name,
                                        std::time_t not_before = std::time(nullptr) - 3600,
                                        std::time_t not_after = std::time(nullptr) + 30 * 86400) {
  core::openssl::EvpPkeyPtr key = generate_key(kind);
  return {private_key_pem(key.get()),
          self_signed_certificate(key.get(), kind, common_name, not_before, not_after)};
}

// A certificate for an RSA or EC key made by the caller (both sign with SHA-256), valid from an
// hour ago for 30 days.
inline std::string certificate_for(EVP_PKEY* key, const std::string& key_usage = "") {
  return self_signed_certificate(key, KeyKind::Rsa, "test recipient", std::time(nullptr) - 3600,
                                 std::time(nullptr) + 30 * 86400, key_usage);
}

// One RSA and one EC recipient, made once per test program (RSA key generation is slow).
inline const KeyAndCertificate& rsa_recipient() {
  static const KeyAndCertificate recipient = make_recipient(KeyKind::Rsa, "RSA recipient");
  return recipient;
}
inline const KeyAndCertificate& ec_recipient() {
  static const KeyAndCertificate recipient = make_recipient(KeyKind::Ec, "EC recipient");
  return recipient;
}

// A temporary directory, removed with everything in it when the object goes away.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "pg_privacy_test_XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  // The full path of `name` inside the directory.
  std::string file(const std::string& name) const { return (path_ / name).string(); }

  // Writes `content` to `name` and returns its full path.
  std::string write(const std::string& name, const std::string& content) const {
    std::ofstream out(file(name), std::ios::binary);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    return file(name);
  }

  std::string read(const std::string& name) const {
    std::ifstream in(file(name), std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

 private:
  std::filesystem::path path_;
};

// Runs a shell command (paths are ours, no quoting needed) and returns its exit status.
inline int run(const std::string& command) {
  int status = std::system(command.c_str());
  if (status == -1 || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

}  // namespace privacy::test
