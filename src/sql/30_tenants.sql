-- Per-tenant settings (docs/architecture.md, "Data model"). NULL arguments leave a setting
-- unchanged; pass reset => true to put every setting not given back to its GUC default.
CREATE FUNCTION privacy.configure_tenant(
    tenant_id            text,
    display_name         text DEFAULT NULL,
    rows_per_second      integer DEFAULT NULL,
    max_concurrent_jobs  integer DEFAULT NULL,
    recovery_window      interval DEFAULT NULL,
    export_ttl           interval DEFAULT NULL,
    deadline             interval DEFAULT NULL,
    audit_retention      interval DEFAULT NULL,
    approval_required    privacy.job_kind[] DEFAULT NULL,
    reset                boolean DEFAULT false,
    tombstone_subject    text DEFAULT NULL,
    regulation           privacy.regulation DEFAULT NULL,
    privacy_contact      text DEFAULT NULL,
    time_zone            text DEFAULT NULL,
    intake_subject_setting text DEFAULT NULL,
    cost_limit           integer DEFAULT NULL,
    cost_delay           interval DEFAULT NULL)
RETURNS privacy.tenants
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
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
$fn$;

-- Effective settings of a tenant: its own values, else the GUC defaults. One place for the
-- "NULL means the GUC default" rule; every feature of the extension reads settings through it.
-- Internal: it answers for any tenant; roles call privacy.tenant_settings, which checks the scope.
CREATE FUNCTION privacy._tenant_settings(tenant_id text)
RETURNS TABLE (tenant_id text, display_name text, rows_per_second integer, max_concurrent_jobs integer,
               recovery_window interval, export_ttl interval, deadline interval,
               audit_retention interval, approval_required privacy.job_kind[], tombstone_subject text,
               regulation privacy.regulation, privacy_contact text, time_zone text,
               cost_limit integer, cost_delay interval)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
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
$fn$;

-- privacy._tenant_settings for the roles: a tenant-scoped role gets the settings of its own
-- tenants only (docs/security.md, "Tenant scopes"); another tenant is refused with 42501.
CREATE FUNCTION privacy.tenant_settings(tenant_id text)
RETURNS TABLE (tenant_id text, display_name text, rows_per_second integer, max_concurrent_jobs integer,
               recovery_window interval, export_ttl interval, deadline interval,
               audit_retention interval, approval_required privacy.job_kind[], tombstone_subject text,
               regulation privacy.regulation, privacy_contact text, time_zone text,
               cost_limit integer, cost_delay interval)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT privacy._require_tenant_scope(tenant_settings.tenant_id, NULL, 'privacy.tenant_settings');
    SELECT s.* FROM privacy._tenant_settings(tenant_settings.tenant_id) s;
$fn$;
