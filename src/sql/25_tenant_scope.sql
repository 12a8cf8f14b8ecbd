-- Tenant scopes (docs/security.md, "Tenant scopes"). The roles privacy_requester, privacy_admin
-- and privacy_auditor act platform-wide; a role with at least one grant here is limited to the
-- tenants and capabilities it was granted, in every function and view. privacy.in_tenant_scope is
-- the one place that decides: the API functions (SQL and C++: src/access/tenant_scope.cpp) and the
-- row-level security policies of the privacy tables (98_tenant_policies.sql) all ask it.
CREATE TABLE privacy.tenant_grants (
    role        regrole NOT NULL,
    tenant_id   text NOT NULL CHECK (btrim(tenant_id) <> ''),
    capability  text NOT NULL CHECK (capability IN ('request', 'decide', 'audit')),
    granted_by  text NOT NULL DEFAULT session_user,
    granted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (role, tenant_id, capability)
);

-- The session user's scope for `capability` ('request', 'decide', 'audit'; NULL: any of them):
-- platform_wide for superusers and for roles without any scoped grant (directly or through a
-- role they are a member of); else the tenants its grants name for that capability. The one
-- place that decides. Queries over many rows call it once: in FROM, or as an uncorrelated
-- sub-SELECT in the row-level security policies (an InitPlan), never once per row.
CREATE FUNCTION privacy.tenant_scope(capability text DEFAULT NULL, OUT platform_wide boolean, OUT tenants text[])
RETURNS record
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    -- PL/pgSQL, not SQL: it keeps the plan of this query for the session, where a SQL function
    -- with a SET clause is parsed and planned again at every call (docs/performance.md).
    WITH mine AS (
        SELECT g.tenant_id, g.capability
          FROM privacy.tenant_grants g
          JOIN pg_catalog.pg_roles r ON r.oid = g.role::oid
         WHERE pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER'))
    SELECT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = session_user), false)
               OR NOT EXISTS (SELECT FROM mine),
           ARRAY(SELECT DISTINCT m.tenant_id FROM mine m
                  WHERE tenant_scope.capability IS NULL OR m.capability = tenant_scope.capability
                  ORDER BY 1)
      INTO tenant_scope.platform_wide, tenant_scope.tenants;
END
$fn$;

-- True when the session user may use `capability` (NULL: any) on `tenant_id` (NULL: something of
-- the whole platform, e.g. a table hold or the platform audit chain): one tenant at a time.
CREATE FUNCTION privacy.in_tenant_scope(tenant_id text, capability text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    scope  record;
BEGIN
    SELECT s.platform_wide, s.tenants INTO scope FROM privacy.tenant_scope(in_tenant_scope.capability) s;
    RETURN scope.platform_wide OR coalesce(in_tenant_scope.tenant_id = ANY (scope.tenants), false);
END
$fn$;

-- Raises 42501 naming `what` unless privacy.in_tenant_scope(tenant_id, capability).
CREATE FUNCTION privacy._require_tenant_scope(tenant_id text, capability text, what text)
RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF privacy.in_tenant_scope(tenant_id, capability) THEN
        RETURN;
    END IF;
    IF tenant_id IS NULL THEN
        RAISE EXCEPTION 'permission denied for %: role "%" is limited to the tenants granted to it', what, session_user
            USING ERRCODE = '42501',
                  HINT = 'This acts on the whole platform: a privacy role without tenant grants (privacy.tenant_grants) must do it.';
    END IF;
    RAISE EXCEPTION 'permission denied for % of tenant "%": role "%" has no % grant for that tenant',
            what, tenant_id, session_user, coalesce(capability, 'tenant')
        USING ERRCODE = '42501',
              HINT = format('A platform-wide privacy_admin can grant it: SELECT privacy.grant_tenant(%L, %L, %L);',
                            session_user, tenant_id, coalesce(capability, 'decide'));
END
$fn$;

-- Limits `role` to the tenants it is granted (docs/security.md, "Tenant scopes"). The role still
-- needs privacy_requester / privacy_admin / privacy_auditor for the functions themselves.
CREATE FUNCTION privacy.grant_tenant(role regrole, tenant text, capability text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    added  boolean;
BEGIN
    PERFORM privacy._check_tenant_grant(role, tenant, capability, 'privacy.grant_tenant');
    INSERT INTO privacy.tenant_grants AS g (role, tenant_id, capability)
    VALUES (grant_tenant.role, grant_tenant.tenant, grant_tenant.capability)
    ON CONFLICT ON CONSTRAINT tenant_grants_pkey DO NOTHING;
    added := FOUND;
    PERFORM privacy._audit('tenant_granted', tenant, NULL, 'role ' || role::text, 'ok',
        jsonb_build_object('role', role::text, 'capability', capability, 'new', added));
END
$fn$;

-- Takes one grant back. A role whose last grant goes acts platform-wide again (as its privacy
-- roles allow): a WARNING says so.
CREATE FUNCTION privacy.revoke_tenant(role regrole, tenant text, capability text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    PERFORM privacy._check_tenant_grant(role, tenant, capability, 'privacy.revoke_tenant');
    DELETE FROM privacy.tenant_grants g
     WHERE g.role = revoke_tenant.role AND g.tenant_id = revoke_tenant.tenant
       AND g.capability = revoke_tenant.capability;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'role "%" has no % grant for tenant "%"', role, capability, tenant
            USING ERRCODE = '42704',
                  HINT = 'See SELECT * FROM privacy.tenant_grants WHERE role = ' || quote_literal(role::text) || '::regrole;';
    END IF;
    PERFORM privacy._audit('tenant_revoked', tenant, NULL, 'role ' || role::text, 'ok',
        jsonb_build_object('role', role::text, 'capability', capability));
    IF NOT EXISTS (SELECT FROM privacy.tenant_grants g WHERE g.role = revoke_tenant.role) THEN
        RAISE WARNING 'role "%" has no tenant grant left: it now acts on every tenant, as far as its privacy roles allow', role
            USING HINT = format('If that is not intended: REVOKE privacy_admin, privacy_requester, privacy_auditor FROM %I;', role::text);
    END IF;
END
$fn$;

-- The checks grant_tenant and revoke_tenant share. Only a platform-wide admin hands out scopes.
CREATE FUNCTION privacy._check_tenant_grant(role regrole, tenant text, capability text, what text)
RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    PERFORM privacy._require_tenant_scope(NULL, NULL, what);
    IF role IS NULL THEN
        RAISE EXCEPTION '%: role must not be NULL', what
            USING ERRCODE = '22023', HINT = 'Pass the role to limit, e.g. ''acme_dpo''.';
    END IF;
    IF role::text IN ('privacy_admin', 'privacy_requester', 'privacy_auditor', 'privacy_intake') THEN
        RAISE EXCEPTION '%: role "%" is one of pg_privacy''s own roles and acts platform-wide', what, role
            USING ERRCODE = '22023',
                  HINT = 'Grant the scope to the login role (or a group role) of the people of that tenant instead.';
    END IF;
    IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid = role::oid) THEN
        RAISE EXCEPTION '%: role "%" is a superuser and cannot be limited to tenants', what, role
            USING ERRCODE = '22023', HINT = 'Use a role without SUPERUSER.';
    END IF;
    IF tenant IS NULL OR btrim(tenant) = '' THEN
        RAISE EXCEPTION '%: tenant must not be empty', what
            USING ERRCODE = '22023', HINT = 'Pass the tenant id as used in your tables.';
    END IF;
    IF capability IS NULL OR capability NOT IN ('request', 'decide', 'audit') THEN
        RAISE EXCEPTION '%: capability must be ''request'', ''decide'' or ''audit'', not %', what,
                coalesce(quote_literal(capability), 'NULL')
            USING ERRCODE = '22023',
                  HINT = '''request'' files requests, ''decide'' approves, runs and holds, ''audit'' reads the trail.';
    END IF;
END
$fn$;

-- Acting-for identity (docs/security.md, "Acting for a person"): the on_behalf_of argument of the
-- API is the human behind the database role, as the calling application says. NULL or a
-- non-blank name of at most 200 characters.
CREATE FUNCTION privacy._check_on_behalf_of(on_behalf_of text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF on_behalf_of IS NOT NULL AND (btrim(on_behalf_of) = '' OR length(on_behalf_of) > 200) THEN
        RAISE EXCEPTION 'on_behalf_of must be NULL or name the person acting (1 to 200 characters), not "%"',
                left(on_behalf_of, 40)
            USING ERRCODE = '22023',
                  HINT = 'Pass the login of the human behind the call, e.g. ''jane@acme.example'', or NULL.';
    END IF;
END
$fn$;

-- The audit detail that records it: {} or {"on_behalf_of": ...} (as src/audit/audit.cpp does).
CREATE FUNCTION privacy._on_behalf_of_detail(on_behalf_of text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT CASE WHEN on_behalf_of IS NULL THEN '{}'::jsonb
                ELSE jsonb_build_object('on_behalf_of', on_behalf_of) END
$fn$;

REVOKE ALL ON FUNCTION privacy._check_on_behalf_of(text), privacy._on_behalf_of_detail(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy.tenant_scope(text), privacy.in_tenant_scope(text, text),
                       privacy._require_tenant_scope(text, text, text),
                       privacy.grant_tenant(regrole, text, text), privacy.revoke_tenant(regrole, text, text),
                       privacy._check_tenant_grant(regrole, text, text, text) FROM PUBLIC;
-- tenant_scope is in the row-level security policies of the tables these roles read; it also
-- tells a role which tenants it is limited to.
GRANT EXECUTE ON FUNCTION privacy.tenant_scope(text) TO privacy_admin, privacy_requester, privacy_auditor;
GRANT EXECUTE ON FUNCTION privacy.grant_tenant(regrole, text, text), privacy.revoke_tenant(regrole, text, text)
    TO privacy_admin;
