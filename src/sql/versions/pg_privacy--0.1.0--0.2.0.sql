-- pg_privacy 0.1.0 -> 0.2.0 (docs/upgrading.md). Every schema change since 0.1.0, in the order
-- the install script (src/sql/) makes it; test/t/097_upgrade.pl checks that an updated 0.1.0
-- installation has the same catalog as a fresh 0.2.0 one.
\echo Use "ALTER EXTENSION pg_privacy UPDATE TO '0.2.0'" to load this file. \quit


-- Issue 18: restriction of processing is a job kind. The value is used only in text form in this
-- script (an enum value added in a transaction cannot be used before it commits).
ALTER TYPE privacy.job_kind ADD VALUE 'restrict';

-- The role an application's own role is granted to file self-service requests (05_roles.sql).
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'privacy_intake') THEN
        CREATE ROLE privacy_intake NOLOGIN;
    END IF;
END
$roles$;

-- New columns (10_tables.sql): the humans behind the database roles, restriction lifting, the
-- self-service subject setting.
ALTER TABLE privacy.tenants
    ADD COLUMN intake_subject_setting text CHECK (intake_subject_setting ~ '^[A-Za-z_][A-Za-z0-9_$]*\.[A-Za-z_][A-Za-z0-9_$.]*$');
ALTER TABLE privacy.jobs
    ADD COLUMN requested_on_behalf_of  text,
    ADD COLUMN decided_on_behalf_of    text,
    ADD COLUMN lifted_at               timestamptz,
    ADD COLUMN lifted_by               text,
    ADD COLUMN lifted_on_behalf_of     text,
    ADD CONSTRAINT jobs_lifted_only_when_restrict CHECK (lifted_at IS NULL OR kind::text = 'restrict');
-- Load-aware pacing (issue 16): per-tenant settings, the naps of each job.
ALTER TABLE privacy.tenants
    ADD COLUMN cost_limit integer CHECK (cost_limit BETWEEN 1 AND 1000000),
    ADD COLUMN cost_delay interval CHECK (cost_delay BETWEEN interval '0' AND interval '100 ms');
ALTER TABLE privacy.jobs
    ADD COLUMN cost_naps   bigint NOT NULL DEFAULT 0,
    ADD COLUMN cost_napped interval NOT NULL DEFAULT interval '0';
ALTER TABLE privacy.legal_holds
    ADD COLUMN placed_on_behalf_of     text,
    ADD COLUMN released_on_behalf_of   text;

-- Registered Citus tables whose placements could not be verified (74_citus.sql).
CREATE TABLE privacy.citus_unverified (
    relation    regclass PRIMARY KEY,
    problems    text NOT NULL,
    since       timestamptz NOT NULL DEFAULT pg_catalog.now()
);
REVOKE ALL ON privacy.citus_unverified FROM PUBLIC;
GRANT SELECT ON privacy.citus_unverified TO privacy_admin;   -- as every table in 99_grants.sql


-- Tenant scopes: src/sql/25_tenant_scope.sql of 0.2.0, whole.

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


-- Functions that gained an argument (on_behalf_of, an intake setting): a new signature replaces the old.

DROP FUNCTION privacy.approve(bigint,text);
DROP FUNCTION privacy.cancel(bigint,text);
DROP FUNCTION privacy.configure_tenant(text,text,integer,integer,interval,interval,interval,interval,privacy.job_kind[],boolean,text,privacy.regulation,text,text);
DROP FUNCTION privacy.place_hold(privacy.hold_scope,text,text,text,timestamp with time zone,boolean);
DROP FUNCTION privacy.reject(bigint,text);
DROP FUNCTION privacy.release_hold(bigint,text);
DROP FUNCTION privacy.request_erase(text,text,text,text,privacy.regulation);
DROP FUNCTION privacy.request_export(text,text,text,text,privacy.regulation);
DROP FUNCTION privacy.request_purge(text,privacy.target_type,text,text,text,privacy.regulation);
DROP FUNCTION privacy.tenant_settings(text);  -- its result changed

-- Functions new or changed in 0.2.0 (definitions as in src/sql/ of 0.2.0).

CREATE OR REPLACE FUNCTION privacy._audit_export_begin(from_ts timestamp with time zone, to_ts timestamp with time zone, format text)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL OR from_ts >= to_ts THEN
        RAISE EXCEPTION 'audit export needs from_ts < to_ts, got [%, %)', from_ts, to_ts
            USING ERRCODE = '22023',
                  HINT = 'Pass the start (inclusive) and end (exclusive) of the period, e.g. ''2024-01-01'', now().';
    END IF;
    PERFORM privacy._audit('audit_exported', NULL, NULL, 'privacy.audit_log', 'ok',
        jsonb_build_object('format', format, 'from', from_ts, 'to', to_ts,
                           'rows', (SELECT count(*) FROM privacy.audit_log l, privacy.tenant_scope() s
                                    WHERE l.at >= from_ts AND l.at < to_ts
                                      AND (s.platform_wide OR l.tenant_id = ANY (s.tenants)))));
END
$function$;

CREATE OR REPLACE FUNCTION privacy.add_export_recipient(name text, certificate text)
 RETURNS TABLE(recipient text, subject text, key_type text, not_after timestamp with time zone, fingerprint text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    info      record;
    existing  privacy.export_recipients;
    twin      text;
BEGIN
    PERFORM privacy._require_tenant_scope(NULL, NULL, 'privacy.add_export_recipient');  -- platform-wide only
    IF add_export_recipient.name IS NULL OR btrim(add_export_recipient.name) = '' THEN
        RAISE EXCEPTION 'export recipient name must not be empty'
            USING ERRCODE = '22023', HINT = 'Pass a short name for the key holder, such as ''dpo-2026''.';
    END IF;
    IF add_export_recipient.certificate IS NULL THEN
        RAISE EXCEPTION 'certificate of export recipient "%" must not be NULL', add_export_recipient.name
            USING ERRCODE = '22023',
                  HINT = 'Pass the PEM text of an X.509 certificate (-----BEGIN CERTIFICATE----- ...); see docs/exports.md.';
    END IF;
    SELECT * INTO info FROM privacy._inspect_certificate(add_export_recipient.certificate) AS i;

    SELECT * INTO existing FROM privacy.export_recipients r
     WHERE r.name = add_export_recipient.name FOR UPDATE;
    IF FOUND AND existing.active THEN
        RAISE EXCEPTION 'export recipient "%" already exists', add_export_recipient.name
            USING ERRCODE = '42710',
                  DETAIL = format('It was added by %s at %s.', existing.added_by, existing.added_at),
                  HINT = format('Choose another name, or first remove it with privacy.remove_export_recipient(%L).',
                                add_export_recipient.name);
    END IF;
    SELECT r.name INTO twin FROM privacy.export_recipients r
     WHERE r.active AND r.fingerprint = info.fingerprint;
    IF FOUND THEN
        RAISE EXCEPTION 'this certificate is already export recipient "%"', twin
            USING ERRCODE = '42710', DETAIL = format('SHA-256 fingerprint %s.', info.fingerprint),
                  HINT = 'Each active recipient needs its own certificate.';
    END IF;

    IF existing.name IS NOT NULL THEN  -- a removed recipient: reuse its name
        UPDATE privacy.export_recipients r
           SET certificate = add_export_recipient.certificate, fingerprint = info.fingerprint,
               added_by = session_user, added_at = now(), active = true,
               removed_by = NULL, removed_at = NULL
         WHERE r.name = add_export_recipient.name;
    ELSE
        INSERT INTO privacy.export_recipients AS r (name, certificate, fingerprint, added_by, added_at)
        VALUES (add_export_recipient.name, add_export_recipient.certificate, info.fingerprint, session_user, now())
        ON CONFLICT ON CONSTRAINT export_recipients_pkey DO NOTHING;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'export recipient "%" already exists', add_export_recipient.name
                USING ERRCODE = '42710', HINT = 'Another session added it just now; choose another name.';
        END IF;
    END IF;

    PERFORM privacy._audit('recipient_added', NULL, NULL, add_export_recipient.name, 'ok',
        jsonb_build_object('fingerprint', info.fingerprint, 'key_type', info.key_type,
                           'not_after', info.not_after));
    RETURN QUERY SELECT add_export_recipient.name, info.subject, info.key_type, info.not_after, info.fingerprint;
END
$function$;

CREATE OR REPLACE FUNCTION privacy.approve(job_id bigint, note text DEFAULT NULL::text, on_behalf_of text DEFAULT NULL::text)
 RETURNS void
 LANGUAGE c
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS '$libdir/pg_privacy', $function$privacy_approve$function$;

CREATE OR REPLACE FUNCTION privacy.audit_export(from_ts timestamp with time zone, to_ts timestamp with time zone)
 RETURNS SETOF privacy.audit_log
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    PERFORM privacy._audit_export_begin(from_ts, to_ts, 'csv');
    RETURN QUERY
        SELECT l.* FROM privacy.audit_log l, privacy.tenant_scope() s
        WHERE l.at >= from_ts AND l.at < to_ts AND (s.platform_wide OR l.tenant_id = ANY (s.tenants))
        ORDER BY l.chain, l.id;
END
$function$;

CREATE OR REPLACE FUNCTION privacy.audit_export_json(from_ts timestamp with time zone, to_ts timestamp with time zone)
 RETURNS SETOF jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    PERFORM privacy._audit_export_begin(from_ts, to_ts, 'json');
    RETURN QUERY
        SELECT jsonb_build_object(
                   'id', l.id, 'chain', l.chain,
                   'at', to_char(l.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                   'session_user', l.actor, 'current_user', l.acting_role,
                   'client_addr', l.client_addr, 'application_name', l.application_name,
                   'action', l.action, 'tenant_id', l.tenant_id, 'job_id', l.job_id,
                   'target', l.target, 'outcome', l.outcome,
                   'detail', l.detail, 'detail_text', l.detail::text,
                   'prev_hash', l.prev_hash, 'hash', l.hash)
        FROM privacy.audit_log l, privacy.tenant_scope() s
        WHERE l.at >= from_ts AND l.at < to_ts AND (s.platform_wide OR l.tenant_id = ANY (s.tenants))
        ORDER BY l.chain, l.id;
END
$function$;

CREATE OR REPLACE FUNCTION privacy.cancel(job_id bigint, reason text, on_behalf_of text DEFAULT NULL::text)
 RETURNS void
 LANGUAGE c
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS '$libdir/pg_privacy', $function$privacy_cancel$function$;

CREATE OR REPLACE FUNCTION privacy.configure_tenant(tenant_id text, display_name text DEFAULT NULL::text, rows_per_second integer DEFAULT NULL::integer, max_concurrent_jobs integer DEFAULT NULL::integer, recovery_window interval DEFAULT NULL::interval, export_ttl interval DEFAULT NULL::interval, deadline interval DEFAULT NULL::interval, audit_retention interval DEFAULT NULL::interval, approval_required privacy.job_kind[] DEFAULT NULL::privacy.job_kind[], reset boolean DEFAULT false, tombstone_subject text DEFAULT NULL::text, regulation privacy.regulation DEFAULT NULL::privacy.regulation, privacy_contact text DEFAULT NULL::text, time_zone text DEFAULT NULL::text, intake_subject_setting text DEFAULT NULL::text, cost_limit integer DEFAULT NULL::integer, cost_delay interval DEFAULT NULL::interval)
 RETURNS privacy.tenants
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    before   privacy.tenants;
    after    privacy.tenants;
    created  boolean;
BEGIN
    IF tenant_id IS NULL OR btrim(tenant_id) = '' THEN
        RAISE EXCEPTION 'tenant_id must not be empty'
            USING ERRCODE = '22023', HINT = 'Pass the tenant''s identifier as used in your tables.';
    END IF;
    IF rows_per_second < 0 THEN
        RAISE EXCEPTION 'rows_per_second for tenant "%" must be 0 (unlimited) or more, not %', tenant_id, rows_per_second
            USING ERRCODE = '22023';
    END IF;
    IF cost_limit NOT BETWEEN 1 AND 1000000 THEN
        RAISE EXCEPTION 'cost_limit for tenant "%" must be between 1 and 1000000, not %', tenant_id, cost_limit
            USING ERRCODE = '22023',
                  HINT = 'It is the cost a job worker accumulates before it naps for cost_delay '
                         || '(docs/performance.md, "Pacing"); to turn pacing off pass cost_delay => ''0''.';
    END IF;
    IF cost_delay < interval '0' OR cost_delay > interval '100 ms' THEN
        RAISE EXCEPTION 'cost_delay for tenant "%" must be between 0 and 100 ms, not %', tenant_id, cost_delay
            USING ERRCODE = '22023',
                  HINT = 'Pass e.g. cost_delay => ''2 ms''; ''0'' turns load-aware pacing off for the tenant.';
    END IF;
    IF max_concurrent_jobs < 1 THEN
        RAISE EXCEPTION 'max_concurrent_jobs for tenant "%" must be at least 1, not %', tenant_id, max_concurrent_jobs
            USING ERRCODE = '22023';
    END IF;
    IF recovery_window < interval '0' THEN
        RAISE EXCEPTION 'recovery_window for tenant "%" must not be negative', tenant_id
            USING ERRCODE = '22023', HINT = 'Use interval ''0'' to finalize erasures at once.';
    END IF;
    IF tombstone_subject IS NOT NULL AND btrim(tombstone_subject) = '' THEN
        RAISE EXCEPTION 'tombstone_subject for tenant "%" must not be blank', tenant_id
            USING ERRCODE = '22023',
                  HINT = 'Pass the subject id anonymized rows should point to, e.g. ''0'' for an integer key.';
    END IF;
    IF privacy_contact IS NOT NULL THEN
        PERFORM privacy._check_mail_address(privacy_contact, format('privacy_contact for tenant "%s"', tenant_id));
    END IF;
    IF time_zone IS NOT NULL AND NOT EXISTS (SELECT FROM pg_timezone_names z WHERE z.name = time_zone) THEN
        RAISE EXCEPTION 'time_zone for tenant "%" is not a time zone PostgreSQL knows: "%"', tenant_id, time_zone
            USING ERRCODE = '22023',
                  HINT = 'Pass a name from pg_timezone_names, such as ''Europe/Berlin'' or ''America/Los_Angeles''.';
    END IF;
    IF export_ttl <= interval '0' OR deadline <= interval '0' OR audit_retention <= interval '0' THEN
        RAISE EXCEPTION 'export_ttl, deadline and audit_retention for tenant "%" must be positive', tenant_id
            USING ERRCODE = '22023';
    END IF;
    -- The trail is evidence about the admins who call this function: none of them may shorten
    -- it below the floor only a superuser can set (docs/audit.md, "Retention"). Compared as
    -- timestamps: interval comparison would count '1 year' as 360 days, below a 365-day floor.
    IF now() - audit_retention > now() - current_setting('privacy.audit_retention_floor')::interval THEN
        RAISE EXCEPTION 'audit_retention for tenant "%" must be at least privacy.audit_retention_floor (%), not %',
                tenant_id, current_setting('privacy.audit_retention_floor')::interval, audit_retention
            USING ERRCODE = '22023',
                  HINT = 'Audit rows are kept at least as long as privacy.audit_retention_floor, which only '
                         || 'a superuser can lower (postgresql.conf). Pass a longer audit_retention, e.g. ''1 year''.';
    END IF;

    PERFORM privacy._require_tenant_scope(tenant_id, 'decide', 'privacy.configure_tenant');
    IF intake_subject_setting IS NOT NULL
       AND intake_subject_setting !~ '^[A-Za-z_][A-Za-z0-9_$]*\.[A-Za-z_][A-Za-z0-9_$.]*$' THEN
        RAISE EXCEPTION 'intake_subject_setting for tenant "%" is not the name of a custom setting: "%"',
                tenant_id, intake_subject_setting
            USING ERRCODE = '22023',
                  HINT = 'Pass the setting your application sets for its logged-in user, e.g. ''app.user_id''.';
    END IF;

    -- Create the row if missing, else lock it before reading it: "before" in the audit row is
    -- then exactly what this call changed, even when sessions configure one tenant concurrently
    -- (a second creator waits for the first, then updates the row the first one committed).
    INSERT INTO privacy.tenants AS t (tenant_id) VALUES (configure_tenant.tenant_id)
    ON CONFLICT ON CONSTRAINT tenants_pkey DO NOTHING;
    created := FOUND;
    IF NOT created THEN
        SELECT * INTO before FROM privacy.tenants t
        WHERE t.tenant_id = configure_tenant.tenant_id FOR UPDATE;
    END IF;

    UPDATE privacy.tenants AS t SET
        display_name        = CASE WHEN reset THEN configure_tenant.display_name        ELSE coalesce(configure_tenant.display_name, t.display_name) END,
        rows_per_second     = CASE WHEN reset THEN configure_tenant.rows_per_second     ELSE coalesce(configure_tenant.rows_per_second, t.rows_per_second) END,
        max_concurrent_jobs = CASE WHEN reset THEN configure_tenant.max_concurrent_jobs ELSE coalesce(configure_tenant.max_concurrent_jobs, t.max_concurrent_jobs) END,
        recovery_window     = CASE WHEN reset THEN configure_tenant.recovery_window     ELSE coalesce(configure_tenant.recovery_window, t.recovery_window) END,
        export_ttl          = CASE WHEN reset THEN configure_tenant.export_ttl          ELSE coalesce(configure_tenant.export_ttl, t.export_ttl) END,
        deadline            = CASE WHEN reset THEN configure_tenant.deadline            ELSE coalesce(configure_tenant.deadline, t.deadline) END,
        audit_retention     = CASE WHEN reset THEN configure_tenant.audit_retention     ELSE coalesce(configure_tenant.audit_retention, t.audit_retention) END,
        approval_required   = CASE WHEN reset THEN configure_tenant.approval_required   ELSE coalesce(configure_tenant.approval_required, t.approval_required) END,
        tombstone_subject   = CASE WHEN reset THEN configure_tenant.tombstone_subject   ELSE coalesce(configure_tenant.tombstone_subject, t.tombstone_subject) END,
        regulation          = CASE WHEN reset THEN configure_tenant.regulation          ELSE coalesce(configure_tenant.regulation, t.regulation) END,
        privacy_contact     = CASE WHEN reset THEN configure_tenant.privacy_contact     ELSE coalesce(configure_tenant.privacy_contact, t.privacy_contact) END,
        time_zone           = CASE WHEN reset THEN configure_tenant.time_zone           ELSE coalesce(configure_tenant.time_zone, t.time_zone) END,
        intake_subject_setting = CASE WHEN reset THEN configure_tenant.intake_subject_setting
                                      ELSE coalesce(configure_tenant.intake_subject_setting, t.intake_subject_setting) END,
        cost_limit          = CASE WHEN reset THEN configure_tenant.cost_limit          ELSE coalesce(configure_tenant.cost_limit, t.cost_limit) END,
        cost_delay          = CASE WHEN reset THEN configure_tenant.cost_delay          ELSE coalesce(configure_tenant.cost_delay, t.cost_delay) END,
        updated_by = session_user,
        updated_at = now()
    WHERE t.tenant_id = configure_tenant.tenant_id
    RETURNING * INTO after;

    -- A new tenant had no settings before: "before" is JSON null, not an object of nulls.
    PERFORM privacy._audit('settings_changed', after.tenant_id, NULL, after.tenant_id, 'ok',
        jsonb_build_object('before', CASE WHEN created THEN 'null'::jsonb
                                          ELSE to_jsonb(before) - '{updated_at,updated_by}'::text[] END,
                           'after', to_jsonb(after) - '{updated_at,updated_by}'::text[]));
    RETURN after;
END
$function$;

CREATE OR REPLACE FUNCTION privacy.find_jobs(search text DEFAULT NULL::text, status privacy.job_status DEFAULT NULL::privacy.job_status, kind privacy.job_kind DEFAULT NULL::privacy.job_kind)
 RETURNS SETOF privacy.job_overview
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT o.*
      FROM privacy.job_overview o, privacy.tenant_scope() s
     WHERE (find_jobs.status IS NULL OR o.status = find_jobs.status)
       AND (find_jobs.kind IS NULL OR o.kind = find_jobs.kind)
       AND (find_jobs.search IS NULL
            OR o.tenant_id ILIKE '%' || find_jobs.search || '%'
            OR o.tenant_name ILIKE '%' || find_jobs.search || '%'
            OR o.target_id ILIKE '%' || find_jobs.search || '%'
            OR o.id::text = btrim(find_jobs.search))
       AND (pg_has_role(session_user, 'privacy_admin', 'USAGE') OR o.requested_by = session_user)
       AND (s.platform_wide OR o.tenant_id = ANY (s.tenants))
     ORDER BY o.id DESC
$function$;

CREATE OR REPLACE FUNCTION privacy.job_detail(job_id bigint)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    detail jsonb;
BEGIN
    SELECT jsonb_build_object(
               'job', to_jsonb(j) - 'cursor',
               'progress', (SELECT to_jsonb(o) FROM privacy.job_overview o WHERE o.id = j.id),
               'tenant_settings', (SELECT to_jsonb(s) FROM privacy._tenant_settings(j.tenant_id) s),
               'errors', (SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY e.id), '[]')
                            FROM (SELECT id, relation::text, row_key, phase, attempt, sqlstate, message, at,
                                         resolution, resolved_by, resolved_at, note
                                    FROM privacy.job_errors WHERE job_errors.job_id = j.id
                                   ORDER BY id LIMIT 100) e),
               'error_count', (SELECT count(*) FROM privacy.job_errors e WHERE e.job_id = j.id),
               'open_items', (SELECT count(*) FROM privacy.job_errors e
                               WHERE e.job_id = j.id AND e.resolution IS NULL),
               'history', (SELECT coalesce(jsonb_agg(jsonb_build_object('at', a.at, 'action', a.action,
                                                                       'actor', a.actor, 'detail', a.detail)
                                                     ORDER BY a.id), '[]')
                             FROM privacy.audit_log a WHERE a.job_id = j.id),
               'export_file', (SELECT to_jsonb(f) FROM privacy.export_files f WHERE f.job_id = j.id))
      INTO detail
      FROM privacy.jobs j
     WHERE j.id = job_detail.job_id
       AND (pg_has_role(session_user, 'privacy_admin', 'USAGE') OR j.requested_by = session_user)
       AND privacy.in_tenant_scope(j.tenant_id);
    IF detail IS NULL THEN
        RAISE EXCEPTION 'job % does not exist', job_id
            USING ERRCODE = '22023', HINT = 'See privacy.find_jobs() for the jobs you can see.';
    END IF;
    RETURN detail;
END
$function$;

CREATE OR REPLACE FUNCTION privacy.lift_restriction(job bigint, on_behalf_of text DEFAULT NULL::text)
 RETURNS bigint
 LANGUAGE c
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS '$libdir/pg_privacy', $function$privacy_lift_restriction$function$;

CREATE OR REPLACE FUNCTION privacy.place_hold(scope privacy.hold_scope, scope_id text, tenant_id text, reason text, expires_at timestamp with time zone DEFAULT NULL::timestamp with time zone, block_updates boolean DEFAULT true, on_behalf_of text DEFAULT NULL::text)
 RETURNS bigint
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    hold_tenant  text := place_hold.tenant_id;
    held_id      text := place_hold.scope_id;
    table_oid    regclass;
    locked       regclass;
    new_id       bigint;
BEGIN
    IF scope IS NULL THEN
        RAISE EXCEPTION 'hold scope must not be NULL'
            USING ERRCODE = '22023', HINT = 'Use ''tenant'', ''subject'' or ''table''.';
    END IF;
    IF held_id IS NULL OR btrim(held_id) = '' THEN
        RAISE EXCEPTION 'scope_id of a % hold must not be empty', scope
            USING ERRCODE = '22023',
                  HINT = 'Pass the tenant id, the subject id or the registered table to hold.';
    END IF;
    IF reason IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'a legal hold needs a reason'
            USING ERRCODE = '22023', HINT = 'Say why the data must be kept, e.g. the case reference.';
    END IF;
    IF hold_tenant IS NOT NULL AND btrim(hold_tenant) = '' THEN
        RAISE EXCEPTION 'tenant_id must be NULL or a tenant id, not blank'
            USING ERRCODE = '22023';
    END IF;
    IF expires_at IS NOT NULL AND expires_at <= now() THEN
        RAISE EXCEPTION 'expires_at % of the hold on % % is not in the future', expires_at, scope, held_id
            USING ERRCODE = '22023', HINT = 'Pass a later time, or NULL for a hold until released.';
    END IF;
    IF block_updates IS NULL THEN
        RAISE EXCEPTION 'block_updates must be true or false'
            USING ERRCODE = '22023';
    END IF;

    IF scope = 'tenant' THEN
        IF hold_tenant IS NOT NULL AND hold_tenant <> held_id THEN
            RAISE EXCEPTION 'tenant hold on "%" names another tenant_id "%"', held_id, hold_tenant
                USING ERRCODE = '22023', HINT = 'Pass tenant_id NULL (or the same tenant) for a tenant hold.';
        END IF;
        hold_tenant := held_id;
    ELSIF scope = 'subject' THEN
        IF hold_tenant IS NULL THEN
            RAISE EXCEPTION 'a subject hold on "%" needs the tenant the subject belongs to', held_id
                USING ERRCODE = '22023', HINT = 'Pass tenant_id.';
        END IF;
    ELSE
        -- search_path is pinned here, so an unqualified name is looked up among the
        -- registered tables; it must be unambiguous.
        table_oid := pg_catalog.to_regclass(held_id);
        IF table_oid IS NULL AND strpos(held_id, '.') = 0 THEN
            SELECT r.relation INTO table_oid FROM privacy.registered_tables r
              JOIN pg_catalog.pg_class c ON c.oid = r.relation
             WHERE c.relname = held_id;
            IF (SELECT count(*) FROM privacy.registered_tables r JOIN pg_catalog.pg_class c ON c.oid = r.relation
                 WHERE c.relname = held_id) > 1 THEN
                RAISE EXCEPTION 'table name "%" is ambiguous: several registered tables have it', held_id
                    USING ERRCODE = '22023', HINT = 'Qualify it with its schema, e.g. ''public.orders''.';
            END IF;
        END IF;
        IF table_oid IS NULL THEN
            RAISE EXCEPTION 'table "%" does not exist', held_id
                USING ERRCODE = '42P01',
                      HINT = 'Name a registered table, schema-qualified (e.g. ''public.orders'').';
        END IF;
        IF NOT EXISTS (SELECT FROM privacy.registered_tables r WHERE r.relation = table_oid) THEN
            RAISE EXCEPTION 'table % is not registered with pg_privacy', table_oid
                USING ERRCODE = '22023', HINT = 'Register it first with privacy.register_table.';
        END IF;
        held_id := table_oid::text;  -- schema-qualified: search_path is pinned to pg_catalog
    END IF;
    -- A table hold (no tenant) is for platform-wide admins only.
    PERFORM privacy._require_tenant_scope(hold_tenant, 'decide', 'privacy.place_hold');
    PERFORM privacy._check_on_behalf_of(on_behalf_of);

    -- Wait out writers in flight on the tables the hold could cover and keep new ones out
    -- until commit (in OID order, so concurrent place_hold calls agree).
    FOR locked IN
        SELECT r.relation FROM privacy.registered_tables r
          JOIN pg_catalog.pg_class c ON c.oid = r.relation   -- skip tables dropped meanwhile
         WHERE table_oid IS NULL OR r.relation = table_oid
         ORDER BY r.relation::oid
    LOOP
        EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', locked);
    END LOOP;

    INSERT INTO privacy.legal_holds (scope, scope_id, relation, tenant_id, reason, created_by, created_at,
                                     expires_at, block_updates, placed_on_behalf_of)
    VALUES (scope, held_id, table_oid, hold_tenant, reason, session_user, now(), expires_at, block_updates,
            on_behalf_of)
    RETURNING id INTO new_id;
    -- On Citus, to every worker node in this transaction (docs/citus.md, "Legal holds").
    PERFORM privacy._replicate_hold(new_id);

    -- Enforcement commits with the hold: the triggers on every table it covers (also tables
    -- registered since the loop above: the registered tables are listed again, latest snapshot).
    PERFORM privacy._sync_hold_triggers(table_oid, true);

    PERFORM privacy._audit('hold_placed', hold_tenant, NULL, 'hold ' || new_id, 'ok',
        jsonb_build_object('hold_id', new_id, 'scope', scope, 'scope_id', held_id,
                           'reason', reason, 'expires_at', expires_at, 'block_updates', block_updates)
        || privacy._on_behalf_of_detail(on_behalf_of));
    RETURN new_id;
END
$function$;

CREATE OR REPLACE FUNCTION privacy.reject(job_id bigint, reason text, on_behalf_of text DEFAULT NULL::text)
 RETURNS void
 LANGUAGE c
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS '$libdir/pg_privacy', $function$privacy_reject$function$;

CREATE OR REPLACE FUNCTION privacy.release_hold(hold_id bigint, reason text, on_behalf_of text DEFAULT NULL::text)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    hold  privacy.legal_holds;
BEGIN
    IF reason IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'releasing legal hold % needs a reason', hold_id
            USING ERRCODE = '22023', HINT = 'Say why the data no longer has to be kept.';
    END IF;
    SELECT * INTO hold FROM privacy.legal_holds h WHERE h.id = release_hold.hold_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'legal hold % does not exist', hold_id
            USING ERRCODE = '22023', HINT = 'See privacy.legal_holds for the holds placed.';
    END IF;
    PERFORM privacy._require_tenant_scope(hold.tenant_id, 'decide', 'privacy.release_hold');
    PERFORM privacy._check_on_behalf_of(on_behalf_of);
    IF NOT hold.active THEN
        RAISE EXCEPTION 'legal hold % is no longer active', hold_id
            USING ERRCODE = '55000',
                  DETAIL = CASE WHEN hold.released_at IS NOT NULL
                                THEN format('It was released by %s at %s.', hold.released_by, hold.released_at)
                                ELSE format('It expired at %s.', hold.expires_at) END,
                  HINT = 'Nothing to release.';
    END IF;

    UPDATE privacy.legal_holds h
       SET active = false, released_by = session_user, released_at = now(),
           release_reason = release_hold.reason, released_on_behalf_of = release_hold.on_behalf_of
     WHERE h.id = release_hold.hold_id;
    PERFORM privacy._replicate_hold(hold.id);

    -- Tables no longer covered by any hold lose their triggers (those whose lock is free now;
    -- the launcher catches up with the others).
    IF hold.scope <> 'table' THEN
        PERFORM privacy._sync_hold_triggers(NULL);
    ELSIF EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid = hold.relation) THEN
        PERFORM privacy._sync_hold_triggers(hold.relation);
    END IF;

    PERFORM privacy._audit('hold_released', hold.tenant_id, NULL, 'hold ' || hold.id, 'ok',
        jsonb_build_object('hold_id', hold.id, 'scope', hold.scope, 'scope_id', hold.scope_id,
                           'reason', reason) || privacy._on_behalf_of_detail(on_behalf_of));
END
$function$;

CREATE OR REPLACE FUNCTION privacy.remove_export_recipient(name text)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    removed  privacy.export_recipients;
BEGIN
    PERFORM privacy._require_tenant_scope(NULL, NULL, 'privacy.remove_export_recipient');  -- platform-wide only
    UPDATE privacy.export_recipients r
       SET active = false, removed_by = session_user, removed_at = now()
     WHERE r.name = remove_export_recipient.name AND r.active
    RETURNING * INTO removed;
    IF NOT FOUND THEN
        SELECT * INTO removed FROM privacy.export_recipients r WHERE r.name = remove_export_recipient.name;
        IF FOUND THEN
            RAISE EXCEPTION 'export recipient "%" was already removed', remove_export_recipient.name
                USING ERRCODE = '55000',
                      DETAIL = format('It was removed by %s at %s.', removed.removed_by, removed.removed_at);
        END IF;
        RAISE EXCEPTION 'export recipient "%" does not exist', remove_export_recipient.name
            USING ERRCODE = '22023',
                  HINT = 'The active recipients are: SELECT name FROM privacy.export_recipients WHERE active;';
    END IF;
    PERFORM privacy._audit('recipient_removed', NULL, NULL, removed.name, 'ok',
        jsonb_build_object('fingerprint', removed.fingerprint));
    IF NOT EXISTS (SELECT FROM privacy.export_recipients r WHERE r.active) THEN
        RAISE NOTICE 'no active export recipient remains: export requests are refused until one is added'
            USING HINT = 'Add one with privacy.add_export_recipient(name, certificate).';
    END IF;
END
$function$;

CREATE OR REPLACE FUNCTION privacy.request_erase(tenant_id text, subject_id text, reason text, notify_email text DEFAULT NULL::text, regulation privacy.regulation DEFAULT NULL::privacy.regulation, on_behalf_of text DEFAULT NULL::text)
 RETURNS bigint
 LANGUAGE c
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS '$libdir/pg_privacy', $function$privacy_request_erase$function$;

CREATE OR REPLACE FUNCTION privacy.request_export(tenant_id text, subject_id text, reason text, notify_email text DEFAULT NULL::text, regulation privacy.regulation DEFAULT NULL::privacy.regulation, on_behalf_of text DEFAULT NULL::text)
 RETURNS bigint
 LANGUAGE c
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS '$libdir/pg_privacy', $function$privacy_request_export$function$;

CREATE OR REPLACE FUNCTION privacy.request_purge(tenant_id text, target_type privacy.target_type, target_id text, reason text, notify_email text DEFAULT NULL::text, regulation privacy.regulation DEFAULT NULL::privacy.regulation, on_behalf_of text DEFAULT NULL::text)
 RETURNS bigint
 LANGUAGE c
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS '$libdir/pg_privacy', $function$privacy_request_purge$function$;

CREATE OR REPLACE FUNCTION privacy.request_restrict(tenant_id text, subject_id text, reason text, notify_email text DEFAULT NULL::text, regulation privacy.regulation DEFAULT NULL::privacy.regulation, on_behalf_of text DEFAULT NULL::text)
 RETURNS bigint
 LANGUAGE c
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS '$libdir/pg_privacy', $function$privacy_request_restrict$function$;

CREATE OR REPLACE FUNCTION privacy.sla_report(from_ts timestamp with time zone, to_ts timestamp with time zone)
 RETURNS TABLE(tenant_id text, regulation privacy.regulation, month date, kind privacy.job_kind, requests bigint, completed bigint, rejected bigint, cancelled bigint, open bigint, answered_on_time bigint, late bigint, on_time_share numeric, median_time interval, max_time interval, extensions bigint, items_flagged bigint, items_resolved bigint)
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL OR from_ts >= to_ts THEN
        RAISE EXCEPTION 'sla_report needs from_ts < to_ts, got [%, %)', from_ts, to_ts
            USING ERRCODE = '22023',
                  HINT = 'Pass the start (inclusive) and end (exclusive) of the period, e.g. ''2024-01-01'', ''2025-01-01''.';
    END IF;
    RETURN QUERY
    WITH received AS (
        SELECT j.*,
               date_trunc('month', j.requested_at AT TIME ZONE s.time_zone)::date AS month_of_receipt,
               j.status IN ('completed', 'rejected') AS answered,
               j.status IN ('pending', 'approved', 'processing', 'failed') AS still_open,
               CASE WHEN j.status IN ('completed', 'rejected') THEN j.finished_at - j.requested_at END AS time_taken,
               items.flagged, items.resolved
          FROM privacy.jobs j
         CROSS JOIN LATERAL privacy._tenant_settings(j.tenant_id) s
         -- An item is a row (or table) a phase flagged, however many attempts it took; it is
         -- resolved when its latest attempt is (resolved by hand, or retried and not flagged
         -- again): docs/jobs.md, "Flagged items".
         CROSS JOIN LATERAL (
             SELECT count(*) AS flagged, count(*) FILTER (WHERE latest.resolved_at IS NOT NULL) AS resolved
               FROM (SELECT DISTINCT ON (e.relation, e.phase, e.row_key) e.resolved_at
                       FROM privacy.job_errors e
                      WHERE e.job_id = j.id
                      ORDER BY e.relation, e.phase, e.row_key, e.attempt DESC) latest) items
         CROSS JOIN privacy.tenant_scope() scope   -- a scoped role: its tenants (docs/security.md)
         WHERE j.requested_at >= from_ts AND j.requested_at < to_ts
           AND (scope.platform_wide OR j.tenant_id = ANY (scope.tenants))),
    counted AS (
        SELECT r.tenant_id, r.regulation, r.month_of_receipt, r.kind,
               count(*) AS requests,
               count(*) FILTER (WHERE r.status = 'completed') AS completed,
               count(*) FILTER (WHERE r.status = 'rejected') AS rejected,
               count(*) FILTER (WHERE r.status = 'cancelled') AS cancelled,
               count(*) FILTER (WHERE r.still_open) AS open,
               count(*) FILTER (WHERE r.answered AND r.finished_at <= r.due_at) AS answered_on_time,
               count(*) FILTER (WHERE (r.answered AND r.finished_at > r.due_at)
                                   OR (r.still_open AND r.due_at < now())) AS late,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY r.time_taken) AS median_time,
               max(r.time_taken) AS max_time,
               sum(r.deadline_extensions)::bigint AS extensions,
               sum(r.flagged)::bigint AS items_flagged,
               sum(r.resolved)::bigint AS items_resolved
          FROM received r
         GROUP BY r.tenant_id, r.regulation, r.month_of_receipt, r.kind)
    SELECT c.tenant_id, c.regulation, c.month_of_receipt, c.kind, c.requests, c.completed, c.rejected,
           c.cancelled, c.open, c.answered_on_time, c.late,
           round(c.answered_on_time::numeric / nullif(c.answered_on_time + c.late, 0), 4),
           c.median_time, c.max_time, c.extensions, c.items_flagged, c.items_resolved
      FROM counted c
     ORDER BY c.tenant_id, c.regulation, c.month_of_receipt, c.kind;
END
$function$;

-- The settings every feature reads, unchecked (internal), and the checked function of the roles.
CREATE FUNCTION privacy._tenant_settings(tenant_id text)
 RETURNS TABLE(tenant_id text, display_name text, rows_per_second integer, max_concurrent_jobs integer, recovery_window interval, export_ttl interval, deadline interval, audit_retention interval, approval_required privacy.job_kind[], tombstone_subject text, regulation privacy.regulation, privacy_contact text, time_zone text, cost_limit integer, cost_delay interval)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT a.tenant_id, t.display_name,
           coalesce(t.rows_per_second, current_setting('privacy.default_rows_per_second')::integer),
           t.max_concurrent_jobs,
           coalesce(t.recovery_window, current_setting('privacy.recovery_window')::interval),
           coalesce(t.export_ttl, current_setting('privacy.export_ttl')::interval),
           coalesce(t.deadline, current_setting('privacy.deadline')::interval),
           coalesce(t.audit_retention, current_setting('privacy.audit_retention')::interval),
           coalesce(t.approval_required, ARRAY['erase', 'purge']::privacy.job_kind[]),
           t.tombstone_subject,
           coalesce(t.regulation, 'other'), t.privacy_contact, coalesce(t.time_zone, 'UTC'),
           coalesce(t.cost_limit, current_setting('privacy.cost_limit')::integer),
           coalesce(t.cost_delay, current_setting('privacy.cost_delay')::interval)
    FROM (SELECT _tenant_settings.tenant_id) AS a
    LEFT JOIN privacy.tenants t ON t.tenant_id = a.tenant_id
$function$;

CREATE OR REPLACE FUNCTION privacy.tenant_settings(tenant_id text)
 RETURNS TABLE(tenant_id text, display_name text, rows_per_second integer, max_concurrent_jobs integer, recovery_window interval, export_ttl interval, deadline interval, audit_retention interval, approval_required privacy.job_kind[], tombstone_subject text, regulation privacy.regulation, privacy_contact text, time_zone text, cost_limit integer, cost_delay interval)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT privacy._require_tenant_scope(tenant_settings.tenant_id, NULL, 'privacy.tenant_settings');
    SELECT s.* FROM privacy._tenant_settings(tenant_settings.tenant_id) s;
$function$;

-- Discovery and self-service intake: src/sql/42_discovery.sql and 47_intake.sql of 0.2.0, whole.

-- Discovery (docs/soft-delete.md, "Finding the tables to register"): follows the foreign keys
-- that lead to subject_table (tables that reference it, the tables that reference those, ...)
-- and returns a script of register_table / set_column_rule calls to review and run. It
-- registers nothing. SECURITY INVOKER: it reads only the catalogs, as the caller.
--   psql -Atc "SELECT * FROM privacy.suggest_registrations('app.users', 'tenant_id')" > register.sql
CREATE FUNCTION privacy.suggest_registrations(subject_table regclass, tenant_column name DEFAULT NULL)
RETURNS SETOF text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    subject_key  name[];
    queue        oid[];
    subject_of   jsonb := '{}';   -- relation oid -> its subject column
    rel          oid;
    child        record;
    col          name;
    pos          integer;
    on_erase     text;
    texty        boolean;
    tenant_col   name;
    colrec       record;
    kind         text;
    rule         text;
BEGIN
    IF subject_table IS NULL THEN
        RAISE EXCEPTION 'subject_table must not be NULL'
            USING ERRCODE = '22023', HINT = 'Pass the table with one row per data subject, e.g. ''app.users''.';
    END IF;
    IF (SELECT c.relkind FROM pg_class c WHERE c.oid = subject_table) NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', subject_table
            USING ERRCODE = '42809', HINT = 'Pass the table that stores one row per data subject.';
    END IF;
    IF tenant_column IS NOT NULL AND NOT EXISTS (
           SELECT FROM pg_attribute a WHERE a.attrelid = subject_table AND a.attname = tenant_column
              AND a.attnum > 0 AND NOT a.attisdropped) THEN
        RAISE EXCEPTION 'column "%" of relation % does not exist', tenant_column, subject_table
            USING ERRCODE = '42703', HINT = 'Pass the tenant column of the subject table, or NULL for a single-tenant schema.';
    END IF;
    -- The subject column: the one column of the primary key besides the tenant column.
    SELECT array_agg(a.attname ORDER BY k.n) INTO subject_key
      FROM pg_constraint c
     CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, n)
      JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
     WHERE c.conrelid = subject_table AND c.contype = 'p'
       AND a.attname IS DISTINCT FROM tenant_column;
    IF coalesce(cardinality(subject_key), 0) <> 1 THEN
        RAISE EXCEPTION 'cannot tell the subject column of %: its primary key has % columns besides the tenant column',
                subject_table, coalesce(cardinality(subject_key), 0)
            USING ERRCODE = '55000',
                  HINT = 'Give the table a primary key of (tenant column, subject id), or register it by hand with privacy.register_table.';
    END IF;

    RETURN NEXT format('-- Suggested by privacy.suggest_registrations(%L, %L): review, then run.',
                       subject_table::text, tenant_column);
    -- Breadth first along the foreign keys pointing at each table reached.
    queue := ARRAY[subject_table::oid];
    subject_of := jsonb_build_object(subject_table::oid::text, subject_key[1]);
    pos := 1;
    WHILE pos <= cardinality(queue) LOOP
        rel := queue[pos];
        pos := pos + 1;
        FOR child IN
            SELECT DISTINCT ON (c.conrelid) c.conrelid, c.conkey, c.confkey
              FROM pg_constraint c
              JOIN pg_class r ON r.oid = c.conrelid
              JOIN pg_namespace n ON n.oid = r.relnamespace
             WHERE c.contype = 'f' AND c.confrelid = rel AND c.conrelid <> ALL (queue)
               AND r.relispartition IS NOT TRUE
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
               AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                                  AND d.objid = r.oid AND d.deptype = 'e')
             ORDER BY c.conrelid, c.oid
        LOOP
            -- The child's column that the key points from onto the parent's subject column, else
            -- a column of the same name (a line table that carries the buyer, say).
            SELECT a.attname INTO col
              FROM unnest(child.conkey, child.confkey) AS k(from_att, to_att)
              JOIN pg_attribute p ON p.attrelid = rel AND p.attnum = k.to_att
              JOIN pg_attribute a ON a.attrelid = child.conrelid AND a.attnum = k.from_att
             WHERE p.attname = subject_of ->> rel::text;
            IF col IS NULL THEN
                SELECT a.attname INTO col FROM pg_attribute a
                 WHERE a.attrelid = child.conrelid AND a.attname = subject_of ->> rel::text
                   AND a.attnum > 0 AND NOT a.attisdropped;
            END IF;
            queue := queue || child.conrelid;
            subject_of := subject_of || jsonb_build_object(child.conrelid::text, col);
        END LOOP;
    END LOOP;

    FOREACH rel IN ARRAY queue LOOP
        col := subject_of ->> rel::text;
        IF col IS NULL THEN
            RETURN NEXT format('-- %s references the subject table but has no column for the subject id: '
                               || 'add one (e.g. %I) to register it, or leave it to cascades.',
                               rel::regclass, subject_of ->> subject_table::oid::text);
            CONTINUE;
        END IF;
        SELECT a.attname INTO tenant_col FROM pg_attribute a
         WHERE a.attrelid = rel AND a.attname = tenant_column AND a.attnum > 0 AND NOT a.attisdropped;
        -- 'anonymize' keeps a row the subject is only part of (an order, a comment) when its
        -- subject column can hold the 64-character pseudonym; else the row is deleted.
        SELECT a.atttypid IN ('text'::regtype, 'varchar'::regtype) AND (a.atttypmod < 0 OR a.atttypmod - 4 >= 64)
          INTO texty FROM pg_attribute a WHERE a.attrelid = rel AND a.attname = col;
        on_erase := CASE WHEN rel <> subject_table::oid AND texty THEN 'anonymize' ELSE 'delete' END;
        IF NOT pg_has_role((SELECT c.relowner FROM pg_class c WHERE c.oid = rel), 'USAGE') THEN
            RETURN NEXT format('-- %s belongs to %I: a member of that role must run the next line.',
                               rel::regclass, (SELECT c.relowner::regrole::text FROM pg_class c WHERE c.oid = rel));
        END IF;
        RETURN NEXT format('SELECT privacy.register_table(%L, %L, %L, %L);', rel::regclass::text, col, tenant_col, on_erase);
        -- Columns that usually hold personal data, by name and type.
        FOR colrec IN
            SELECT t.attname, t.attnotnull, t.atttypid, t.atttypmod
              FROM pg_attribute t
             WHERE t.attrelid = rel AND t.attnum > 0 AND NOT t.attisdropped
               AND t.attname NOT IN (col, coalesce(tenant_col, ''), 'privacy_erased_by')
               AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conrelid = rel AND k.contype = 'p'
                                  AND t.attnum = ANY (k.conkey))
             ORDER BY t.attnum
        LOOP
            kind := CASE
                WHEN colrec.attname ~* 'e[-_ ]?mail' THEN 'e-mail address'
                WHEN colrec.attname ~* '(phone|mobile|msisdn|fax)' THEN 'phone number'
                WHEN colrec.attname ~* '(birth|(^|_)dob($|_))' THEN 'birth date'
                WHEN colrec.atttypid IN ('inet'::regtype, 'cidr'::regtype) OR colrec.attname ~* '((^|_)ip($|_)|ip_?addr)' THEN 'IP address'
                WHEN colrec.attname ~* '(address|street|city|zip|postal|postcode)' THEN 'address'
                WHEN colrec.attname ~* '((^|_)(first|last|full|given|family|middle|display|user|sur)_?name($|_)|^name$|surname)' THEN 'name'
            END;
            CONTINUE WHEN kind IS NULL;
            texty := colrec.atttypid IN ('text'::regtype, 'varchar'::regtype) AND (colrec.atttypmod < 0 OR colrec.atttypmod - 4 >= 64);
            rule := CASE
                WHEN kind = 'e-mail address' AND texty THEN 'hash'   -- stays unique, no longer readable
                WHEN NOT colrec.attnotnull THEN 'null'
                WHEN colrec.atttypid IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype, 'date'::regtype) THEN 'redact'
                WHEN texty THEN 'hash'
            END;
            IF rule IS NULL THEN
                RETURN NEXT format('-- %s.%I holds personal data (%s, type %s): choose its rule by hand.',
                                   rel::regclass, colrec.attname, kind, format_type(colrec.atttypid, colrec.atttypmod));
            ELSIF on_erase = 'anonymize' THEN
                RETURN NEXT format('SELECT privacy.set_column_rule(%L, %L, %L);  -- %s',
                                   rel::regclass::text, colrec.attname, rule, kind);
            ELSE
                RETURN NEXT format('-- %s.%I holds personal data (%s): deleted with the row (with on_erase ''anonymize'': '
                                   || 'SELECT privacy.set_column_rule(%L, %L, %L);)',
                                   rel::regclass, colrec.attname, kind, rel::regclass::text, colrec.attname, rule);
            END IF;
        END LOOP;
    END LOOP;
END
$fn$;

REVOKE ALL ON FUNCTION privacy.suggest_registrations(regclass, name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.suggest_registrations(regclass, name) TO privacy_admin;

-- Self-service intake (docs/jobs.md, "Self-service requests"). An application calls
-- privacy.submit_subject_request for its logged-in user, through a role that is a member of
-- privacy_intake. The tenant and the subject come from the settings the application already
-- sets for that user (privacy.intake_tenant_setting, default 'app.tenant', and the tenant's
-- intake_subject_setting, else privacy.intake_subject_setting, default 'app.user_id'), never
-- from arguments: a user can only ask about themselves. Verifying who the user is stays the
-- application's job. At most privacy.intake_max_requests per subject per 24 hours (PV002).
CREATE FUNCTION privacy.submit_subject_request(kind text, reason text DEFAULT NULL, notify_email text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    tenant_setting   text := current_setting('privacy.intake_tenant_setting');
    subject_setting  text;
    tenant           text;
    subject          text;
    person           text;
    recent           bigint;
    allowed          integer := current_setting('privacy.intake_max_requests')::integer;
    why              text := coalesce(nullif(btrim(reason), ''), 'self-service request of the data subject');
BEGIN
    IF kind IS NULL OR kind NOT IN ('export', 'erase', 'restrict') THEN
        RAISE EXCEPTION 'a self-service request is ''export'', ''erase'' or ''restrict'', not %',
                coalesce(quote_literal(kind), 'NULL')
            USING ERRCODE = '22023',
                  HINT = 'Pass the kind the user asked for, e.g. privacy.submit_subject_request(''export'').';
    END IF;
    tenant := nullif(btrim(current_setting(tenant_setting, true)), '');
    IF tenant IS NULL THEN
        RAISE EXCEPTION 'no tenant for a self-service request: setting "%" is not set in this session', tenant_setting
            USING ERRCODE = '55000',
                  HINT = format('The application sets it for its logged-in user, as for its row-level security: SET %s = ''...''. '
                                || 'privacy.intake_tenant_setting names the setting.', tenant_setting);
    END IF;
    SELECT coalesce(t.intake_subject_setting, current_setting('privacy.intake_subject_setting'))
      INTO subject_setting
      FROM (SELECT) AS one LEFT JOIN privacy.tenants t ON t.tenant_id = tenant;
    subject := nullif(btrim(current_setting(subject_setting, true)), '');
    IF subject IS NULL THEN
        RAISE EXCEPTION 'no subject for a self-service request of tenant "%": setting "%" is not set in this session',
                tenant, subject_setting
            USING ERRCODE = '55000',
                  HINT = format('The application sets it to its logged-in user''s id: SET %s = ''...''. '
                                || 'privacy.configure_tenant(%L, intake_subject_setting => ...) names another setting.',
                                subject_setting, tenant);
    END IF;
    person := 'subject:' || subject;

    -- One subject's requests are counted one at a time, so concurrent calls cannot both pass.
    PERFORM pg_advisory_xact_lock(hashtextextended('privacy.intake/' || tenant || '/' || subject, 0));
    SELECT count(*) INTO recent
      FROM privacy.jobs j
     WHERE j.tenant_id = tenant AND j.target_type = 'subject' AND j.target_id = subject
       AND j.requested_on_behalf_of = person AND j.requested_at > now() - interval '24 hours';
    IF recent >= allowed THEN
        RAISE EXCEPTION 'too many self-service requests for this subject of tenant "%": % in the last 24 hours',
                tenant, recent
            USING ERRCODE = 'PV002',
                  DETAIL = format('privacy.intake_max_requests allows %s per subject per 24 hours.', allowed),
                  HINT = 'Tell the user to try again later; their earlier requests are being answered.';
    END IF;

    RETURN CASE kind
        WHEN 'export' THEN privacy.request_export(tenant, subject, why, notify_email, NULL, person)
        WHEN 'erase' THEN privacy.request_erase(tenant, subject, why, notify_email, NULL, person)
        ELSE privacy.request_restrict(tenant, subject, why, notify_email, NULL, person)
    END;
END
$fn$;

REVOKE ALL ON FUNCTION privacy.submit_subject_request(text, text, text) FROM PUBLIC;
GRANT USAGE ON SCHEMA privacy TO privacy_intake;
GRANT EXECUTE ON FUNCTION privacy.submit_subject_request(text, text, text) TO privacy_intake;


-- Views with new columns (at their end).

CREATE OR REPLACE VIEW privacy.job_overview AS SELECT j.id,
    j.kind,
    j.target_type,
    j.target_id,
    j.tenant_id,
    t.display_name AS tenant_name,
    j.requested_by,
    j.status,
    j.requires_approval,
    j.requested_at AS created_at,
    j.updated_at,
        CASE
            WHEN (j.status = 'completed'::privacy.job_status) THEN 100.0
            WHEN (COALESCE(j.total_items, (0)::bigint) = 0) THEN 0.0
            ELSE round(((100.0 * (LEAST((j.processed_items + j.failed_items), j.total_items))::numeric) / (j.total_items)::numeric), 1)
        END AS progress_pct,
    j.processed_items,
    j.total_items,
    j.eta,
    j.failed_items,
    j.due_at,
    ((j.status = ANY (ARRAY['pending'::privacy.job_status, 'approved'::privacy.job_status, 'processing'::privacy.job_status, 'failed'::privacy.job_status])) AND (j.due_at < now())) AS overdue,
    j.finalization,
    j.recoverable_until,
    ( SELECT count(*) AS count
           FROM privacy.job_errors e
          WHERE ((e.job_id = j.id) AND (e.resolution IS NULL))) AS open_items,
    j.attempts,
    j.last_error,
    j.cost_naps,
    j.cost_napped
   FROM (privacy.jobs j
     LEFT JOIN privacy.tenants t ON ((t.tenant_id = j.tenant_id)));

-- The records of processing list the recovery windows of the tenants in the reader's scope
-- (77_compliance.sql).
CREATE OR REPLACE VIEW privacy.records_of_processing AS
SELECT r.relation,
       c.relowner::regrole AS owner,
       r.subject_column,
       r.tenant_column,
       r.key_columns,
       r.on_erase,
       (SELECT jsonb_object_agg(a.attname,
                   jsonb_build_object('type', format_type(a.atttypid, a.atttypmod),
                                      'on_erase', CASE WHEN r.on_erase = 'delete' THEN 'deleted'
                                                       WHEN a.attname = ANY (r.key_columns) THEN 'kept (key)'
                                                       ELSE coalesce(cr.rule,
                                                                     CASE WHEN a.attname = r.subject_column
                                                                          THEN 'hash' ELSE 'keep' END)
                                                  END)
                   ORDER BY a.attnum)
          FROM pg_attribute a
          LEFT JOIN privacy.column_rules cr ON cr.relation = r.relation AND cr.column_name = a.attname
         WHERE a.attrelid = r.relation AND a.attnum > 0 AND NOT a.attisdropped
           AND a.attname <> 'privacy_erased_by') AS columns,
       current_setting('privacy.recovery_window')::interval AS recovery_window,
       (SELECT coalesce(jsonb_object_agg(t.tenant_id, t.recovery_window ORDER BY t.tenant_id), '{}')
          FROM privacy.tenants t, privacy.tenant_scope() scope   -- a scoped role: its tenants
         WHERE t.recovery_window IS NOT NULL
           AND (scope.platform_wide OR t.tenant_id = ANY (scope.tenants))) AS tenant_recovery_windows,
       (SELECT count(*) FROM privacy.registered_partitions p WHERE p.registered_table = r.relation) AS partitions,
       r.registered_by,
       r.registered_at
  FROM privacy.registered_tables r
  JOIN pg_class c ON c.oid = r.relation;

-- Privileges of the functions with a new signature (99_grants.sql and each piece).

REVOKE ALL ON FUNCTION privacy.approve(bigint,text,text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.approve(bigint,text,text) TO privacy_admin;
REVOKE ALL ON FUNCTION privacy.cancel(bigint,text,text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.cancel(bigint,text,text) TO privacy_admin;
REVOKE ALL ON FUNCTION privacy.configure_tenant(text,text,integer,integer,interval,interval,interval,interval,privacy.job_kind[],boolean,text,privacy.regulation,text,text,text,integer,interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.configure_tenant(text,text,integer,integer,interval,interval,interval,interval,privacy.job_kind[],boolean,text,privacy.regulation,text,text,text,integer,interval) TO privacy_admin;
REVOKE ALL ON FUNCTION privacy.lift_restriction(bigint,text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.lift_restriction(bigint,text) TO privacy_admin;
REVOKE ALL ON FUNCTION privacy.place_hold(privacy.hold_scope,text,text,text,timestamp with time zone,boolean,text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.place_hold(privacy.hold_scope,text,text,text,timestamp with time zone,boolean,text) TO privacy_admin;
REVOKE ALL ON FUNCTION privacy.reject(bigint,text,text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.reject(bigint,text,text) TO privacy_admin;
REVOKE ALL ON FUNCTION privacy.release_hold(bigint,text,text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.release_hold(bigint,text,text) TO privacy_admin;
REVOKE ALL ON FUNCTION privacy.request_erase(text,text,text,text,privacy.regulation,text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.request_erase(text,text,text,text,privacy.regulation,text) TO privacy_requester, privacy_admin;
REVOKE ALL ON FUNCTION privacy.request_export(text,text,text,text,privacy.regulation,text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.request_export(text,text,text,text,privacy.regulation,text) TO privacy_requester, privacy_admin;
REVOKE ALL ON FUNCTION privacy.request_purge(text,privacy.target_type,text,text,text,privacy.regulation,text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.request_purge(text,privacy.target_type,text,text,text,privacy.regulation,text) TO privacy_requester, privacy_admin;
REVOKE ALL ON FUNCTION privacy.request_restrict(text,text,text,text,privacy.regulation,text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.request_restrict(text,text,text,text,privacy.regulation,text) TO privacy_requester, privacy_admin;
REVOKE ALL ON FUNCTION privacy.tenant_settings(text), privacy._tenant_settings(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.tenant_settings(text) TO privacy_admin;

-- Row-level security by tenant scope on the privacy tables: src/sql/98_tenant_policies.sql of 0.2.0, whole.

-- Tenant scopes on the tables themselves (docs/security.md, "Tenant scopes"): a tenant-scoped
-- role that reads a privacy table directly sees the rows of its tenants only. Every policy asks
-- privacy.tenant_scope() (25_tenant_scope.sql), once per query (an uncorrelated sub-SELECT is an
-- InitPlan); rows of the whole platform (tenant NULL: table holds, the platform audit chain) are
-- for platform-wide roles. The extension's own code runs as a superuser and is not subject to
-- these policies; its functions check scopes themselves.
DO $policies$
DECLARE
    t         text;
    in_scope  constant text := '((SELECT s.platform_wide FROM privacy.tenant_scope() s)'
                               ' OR %s = ANY ((SELECT s.tenants FROM privacy.tenant_scope() s)::text[]))';
BEGIN
    -- Tables with a tenant_id column.
    -- (Not privacy.hold_replica: a Citus reference table takes no policy with a sub-SELECT; no
    -- role reads it, 99_grants.sql.)
    FOREACH t IN ARRAY ARRAY['jobs', 'legal_holds', 'audit_log', 'tenants', 'tenant_grants', 'erasure_ledger'] LOOP
        EXECUTE format('ALTER TABLE privacy.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_scope ON privacy.%I FOR SELECT USING (%s)', t, format(in_scope, 'tenant_id'));
    END LOOP;
    -- Rows of a job: visible with the job (the policy on privacy.jobs applies inside the subquery).
    -- Their readers are admins, who read privacy.jobs; receipts, below, have other readers.
    FOREACH t IN ARRAY ARRAY['job_errors', 'export_files'] LOOP
        EXECUTE format('ALTER TABLE privacy.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_scope ON privacy.%1$I FOR SELECT'
                       ' USING (EXISTS (SELECT FROM privacy.jobs j WHERE j.id = %1$I.job_id))', t);
    END LOOP;
    ALTER TABLE privacy.audit_chains ENABLE ROW LEVEL SECURITY;
    EXECUTE format('CREATE POLICY tenant_scope ON privacy.audit_chains FOR SELECT USING (%s)',
                   format(in_scope, $$NULLIF(chain, '')$$));
END
$policies$;
-- Receipts: visible with their job too, but their readers include privacy_auditor, which may not
-- read privacy.jobs (its rows name the subjects), so the policy asks a function that reads the
-- job's tenant as the extension and answers only whether it is in the session user's scope.
-- A platform-wide reader is answered once per query (the InitPlan), before any row.
CREATE FUNCTION privacy._job_in_tenant_scope(job_id bigint) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    RETURN coalesce((SELECT privacy.in_tenant_scope(j.tenant_id) FROM privacy.jobs j
                      WHERE j.id = _job_in_tenant_scope.job_id), false);
END
$fn$;
REVOKE ALL ON FUNCTION privacy._job_in_tenant_scope(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy._job_in_tenant_scope(bigint) TO privacy_admin, privacy_auditor;
ALTER TABLE privacy.receipts ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON privacy.receipts FOR SELECT
    USING ((SELECT s.platform_wide FROM privacy.tenant_scope() s) OR privacy._job_in_tenant_scope(job_id));
-- Notifications without a job are the platform's.
ALTER TABLE privacy.notifications ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON privacy.notifications FOR SELECT
    USING (CASE WHEN job_id IS NULL THEN (SELECT s.platform_wide FROM privacy.tenant_scope() s)
                ELSE EXISTS (SELECT FROM privacy.jobs j WHERE j.id = notifications.job_id) END);
-- The views read the tables as the one who queries them, so the policies above apply.
ALTER VIEW privacy.job_overview SET (security_invoker = true);
ALTER VIEW privacy.dashboard SET (security_invoker = true);


GRANT SELECT ON privacy.tenant_grants TO privacy_admin;   -- as every table in 99_grants.sql
SELECT pg_catalog.pg_extension_config_dump('privacy.tenant_grants', '');
-- Admins read privacy.legal_holds; the Citus copy of the holds is no one's to read (99_grants.sql).
REVOKE SELECT ON privacy.hold_replica FROM privacy_admin;

-- The boundary probe is a test entry point: it moved to the test-only extension privacy_test.
DROP FUNCTION privacy._boundary_selftest(text);
-- So is the hook that sent a job's event: privacy_test.notify_job_event.
DROP FUNCTION privacy._notify_job_event(bigint, text, text);
-- So is the audit purge "as of" another time: privacy_test.purge_audit_as_of. The superuser's
-- manual purge is as of now only (60_audit.sql).
DROP FUNCTION privacy._purge_audit(timestamptz);
CREATE FUNCTION privacy._purge_audit() RETURNS bigint
AS 'MODULE_PATHNAME', 'privacy_purge_audit' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION privacy._purge_audit() FROM PUBLIC;

-- Job batches cache the description of their table; every write of a registration invalidates
-- it (40_registry.sql, src/data/description_cache.cpp; issue 16).
CREATE FUNCTION privacy._registration_changed() RETURNS trigger
AS 'MODULE_PATHNAME', 'privacy_registration_changed' LANGUAGE C;
REVOKE ALL ON FUNCTION privacy._registration_changed() FROM PUBLIC;
CREATE TRIGGER registered_tables_changed
    AFTER INSERT OR UPDATE OR DELETE ON privacy.registered_tables
    FOR EACH ROW EXECUTE FUNCTION privacy._registration_changed();
CREATE TRIGGER registered_tables_truncated
    AFTER TRUNCATE ON privacy.registered_tables
    FOR EACH STATEMENT EXECUTE FUNCTION privacy._registration_changed();
CREATE TRIGGER column_rules_changed
    AFTER INSERT OR UPDATE OR DELETE ON privacy.column_rules
    FOR EACH ROW EXECUTE FUNCTION privacy._registration_changed();
CREATE TRIGGER column_rules_truncated
    AFTER TRUNCATE ON privacy.column_rules
    FOR EACH STATEMENT EXECUTE FUNCTION privacy._registration_changed();
ALTER TABLE privacy.registered_tables ENABLE ALWAYS TRIGGER registered_tables_changed;
ALTER TABLE privacy.registered_tables ENABLE ALWAYS TRIGGER registered_tables_truncated;
ALTER TABLE privacy.column_rules ENABLE ALWAYS TRIGGER column_rules_changed;
ALTER TABLE privacy.column_rules ENABLE ALWAYS TRIGGER column_rules_truncated;
