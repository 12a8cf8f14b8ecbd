#include "holds.hpp"

#include "pg/spi.hpp"

namespace privacy::holds {

std::optional<HoldInfo> find_hold(const std::string& tenant_id,
                                  const std::optional<std::string>& subject_id, Oid relation) {
  pg::SpiConnection spi;
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "SELECT id, scope, scope_id, tenant_id, reason, created_by, created_at::text, block_updates::text"
      "  FROM privacy.legal_holds"
      " WHERE active AND (expires_at IS NULL OR expires_at > now())"
      "   AND ((scope = 'tenant' AND scope_id = $1)"
      "     OR (scope = 'subject' AND tenant_id = $1 AND ($2::text IS NULL OR scope_id = $2))"
      "     OR (scope = 'table' AND $3::oid <> 0 AND to_regclass(scope_id) = $3::oid::regclass"
      "         AND (tenant_id IS NULL OR tenant_id = $1)))"
      " ORDER BY id LIMIT 1",
      {pg::text_param(tenant_id), pg::text_param(subject_id),
       pg::int8_param(static_cast<long long>(relation))});
  if (rows.empty()) return std::nullopt;
  const pg::TextRow& row = rows[0];
  return HoldInfo{std::stoll(*row[0]), *row[1], *row[2], row[3], *row[4], *row[5], *row[6], *row[7] == "true"};
}

void raise_hold_error(const std::string& what, const HoldInfo& hold) {
  throw core::Error(core::sqlstate::kLegalHold,
                    what + " is blocked by legal hold " + std::to_string(hold.id) + " (" + hold.scope +
                        " " + hold.scope_id + ")",
                    "Hold " + std::to_string(hold.id) + " was placed by " + hold.created_by + " at " +
                        hold.created_at + ": " + hold.reason,
                    "Wait until the hold is released (privacy.release_hold) or expires; held data "
                    "must not be deleted or changed.");
}

void ensure_not_held(const std::string& what, const std::string& tenant_id,
                     const std::optional<std::string>& subject_id, Oid relation) {
  std::optional<HoldInfo> hold = find_hold(tenant_id, subject_id, relation);
  if (hold) raise_hold_error(what, *hold);
}

}  // namespace privacy::holds
