// Tenant scopes and acting-for identity (docs/security.md, "Tenant scopes" and "Acting for a
// person"). The decision lives in SQL, in privacy.in_tenant_scope, which the row-level security
// policies of the privacy tables use too; the C++ API asks it through require().
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace privacy::tenant_scope {

// Throws 42501 naming `what` unless the session user may use `capability` ("request",
// "decide", "audit"; nullopt: any) on `tenant` (nullopt: the whole platform).
void require(const std::optional<std::string>& tenant, const std::optional<std::string>& capability,
             const std::string& what);

// The session user's scope as privacy.tenant_scope(capability) decides it, for C functions that
// list rows of many tenants (privacy.worker_status) and keep only the caller's.
struct Scope {
  bool platform_wide = false;
  std::vector<std::string> tenants;  // sorted, when not platform_wide

  // True for a tenant of the scope; a row of the whole platform (nullopt) only when platform-wide.
  bool covers(const std::optional<std::string>& tenant) const;
};

// Reads the scope once (one query); the caller filters its rows with Scope::covers.
Scope current(const std::optional<std::string>& capability);

// Checks an on_behalf_of argument (NULL, or 1 to 200 characters); throws 22023.
void check_on_behalf_of(const std::optional<std::string>& on_behalf_of);

}  // namespace privacy::tenant_scope
