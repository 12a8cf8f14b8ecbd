#include "access/tenant_scope.hpp"

#include "pg/spi.hpp"

namespace privacy::tenant_scope {

void require(const std::optional<std::string>& tenant, const std::optional<std::string>& capability,
             const std::string& what) {
  pg::SpiConnection spi;
  pg::spi_execute("SELECT privacy._require_tenant_scope($1, $2, $3)",
                  {pg::text_param(tenant), pg::text_param(capability), pg::text_param(what)});
}

void check_on_behalf_of(const std::optional<std::string>& on_behalf_of) {
  if (!on_behalf_of) return;
  pg::SpiConnection spi;
  pg::spi_execute("SELECT privacy._check_on_behalf_of($1)", {pg::text_param(on_behalf_of)});
}

}  // namespace privacy::tenant_scope
