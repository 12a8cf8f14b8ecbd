#include "core/sealed_subject.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <memory>

#include "core/cms_signer.hpp"
#include "core/encoding.hpp"
#include "core/error.hpp"
#include "core/openssl_handles.hpp"

namespace privacy::core {

namespace {

constexpr size_t kKeyBytes = 32;
constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;
constexpr const char* kLabel = "pg_privacy erasure ledger subject/1";

using CipherContext = std::unique_ptr<EVP_CIPHER_CTX, openssl::Deleter<EVP_CIPHER_CTX_free>>;
using BigNumber = std::unique_ptr<BIGNUM, openssl::Deleter<BN_clear_free>>;

[[noreturn]] void openssl_failed(const std::string& what) {
  throw Error(sqlstate::kInternalError, "could not " + what,
              "OpenSSL said: " + openssl::take_error_text());
}

const unsigned char* bytes(std::string_view text) {
  return reinterpret_cast<const unsigned char*>(text.data());
}

// Starts an AES-256-GCM context (encrypting or decrypting) with `key` and `nonce`, and feeds it
// the tenant id as additional authenticated data.
CipherContext start_gcm(bool encrypt, std::string_view key, std::string_view nonce,
                        std::string_view tenant_id) {
  if (key.size() != kKeyBytes)
    throw Error(sqlstate::kInternalError, "a sealing key must be 32 bytes");
  CipherContext context(EVP_CIPHER_CTX_new());
  int ignored = 0;
  if (!context ||
      EVP_CipherInit_ex(context.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr,
                        encrypt ? 1 : 0) != 1 ||
      EVP_CIPHER_CTX_ctrl(context.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce.size()),
                          nullptr) != 1 ||
      EVP_CipherInit_ex(context.get(), nullptr, nullptr, bytes(key), bytes(nonce), -1) != 1 ||
      EVP_CipherUpdate(context.get(), nullptr, &ignored, bytes(tenant_id),
                       static_cast<int>(tenant_id.size())) != 1) {
    openssl_failed("start AES-256-GCM");
  }
  return context;
}

}  // namespace

std::string derive_sealing_key(const EVP_PKEY* private_key) {
  const char* parameter = EVP_PKEY_get_base_id(private_key) == EVP_PKEY_RSA
                              ? OSSL_PKEY_PARAM_RSA_D
                              : OSSL_PKEY_PARAM_PRIV_KEY;
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(private_key, parameter, &raw) != 1)
    openssl_failed("read the signing key's secret number");
  BigNumber secret(raw);
  std::string secret_bytes(static_cast<size_t>(BN_num_bytes(secret.get())), '\0');
  BN_bn2bin(secret.get(), reinterpret_cast<unsigned char*>(secret_bytes.data()));
  unsigned char derived[EVP_MAX_MD_SIZE];
  unsigned int derived_length = 0;
  std::string_view label(kLabel);
  if (HMAC(EVP_sha256(), secret_bytes.data(), static_cast<int>(secret_bytes.size()), bytes(label),
           label.size(), derived, &derived_length) == nullptr) {
    openssl_failed("derive the ledger sealing key");
  }
  OPENSSL_cleanse(secret_bytes.data(), secret_bytes.size());
  return std::string(reinterpret_cast<char*>(derived), derived_length);
}

std::string seal_subject(std::string_view sealing_key, std::string_view tenant_id,
                         std::string_view subject_id) {
  std::string sealed(kNonceBytes + subject_id.size() + kTagBytes, '\0');
  auto* out = reinterpret_cast<unsigned char*>(sealed.data());
  if (RAND_bytes(out, static_cast<int>(kNonceBytes)) != 1) openssl_failed("make a random nonce");
  CipherContext context =
      start_gcm(true, sealing_key, std::string_view(sealed.data(), kNonceBytes), tenant_id);
  int written = 0;
  int final_written = 0;
  if (EVP_EncryptUpdate(context.get(), out + kNonceBytes, &written, bytes(subject_id),
                        static_cast<int>(subject_id.size())) != 1 ||
      EVP_EncryptFinal_ex(context.get(), out + kNonceBytes + written, &final_written) != 1 ||
      EVP_CIPHER_CTX_ctrl(context.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagBytes),
                          out + kNonceBytes + subject_id.size()) != 1) {
    openssl_failed("seal a subject id");
  }
  return base64_encode(sealed);
}

std::optional<std::string> unseal_subject(std::string_view sealing_key, std::string_view tenant_id,
                                          std::string_view sealed) {
  std::optional<std::string> raw = base64_decode(sealed);
  if (!raw || raw->size() < kNonceBytes + kTagBytes) return std::nullopt;
  std::string_view nonce(raw->data(), kNonceBytes);
  std::string_view ciphertext(raw->data() + kNonceBytes, raw->size() - kNonceBytes - kTagBytes);
  std::string tag(raw->data() + raw->size() - kTagBytes, kTagBytes);
  CipherContext context = start_gcm(false, sealing_key, nonce, tenant_id);
  std::string subject(ciphertext.size(), '\0');
  int written = 0;
  int final_written = 0;
  if (EVP_DecryptUpdate(context.get(), reinterpret_cast<unsigned char*>(subject.data()), &written,
                        bytes(ciphertext), static_cast<int>(ciphertext.size())) != 1 ||
      EVP_CIPHER_CTX_ctrl(context.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagBytes),
                          tag.data()) != 1 ||
      EVP_DecryptFinal_ex(context.get(), reinterpret_cast<unsigned char*>(subject.data()) + written,
                          &final_written) != 1) {
    openssl::take_error_text();  // a wrong key or altered text: the caller says so
    return std::nullopt;
  }
  return subject;
}

}  // namespace privacy::core
