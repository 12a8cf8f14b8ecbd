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
    FOREACH t IN ARRAY ARRAY['job_errors', 'export_files', 'receipts'] LOOP
        EXECUTE format('ALTER TABLE privacy.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_scope ON privacy.%1$I FOR SELECT'
                       ' USING (EXISTS (SELECT FROM privacy.jobs j WHERE j.id = %1$I.job_id))', t);
    END LOOP;
    ALTER TABLE privacy.audit_chains ENABLE ROW LEVEL SECURITY;
    EXECUTE format('CREATE POLICY tenant_scope ON privacy.audit_chains FOR SELECT USING (%s)',
                   format(in_scope, $$NULLIF(chain, '')$$));
END
$policies$;
-- Notifications without a job are the platform's.
ALTER TABLE privacy.notifications ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON privacy.notifications FOR SELECT
    USING (CASE WHEN job_id IS NULL THEN (SELECT s.platform_wide FROM privacy.tenant_scope() s)
                ELSE EXISTS (SELECT FROM privacy.jobs j WHERE j.id = notifications.job_id) END);
-- The views read the tables as the one who queries them, so the policies above apply.
ALTER VIEW privacy.job_overview SET (security_invoker = true);
ALTER VIEW privacy.dashboard SET (security_invoker = true);
