-- Tenant scopes on the tables themselves (docs/security.md, "Tenant scopes"): a tenant-scoped
-- role that reads a privacy table directly sees the rows of its tenants only. Every policy asks
-- privacy.in_tenant_scope (25_tenant_scope.sql); rows of the whole platform (tenant NULL: table
-- holds, the platform audit chain) are for platform-wide roles. The extension's own code runs as
-- a superuser and is not subject to these policies; its functions check scopes themselves.
ALTER TABLE privacy.jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON privacy.jobs FOR SELECT USING (privacy.in_tenant_scope(tenant_id));
ALTER TABLE privacy.legal_holds ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON privacy.legal_holds FOR SELECT USING (privacy.in_tenant_scope(tenant_id));
ALTER TABLE privacy.audit_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON privacy.audit_log FOR SELECT USING (privacy.in_tenant_scope(tenant_id));
ALTER TABLE privacy.audit_chains ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON privacy.audit_chains FOR SELECT
    USING (privacy.in_tenant_scope(NULLIF(chain, '')));
ALTER TABLE privacy.tenants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON privacy.tenants FOR SELECT USING (privacy.in_tenant_scope(tenant_id));
ALTER TABLE privacy.tenant_grants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON privacy.tenant_grants FOR SELECT USING (privacy.in_tenant_scope(tenant_id));
ALTER TABLE privacy.erasure_ledger ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON privacy.erasure_ledger FOR SELECT USING (privacy.in_tenant_scope(tenant_id));
ALTER TABLE privacy.hold_replica ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON privacy.hold_replica FOR SELECT USING (privacy.in_tenant_scope(tenant_id));
-- Rows of a job: visible with the job (the policy on privacy.jobs applies inside the subquery).
ALTER TABLE privacy.job_errors ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON privacy.job_errors FOR SELECT
    USING (EXISTS (SELECT FROM privacy.jobs j WHERE j.id = job_errors.job_id));
ALTER TABLE privacy.export_files ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON privacy.export_files FOR SELECT
    USING (EXISTS (SELECT FROM privacy.jobs j WHERE j.id = export_files.job_id));
ALTER TABLE privacy.receipts ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON privacy.receipts FOR SELECT
    USING (EXISTS (SELECT FROM privacy.jobs j WHERE j.id = receipts.job_id));
ALTER TABLE privacy.notifications ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON privacy.notifications FOR SELECT
    USING (job_id IS NULL AND privacy.in_tenant_scope(NULL)
           OR EXISTS (SELECT FROM privacy.jobs j WHERE j.id = notifications.job_id));
-- The views read the tables as the one who queries them, so the policies above apply.
ALTER VIEW privacy.job_overview SET (security_invoker = true);
ALTER VIEW privacy.dashboard SET (security_invoker = true);
