#include "core/hash_chain.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/encoding.hpp"
#include "core/error.hpp"

namespace privacy::core {

namespace {

[[noreturn]] void throw_openssl_failure(const char* what) {
  throw Error(sqlstate::kInternalError, std::string(what) + " failed in OpenSSL");
}

void append_field(std::string& out, std::string_view bytes) {
  out += std::to_string(bytes.size());
  out += ':';
  out += bytes;
  out += ';';
}

void append_field(std::string& out, const std::optional<std::string>& value) {
  if (value) {
    append_field(out, std::string_view(*value));
  } else {
    out += "~;";
  }
}

void append_field(std::string& out, const std::optional<long long>& value) {
  if (value) {
    append_field(out, std::string_view(std::to_string(*value)));
  } else {
    out += "~;";
  }
}

// SHA-256 as fetched once per process. EVP_sha256() would make OpenSSL 3 look the algorithm up
// again in every EVP_Digest call, a large part of hashing one short audit row (docs/performance.md,
// B9).
const EVP_MD* sha256_algorithm() {
  static const EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return fetched != nullptr ? fetched : EVP_sha256();
}

}  // namespace

std::string sha256_hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &length, sha256_algorithm(), nullptr) != 1)
    throw_openssl_failure("SHA-256");
  return hex_encode(digest, length);
}

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  // HMAC() takes an int key length; a key of 2 GB is not a key.
  if (key.size() > 0x7fffffff) throw Error(sqlstate::kInvalidParameter, "HMAC key is too long");
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac,
           &length) == nullptr)
    throw_openssl_failure("HMAC-SHA-256");
  return hex_encode(mac, length);
}

std::string canonical_encoding(const AuditRecord& record) {
  std::string out;
  append_field(out, std::optional<long long>(record.id));
  append_field(out, std::string_view(record.chain));
  append_field(out, std::string_view(record.at));
  append_field(out, record.session_user);
  append_field(out, record.current_user);
  append_field(out, record.client_addr);
  append_field(out, record.application_name);
  append_field(out, std::string_view(record.action));
  append_field(out, record.tenant_id);
  append_field(out, record.job_id);
  append_field(out, record.target);
  append_field(out, record.outcome);
  append_field(out, record.detail);
  return out;
}

std::string canonical_fields(const std::vector<std::optional<std::string>>& fields) {
  std::string out;
  for (const std::optional<std::string>& field : fields) append_field(out, field);
  return out;
}

bool is_hash_hex(std::string_view text) {
  if (text.size() != 64) return false;
  for (char c : text)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string chain_hash(std::string_view previous_hash_hex, const AuditRecord& record) {
  if (!is_hash_hex(previous_hash_hex)) {
    throw Error(sqlstate::kInvalidParameter,
                "previous audit hash is not 64 lowercase hex characters",
                "got " + std::to_string(previous_hash_hex.size()) + " characters",
                "the first row of a chain uses 64 '0' characters");
  }
  std::string input(previous_hash_hex);
  input += canonical_encoding(record);
  return sha256_hex(input);
}

}  // namespace privacy::core
