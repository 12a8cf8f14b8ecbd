// Audit retention (docs/audit.md, issue 6): rows older than their chain's retention are
// deleted, oldest first, in batches. The platform chain ('') keeps privacy.audit_retention; a
// tenant's chain keeps privacy._tenant_settings(tenant).audit_retention. No chain ever keeps less
// than privacy.audit_retention_floor (docs/audit.md, "Retention").
//
// A purge only ever removes a PREFIX of one chain, so the rest still verifies: the chain's anchor
// (audit_chains.anchor_id / anchor_hash) records the first retained row and the hash it links
// to. Each purged batch is itself audited ('audit_purged', on the same chain, with counts).
//
// Runs as the launcher step "audit retention" (one batch per chain per cycle) and as
// privacy._purge_audit() (superuser only; every batch at once, as of now). Only the test-only
// extension purges "as of" another time (privacy_test.purge_audit_as_of, through purge_as_of).
#include "audit/audit.hpp"
#include "pg/guc.hpp"
#include "pg/spi.hpp"

#include <optional>
#include <string>
#include <vector>

namespace {

using privacy::pg::int8_param;
using privacy::pg::text_param;
using privacy::pg::TextRow;

constexpr long long kPurgeBatchRows = 1000;

struct DueChain {
  std::string chain;
  std::string cutoff;  // timestamptz text: rows strictly older are due
};

// Every chain with its cutoff: rows older than it are due. `now` is NULL for the transaction's
// now(). The cutoff is now - retention, but never later than now - privacy.audit_retention_floor:
// whatever retention is stored (a tenant's value set before the floor was raised, a GUC default
// below it), the rows of the last floor period stay. The admins whose actions the trail records
// can change the retention; only a superuser can change the floor. Timestamps are compared, not
// intervals, because interval comparison counts a year as 360 days.
std::vector<DueChain> chains_with_cutoffs(const std::optional<std::string>& now) {
  std::vector<DueChain> chains;
  for (const TextRow& row : privacy::pg::spi_query_rows(
           "SELECT c.chain, "
           "       least(n.as_of - CASE WHEN c.chain = '' "
           "                            THEN current_setting('privacy.audit_retention')::interval "
           "                            ELSE (SELECT s.audit_retention "
           "                                  FROM privacy._tenant_settings(c.chain) s) END, "
           "             n.as_of - $2::bigint * interval '1 minute')::text "
           "FROM (SELECT coalesce($1::timestamptz, now()) AS as_of) n, privacy.audit_chains c "
           "ORDER BY c.chain",
           {text_param(now), int8_param(privacy::pg::guc::audit_retention_floor_min)})) {
    chains.push_back(DueChain{row[0].value_or(""), row[1].value_or("")});
  }
  return chains;
}

// The oldest rows of a chain that are due: the chain's first rows up to (not including) its
// first row at or after the cutoff, at most `limit`. Returns {count, last id, last hash}, or
// nothing when there is nothing worth purging (none due, or only earlier 'audit_purged' rows,
// which would otherwise be replaced by a new one every cycle).
struct DuePrefix {
  long long count;
  long long last_id;
  std::string last_hash;
};

std::optional<DuePrefix> due_prefix(const DueChain& due, long long limit) {
  std::vector<TextRow> rows = privacy::pg::spi_query_rows(
      "WITH prefix AS ("
      "  SELECT id, action, hash FROM privacy.audit_log"
      "  WHERE chain = $1 AND at < $2::timestamptz"
      "    AND id < coalesce((SELECT min(id) FROM privacy.audit_log"
      "                       WHERE chain = $1 AND at >= $2::timestamptz), 9223372036854775807)"
      "  ORDER BY id LIMIT $3)"
      " SELECT count(*)::text, max(id)::text,"
      "        (SELECT hash FROM prefix ORDER BY id DESC LIMIT 1)"
      " FROM prefix HAVING bool_or(action <> 'audit_purged')",
      {text_param(due.chain), text_param(due.cutoff), int8_param(limit)}, false);
  if (rows.empty()) return std::nullopt;
  return DuePrefix{rows[0].optional_int8(0).value_or(0), rows[0].optional_int8(1).value_or(0),
                   rows[0][2].value_or("")};
}

// Purges one batch of one chain in the caller's transaction; returns the rows deleted.
long long purge_chain_batch(const DueChain& due, long long limit) {
  // Appends to this chain wait until we commit, so the prefix and the anchor cannot move.
  privacy::pg::spi_execute("SELECT 1 FROM privacy.audit_chains WHERE chain = $1 FOR UPDATE",
                           {text_param(due.chain)});
  std::optional<DuePrefix> prefix = due_prefix(due, limit);
  if (!prefix) return 0;
  {
    privacy::audit::WriteScope purge(privacy::audit::GuardedWrite::kPurge);
    privacy::pg::spi_execute("DELETE FROM privacy.audit_log WHERE chain = $1 AND id <= $2",
                             {text_param(due.chain), int8_param(prefix->last_id)});
  }
  privacy::audit::Entry entry;
  entry.action = "audit_purged";
  if (!due.chain.empty()) entry.tenant_id = due.chain;
  entry.target = due.chain.empty() ? "platform" : due.chain;
  entry.detail_json = *privacy::pg::spi_query_text(
      "SELECT jsonb_build_object('deleted', $1::bigint, 'through_id', $2::bigint, "
      "                          'older_than', $3::timestamptz)::text",
      {int8_param(prefix->count), int8_param(prefix->last_id), text_param(due.cutoff)});
  privacy::audit::append(entry);
  {
    // The first retained row (possibly the audit_purged row just written) links to the hash of
    // the last deleted one: that is where verification of this chain starts from now on.
    privacy::audit::WriteScope purge(privacy::audit::GuardedWrite::kPurge);
    privacy::pg::spi_execute(
        "UPDATE privacy.audit_chains SET anchor_hash = $2, "
        "       anchor_id = (SELECT min(id) FROM privacy.audit_log WHERE chain = $1) "
        "WHERE chain = $1",
        {text_param(due.chain), text_param(prefix->last_hash)});
  }
  return prefix->count;
}

// One pass over every chain. With all_batches, each chain is purged completely; otherwise one
// batch per chain (the launcher comes back next cycle). Returns the rows deleted.
long long purge_due_rows(const std::optional<std::string>& now, bool all_batches) {
  long long total = 0;
  for (const DueChain& due : chains_with_cutoffs(now)) {
    for (;;) {
      long long deleted = purge_chain_batch(due, kPurgeBatchRows);
      total += deleted;
      if (!all_batches || deleted < kPurgeBatchRows) break;
    }
  }
  return total;
}

}  // namespace

namespace privacy::audit {

void retention_step() { purge_due_rows(std::nullopt, false); }

long long purge_as_of(const std::optional<std::string>& as_of) {
  return purge_due_rows(as_of, true);
}

}  // namespace privacy::audit

// privacy._purge_audit(): the retention purge as of now, every batch at once. Superuser only (a
// maintenance window). 0.1.0 declared it with a time to purge "as of", which let a purge delete
// rows before their retention ended; a database not yet updated still calls it with that
// argument, and is refused rather than purged as of a time it did not ask for.
PRIVACY_SQL_FUNCTION(privacy_purge_audit) {
  if (!privacy::pg::pg_guard([] { return superuser(); })) {
    throw privacy::core::Error(privacy::core::sqlstate::kInsufficientPrivilege,
                               "permission denied for privacy._purge_audit",
                               "Only a superuser may purge the audit trail by hand.",
                               "The launcher purges it by itself (step \"audit retention\").");
  }
  if (PG_NARGS() > 0) {
    throw privacy::core::Error(
        privacy::core::sqlstate::kFeatureNotSupported,
        "privacy._purge_audit(timestamptz) was removed in pg_privacy 0.2.0",
        "The manual purge is as of now only.",
        "Run ALTER EXTENSION pg_privacy UPDATE, then SELECT privacy._purge_audit().");
  }
  privacy::pg::SpiConnection spi;
  return Int64GetDatum(purge_due_rows(std::nullopt, true));
}
