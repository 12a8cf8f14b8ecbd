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
