// The per-installation secret and the 'hash' anonymization rule.
//
// privacy._random_bytes(n) fills privacy.installation_secret at CREATE EXTENSION time from
// OpenSSL's CSPRNG. privacy._pseudonym(value) is HMAC-SHA-256(secret, value) in hex: the same
// value gives the same pseudonym within one installation (so anonymized rows still join), and
// without the secret nobody can test a guessed value against a pseudonym. The secret table is
// readable by no role; it is read as the extension owner and cached for the backend.
// Finalization hashes in C++ (data/pseudonym.hpp); privacy._pseudonym (superuser only) shows the
// pseudonym of a value, to find the anonymized rows of a known value.
#include "data/pseudonym.hpp"

#include "citus/node.hpp"
#include "core/encoding.hpp"
#include "core/hash_chain.hpp"
#include "pg/boundary.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "catalog/namespace.h"
#include "utils/lsyscache.h"
}

#include <openssl/rand.h>

#include <string>

namespace privacy::pseudonym {

namespace {

using core::Error;

// The secret of the installation this backend last read it from. Keyed by the OID of the
// secret table, so DROP/CREATE EXTENSION in the same session reads the new one.
struct CachedSecret {
  Oid table = InvalidOid;
  std::string bytes;
};
CachedSecret cached_secret;

Oid secret_table_oid() {
  return pg::pg_guard([] {
    Oid schema = get_namespace_oid("privacy", true);
    return OidIsValid(schema) ? get_relname_relid("installation_secret", schema) : InvalidOid;
  });
}

}  // namespace

const std::string& installation_secret() {
  Oid table = secret_table_oid();
  if (!OidIsValid(table)) {
    throw Error(
        "55000", "the pg_privacy installation secret is missing", "",
        "Reinstall the extension (DROP EXTENSION pg_privacy; CREATE EXTENSION pg_privacy).");
  }
  if (cached_secret.table == table && !cached_secret.bytes.empty()) return cached_secret.bytes;
  citus_node::refuse_on_worker_node("privacy._pseudonym");  // the coordinator's secret counts
  pg::SpiConnection spi;
  // base64 without the line breaks encode() puts every 76 characters, decoded by
  // core::base64_decode.
  std::optional<std::string> base64 = pg::spi_query_text(
      "SELECT pg_catalog.translate(pg_catalog.encode(secret, 'base64'), E'\\n', '')"
      "  FROM privacy.installation_secret ORDER BY created_at LIMIT 1");
  if (!base64 || base64->empty()) {
    throw Error("55000", "the pg_privacy installation secret is empty", "",
                "Reinstall the extension to generate one.");
  }
  std::optional<std::string> bytes = core::base64_decode(*base64);
  if (!bytes) {
    throw Error(core::sqlstate::kInternalError,
                "pg_privacy: the installation secret did not decode from base64", "",
                "Please report this as a bug of pg_privacy.");
  }
  cached_secret = CachedSecret{table, *bytes};
  return cached_secret.bytes;
}

void remove_secret_copy_on_worker_node() {
  if (!citus_node::this_worker_node()) return;
  pg::spi_execute("DELETE FROM privacy.installation_secret");
}

std::string of(const std::string& secret, const std::string& value) {
  return core::hmac_sha256_hex(secret, value);
}

}  // namespace privacy::pseudonym

namespace {
namespace pg = privacy::pg;
using privacy::core::Error;
}  // namespace

// privacy._random_bytes(n integer) RETURNS bytea: n bytes from OpenSSL RAND_bytes.
PRIVACY_SQL_FUNCTION(privacy_random_bytes) {
  int32 count = PG_GETARG_INT32(0);
  if (count < 16 || count > 1024) {
    throw Error(privacy::core::sqlstate::kInvalidParameter,
                "random byte count must be between 16 and 1024");
  }
  std::string buffer(static_cast<size_t>(count), '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(buffer.data()), count) != 1) {
    throw Error(privacy::core::sqlstate::kInternalError,
                "OpenSSL RAND_bytes failed to produce a secret");
  }
  bytea* result = pg::pg_guard([&] {
    bytea* bytes = static_cast<bytea*>(palloc(VARHDRSZ + count));
    SET_VARSIZE(bytes, VARHDRSZ + count);
    memcpy(VARDATA(bytes), buffer.data(), count);
    return bytes;
  });
  PG_RETURN_BYTEA_P(result);
}

// privacy._pseudonym(value text) RETURNS text: HMAC-SHA-256 under the installation secret.
PRIVACY_SQL_FUNCTION(privacy_pseudonym) {
  std::string value = pg::pg_guard([&] { return text_to_cstring(PG_GETARG_TEXT_PP(0)); });
  std::string pseudonym = privacy::pseudonym::of(privacy::pseudonym::installation_secret(), value);
  PG_RETURN_TEXT_P(pg::pg_guard([&] { return cstring_to_text(pseudonym.c_str()); }));
}
