// Sealing a subject id under the installation's key, for the erasure ledger (docs/compliance.md,
// "The erasure ledger and replay after a restore").
//
// The ledger leaves the database and must say whom to erase again after a restore, without
// telling its reader who asked to be forgotten. Each subject id is sealed with AES-256-GCM under
// a key derived from the installation's receipt signing key: whoever holds the ledger file alone
// learns nothing, and a database that has the signing key (set again after a restore with
// privacy.set_signing_key) opens it. The key is derived, never the signing key itself:
//
//   sealing key = HMAC-SHA256(key = the private key's secret number, big-endian bytes
//                             (RSA: d, EC: the private scalar),
//                             data = "pg_privacy erasure ledger subject/1")
//   sealed      = base64(nonce (12 random bytes) || ciphertext || GCM tag (16 bytes))
//
// with the tenant id as additional authenticated data, so a sealed id cannot be moved to another
// tenant's entry. Two seals of one id differ (random nonce): entries about one subject cannot be
// linked. Pure C++: test/unit/sealed_subject_test.cpp.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <openssl/evp.h>

namespace privacy::core {

// The 32-byte sealing key of a private RSA or EC key, as above. Throws Error(XX000) when OpenSSL
// cannot read the key's secret number.
std::string derive_sealing_key(const EVP_PKEY* private_key);

// `subject_id` sealed under `sealing_key` (32 bytes) for `tenant_id`.
std::string seal_subject(std::string_view sealing_key, std::string_view tenant_id,
                         std::string_view subject_id);

// The subject id, or nullopt when `sealed` was not made by seal_subject with this key and tenant
// (another key, another tenant, altered text, not base64).
std::optional<std::string> unseal_subject(std::string_view sealing_key, std::string_view tenant_id,
                                          std::string_view sealed);

}  // namespace privacy::core
