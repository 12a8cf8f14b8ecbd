// The erasure ledger in the database (docs/compliance.md, "Replay after a backup restore"):
// appending a finished erasure, exporting the ledger (privacy.erasure_ledger_export) and
// replaying one after a restore (privacy.replay_erasures). The format is core/erasure_ledger.hpp.
#pragma once

#include <optional>
#include <string>

namespace privacy::erasure_ledger {

struct Appended {
  long long seq;
  std::string hash;
};

// Appends job `job_id` to privacy.erasure_ledger when it is an erasure (an erase or a purge),
// chained to the last entry, in the caller's transaction; nullopt for an export. Appends and
// replays are serialized by a transaction-level advisory lock, so the chain stays linear.
std::optional<Appended> append_if_erasure(long long job_id);

}  // namespace privacy::erasure_ledger
