// Encrypted data exports (docs/exports.md).
//
// The export job itself is an executor (src/export/export.cpp, registered for JobKind::Export);
// files are read back by privacy.download_export / privacy.export_chunks and expired by a launcher
// step (src/export/download.cpp). This header is what other features need from exports.
#pragma once

#include <string>
#include <vector>

namespace privacy::exports {

// An active export recipient whose certificate is usable now.
struct Recipient {
  std::string name;
  std::string certificate_pem;
  std::string fingerprint;  // SHA-256 of the DER certificate, hex
};

// Every active recipient, each certificate checked (parseable, RSA or EC, currently valid).
// Throws core::Error 55000 when there is none, or when one has expired (naming it, with a hint
// to replace it): an export nobody can open, or that one recipient silently cannot open, is
// refused instead. Needs an SPI connection (opens its own).
std::vector<Recipient> load_active_recipients();

// The check request_export makes before accepting a request: throws exactly what
// load_active_recipients() throws, with a hint to add a recipient (privacy.add_export_recipient).
void ensure_recipient_available();

// The launcher's step "expire exports" (export/download.cpp): deletes expired files and the
// partial ciphertext of failed or cancelled exports, audited export_expired. Needs SPI.
void expire_export_files();

}  // namespace privacy::exports
