-- What a tenant-scoped role may read (docs/security.md, "Tenant scopes"): the settings of its own
-- tenants only (privacy.tenant_settings), the audit chains of its own tenants only
-- (privacy.verify_audit_log: neither the count nor a break of another chain), the recovery windows
-- of its own tenants only (privacy.records_of_processing); the views and functions that read the
-- settings for it (job_detail, job_overview, dashboard, sla_report, configure_tenant) keep working
-- for its tenants; citus_verify is for platform-wide roles; privacy.receipts, which auditors read
-- without reading privacy.jobs, shows its tenants' receipts only. privacy.worker_status, which needs
-- running workers: test/t/122_worker_status_scope.pl.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pg_privacy;
SELECT plan(26);

CREATE TABLE public.ts_people (id bigint PRIMARY KEY, tenant text NOT NULL, subject text NOT NULL);
CREATE INDEX ON public.ts_people (tenant, subject, id);
SELECT privacy.register_table('public.ts_people', 'subject', 'tenant') IS NULL AS registered \gset
SELECT privacy.configure_tenant('ts_acme', display_name => 'Acme', privacy_contact => 'dpo@acme.example',
                                recovery_window => '3 days') IS NOT NULL AS configured \gset
SELECT privacy.configure_tenant('ts_globex', display_name => 'Globex', privacy_contact => 'dpo@globex.example',
                                recovery_window => '5 days') IS NOT NULL AS configured \gset
CREATE ROLE ts_admin LOGIN IN ROLE privacy_admin;       -- acme's DPO
CREATE ROLE ts_auditor LOGIN IN ROLE privacy_auditor;   -- acme's auditor
SELECT privacy.grant_tenant('ts_admin', 'ts_acme', 'decide'), privacy.grant_tenant('ts_auditor', 'ts_acme', 'audit') \gset
SELECT privacy.request_erase('ts_acme', '1', 'acme ticket') AS acme_job \gset
SELECT privacy.request_erase('ts_globex', '2', 'globex ticket') AS globex_job \gset

-- ---- tenant_settings ----------------------------------------------------------------------------
SET SESSION AUTHORIZATION ts_admin;
SELECT throws_ok($$SELECT * FROM privacy.tenant_settings('ts_globex')$$, '42501',
                 'permission denied for privacy.tenant_settings of tenant "ts_globex": role "ts_admin" has no tenant grant for that tenant',
                 'a scoped admin cannot read another tenant''s settings');
SELECT throws_ok($$SELECT * FROM privacy.tenant_settings('ts_nobody')$$, '42501', NULL,
                 'nor the defaults of a tenant it has no grant for');
SELECT is((SELECT display_name || ' ' || privacy_contact || ' ' || recovery_window FROM privacy.tenant_settings('ts_acme')),
          'Acme dpo@acme.example 3 days', 'its own tenant''s settings, effective values');
SELECT throws_ok($$SELECT * FROM privacy._tenant_settings('ts_globex')$$, '42501', NULL,
                 'the unchecked function is the extension''s own: no role may call it');
-- What reads the settings for it still works for its tenant.
SELECT is(privacy.job_detail(:acme_job) #>> '{tenant_settings,display_name}', 'Acme',
          'job_detail shows its job''s tenant settings');
SELECT is((SELECT array_agg(tenant_name) FROM privacy.job_overview), ARRAY['Acme'], 'job_overview: acme''s jobs and name only');
SELECT is((SELECT total FROM privacy.dashboard), 1::bigint, 'the dashboard counts acme''s jobs only');
SELECT is((SELECT array_agg(DISTINCT tenant_id) FROM privacy.sla_report('-infinity', 'infinity')), ARRAY['ts_acme'],
          'sla_report reads acme''s settings only');
SELECT lives_ok($$SELECT privacy.configure_tenant('ts_acme', display_name => 'Acme Inc')$$,
                'configure_tenant of its own tenant works');
SELECT throws_ok($$SELECT privacy.configure_tenant('ts_globex', display_name => 'mine')$$, '42501', NULL,
                 'configure_tenant of another tenant is refused');
SELECT throws_ok($$SELECT privacy.citus_verify()$$, '42501',
                 'permission denied for privacy.citus_verify: role "ts_admin" is limited to the tenants granted to it',
                 'citus_verify (repairs every registered table) is for platform-wide admins');
-- The scope the check uses (PL/pgSQL since 0.2.0: the same answers as the SQL function had).
SELECT is((SELECT row(platform_wide, tenants)::text FROM privacy.tenant_scope('decide')), '(f,{ts_acme})',
          'tenant_scope(decide): limited to acme');
SELECT is((SELECT row(platform_wide, tenants)::text FROM privacy.tenant_scope('request')), '(f,{})',
          'tenant_scope(request): no tenant');
RESET SESSION AUTHORIZATION;
SELECT is((SELECT platform_wide FROM privacy.tenant_scope()), true, 'a superuser is platform-wide');
SELECT is((SELECT display_name FROM privacy.tenant_settings('ts_globex')), 'Globex',
          'a platform-wide role reads every tenant''s settings');

-- ---- records_of_processing ----------------------------------------------------------------------
SET SESSION AUTHORIZATION ts_auditor;
SELECT is((SELECT array_agg(k) FROM privacy.records_of_processing r, jsonb_object_keys(r.tenant_recovery_windows) k
            WHERE r.relation = 'public.ts_people'::regclass), ARRAY['ts_acme'],
          'records_of_processing: a scoped auditor sees acme''s recovery window only');
RESET SESSION AUTHORIZATION;
SELECT ok((SELECT tenant_recovery_windows ?& ARRAY['ts_acme', 'ts_globex'] FROM privacy.records_of_processing
            WHERE relation = 'public.ts_people'::regclass), 'a platform-wide reader sees every tenant''s');

-- ---- verify_audit_log ---------------------------------------------------------------------------
SELECT count(*) AS acme_rows FROM privacy.audit_log WHERE chain = 'ts_acme' \gset
SET SESSION AUTHORIZATION ts_auditor;
SELECT is((SELECT ok::text || ' ' || checked FROM privacy.verify_audit_log()), 'true ' || :acme_rows,
          'verify_audit_log: a scoped auditor checks (and counts) acme''s chain only');
RESET SESSION AUTHORIZATION;
-- A break in globex's chain: the platform sees it; acme's auditor neither sees it nor its id.
ALTER TABLE privacy.audit_log DISABLE TRIGGER ALL;
UPDATE privacy.audit_log SET action = 'forged' WHERE id = (SELECT max(id) FROM privacy.audit_log WHERE chain = 'ts_globex');
ALTER TABLE privacy.audit_log ENABLE TRIGGER ALL;
SELECT is((SELECT ok FROM privacy.verify_audit_log()), false, 'the platform-wide check finds the break in globex''s chain');
SET SESSION AUTHORIZATION ts_auditor;
SELECT is((SELECT ok::text || ' ' || coalesce(first_bad_id::text, '-') FROM privacy.verify_audit_log()), 'true -',
          'acme''s auditor learns nothing about globex''s chain');
SET SESSION AUTHORIZATION ts_admin;
SELECT is((SELECT ok FROM privacy.verify_audit_log()), true, 'nor does acme''s admin');
RESET SESSION AUTHORIZATION;
-- A break in acme's own chain is found by its auditor.
ALTER TABLE privacy.audit_log DISABLE TRIGGER ALL;
UPDATE privacy.audit_log SET action = 'forged' WHERE id = (SELECT min(id) FROM privacy.audit_log WHERE chain = 'ts_acme')
RETURNING id AS acme_bad \gset
ALTER TABLE privacy.audit_log ENABLE TRIGGER ALL;
SET SESSION AUTHORIZATION ts_auditor;
SELECT is((SELECT ok::text || ' ' || first_bad_id FROM privacy.verify_audit_log()), 'false ' || :acme_bad,
          'acme''s auditor finds a break in acme''s chain');
RESET SESSION AUTHORIZATION;
SELECT is((SELECT count(*) FROM privacy.jobs WHERE id IN (:acme_job, :globex_job)), 2::bigint, 'both jobs are there');

-- ---- receipts (privacy_auditor reads the table, not privacy.jobs) --------------------------------
INSERT INTO privacy.receipts (job_id, document, sha256)
    SELECT id, '{}', encode(sha256(id::text::bytea), 'hex') FROM privacy.jobs WHERE id IN (:acme_job, :globex_job);
CREATE ROLE ts_any_auditor LOGIN IN ROLE privacy_auditor;   -- no tenant grant: platform-wide
SET SESSION AUTHORIZATION ts_any_auditor;
SELECT is((SELECT array_agg(job_id ORDER BY job_id) FROM privacy.receipts WHERE job_id IN (:acme_job, :globex_job)),
          ARRAY[:acme_job, :globex_job]::bigint[], 'a platform-wide auditor reads every receipt');
SET SESSION AUTHORIZATION ts_auditor;
SELECT is((SELECT array_agg(job_id) FROM privacy.receipts), ARRAY[:acme_job]::bigint[],
          'a scoped auditor reads its tenant''s receipts only');
SET SESSION AUTHORIZATION ts_admin;
SELECT is((SELECT array_agg(job_id) FROM privacy.receipts), ARRAY[:acme_job]::bigint[],
          'so does a scoped admin');
RESET SESSION AUTHORIZATION;

SELECT * FROM finish();
ROLLBACK;
