// Compliance evidence (docs/compliance.md): the receipt of every finished request, signed with the
// installation's key, and what the erasure ledger needs from it
// (src/compliance/erasure_ledger.cpp).
#pragma once

#include "core/cms_signer.hpp"

#include <optional>
#include <string>
#include <vector>

namespace privacy::evidence {

// The one hook of the job lifecycle: called where a request finishes, in the transaction that
// finishes it (an export or purge completed: jobs::change_status; an erase finalized:
// data/finalize.cpp), after that transition's audit row. For a finished request without a receipt
// it
//   - appends an erasure (erase, purge) to the erasure ledger,
//   - builds the receipt (core/receipt.hpp) and signs it when a signing key is set,
//   - stores it in privacy.receipts and audits 'receipt_issued'.
// Does nothing for a job that is not finished (an erase completed but not yet finalized) or that
// has its receipt already. Opens its own SPI connection.
void job_closed(long long job_id);

// The installation's signer now: nullopt when no key is set, or when its certificate cannot sign
// any more (expired); `why_not` then says which. Reads privacy.signing_key: run as the
// extension owner.
struct CurrentSigner {
  std::optional<core::CmsSigner> signer;
  std::optional<std::string> fingerprint;
  std::string why_not;
};
CurrentSigner current_signer();

// The key that seals subject ids in new erasure ledger entries (core/sealed_subject.hpp): derived
// from the active signing key, whatever its certificate's dates; nullopt when no key is set.
struct SealingKey {
  std::string fingerprint;  // of the signing certificate, the ledger's sealed_by
  std::string key;          // 32 bytes
};
std::optional<SealingKey> active_sealing_key();

// The sealing key of the signing key whose certificate has `fingerprint`, active or earlier;
// nullopt when this database does not hold that key (after a restore from a dump, until
// privacy.set_signing_key is called with it).
std::optional<std::string> sealing_key_of(const std::string& fingerprint);

// Every certificate that ever signed evidence here (privacy.signing_certificates), as PEM.
std::vector<std::string> known_certificates();

// privacy.installation's id: the oldest row (see 77_compliance.sql).
std::string installation_id();

// SQL for `expression` (a timestamptz) as the canonical UTC text of the audit trail,
// "2024-01-02T03:04:05.000000Z", whatever the session's settings.
std::string utc_text(const std::string& expression);

}  // namespace privacy::evidence
