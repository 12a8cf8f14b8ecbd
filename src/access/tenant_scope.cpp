#include "access/tenant_scope.hpp"

#include "pg/spi.hpp"

#include <algorithm>

namespace privacy::tenant_scope {

void require(const std::optional<std::string>& tenant, const std::optional<std::string>& capability,
             const std::string& what) {
  pg::SpiConnection spi;
  pg::spi_execute("SELECT privacy._require_tenant_scope($1, $2, $3)",
                  {pg::text_param(tenant), pg::text_param(capability), pg::text_param(what)});
}

bool Scope::covers(const std::optional<std::string>& tenant) const {
  if (platform_wide) return true;
  return tenant && std::binary_search(tenants.begin(), tenants.end(), *tenant);
}

// One row per tenant (a NULL tenant when there is none), so that no array text is parsed here.
Scope current(const std::optional<std::string>& capability) {
  pg::SpiConnection spi;
  std::vector<pg::TextRow> rows = pg::spi_query_rows(
      "SELECT s.platform_wide, u.tenant"
      "  FROM privacy.tenant_scope($1::pg_catalog.text) s"
      "  LEFT JOIN LATERAL pg_catalog.unnest(s.tenants) AS u(tenant) ON true",
      {pg::text_param(capability)}, true);
  Scope scope;
  for (const pg::TextRow& row : rows) {
    scope.platform_wide = row.boolean(0);
    if (row[1]) scope.tenants.push_back(*row[1]);
  }
  std::sort(scope.tenants.begin(), scope.tenants.end());
  return scope;
}

void check_on_behalf_of(const std::optional<std::string>& on_behalf_of) {
  if (!on_behalf_of) return;
  pg::SpiConnection spi;
  pg::spi_execute("SELECT privacy._check_on_behalf_of($1)", {pg::text_param(on_behalf_of)});
}

}  // namespace privacy::tenant_scope
