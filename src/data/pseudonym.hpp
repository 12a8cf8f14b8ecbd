// The 'hash' anonymization rule: HMAC-SHA-256 under the installation secret (docs/soft-delete.md).
//
// Finalization computes pseudonyms here, in C++, and passes them to its statements as
// parameters: those statements run as the table's owner (docs/security.md), who must neither
// read the secret nor get a function that hashes any value with it.
#pragma once

#include <string>

namespace privacy::pseudonym {

// Reads the installation secret (cached per backend). Call it as the extension owner, before
// entering a table owner's scope: privacy.installation_secret is readable by no other role.
const std::string& installation_secret();

// On a Citus worker node: deletes the secret the install script generated there. Pseudonyms
// are computed on the coordinator only (docs/citus.md), and a copy nobody uses is one more way
// to leak it. Needs SPI.
void remove_secret_copy_on_worker_node();

// The pseudonym of `value` (64 hex characters) under `secret`.
std::string of(const std::string& secret, const std::string& value);

}  // namespace privacy::pseudonym
