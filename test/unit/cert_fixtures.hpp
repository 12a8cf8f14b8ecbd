// Test helpers: throw-away keys and self-signed certificates made with the OpenSSL API, a
// scratch directory, and a way to run the `openssl` command line, so that the unit tests can
// check our output against the stock tools a data protection officer would use.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
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

inline std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long length = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(length));
}

// A self-signed certificate for `key`, valid from `not_before` to `not_after` (Unix times).
inline std::string self_signed_certificate(EVP_PKEY* key, KeyKind kind,
                                           const std::string& common_name,
                                           std::time_t not_before, std::time_t not_after) {
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
