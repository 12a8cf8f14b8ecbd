-- The catalog schema and its security rules (docs/architecture.md, "Data model", and
-- docs/security.md). The rule checks at the end are generic: they cover every function, table and
-- sequence in schema privacy, including those that later features add, without listing them.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pg_privacy;
SELECT plan(55);

-- A role with no grants at all: whatever it may do, PUBLIC may do.
CREATE ROLE pgtap_privacy_public_probe NOLOGIN;

SELECT has_schema('privacy');
SELECT has_type('privacy', t, 'type privacy.' || t)
FROM unnest(ARRAY['job_kind', 'job_status', 'target_type', 'hold_scope']) AS t;
SELECT enum_has_labels('privacy', 'job_status',
    ARRAY['pending', 'approved', 'processing', 'completed', 'failed', 'rejected', 'cancelled']);

SELECT has_table('privacy', t, 'table privacy.' || t)
FROM unnest(ARRAY['registered_tables', 'column_rules', 'tenants', 'jobs', 'job_errors',
                  'legal_holds', 'export_recipients', 'export_files', 'export_file_chunks',
                  'audit_log', 'audit_chains', 'notifications']) AS t;
SELECT has_view('privacy', 'dashboard', 'view privacy.dashboard');

-- Key columns other features build on.
SELECT has_column('privacy', 'jobs', c, 'privacy.jobs.' || c)
FROM unnest(ARRAY['id', 'kind', 'target_type', 'target_id', 'tenant_id', 'status',
                  'requires_approval', 'processed_items', 'cursor', 'due_at',
                  'recoverable_until']) AS c;
SELECT col_type_is('privacy', 'jobs', 'status', 'privacy.job_status', 'jobs.status is a job_status');
SELECT has_column('privacy', 'audit_log', c, 'privacy.audit_log.' || c)
FROM unnest(ARRAY['chain', 'actor', 'acting_role', 'action', 'prev_hash', 'hash']) AS c;
SELECT has_column('privacy', 'legal_holds', c, 'privacy.legal_holds.' || c)
FROM unnest(ARRAY['scope', 'scope_id', 'active', 'block_updates']) AS c;
SELECT col_is_pk('privacy', 'registered_tables', 'relation', 'registered_tables keyed by relation');
SELECT col_is_pk('privacy', 'tenants', 'tenant_id', 'tenants keyed by tenant_id');

SELECT has_index('privacy', 'jobs', 'jobs_status_idx', 'index jobs_status_idx');
SELECT has_index('privacy', 'audit_log', 'audit_log_chain_idx', 'index audit_log_chain_idx');
SELECT has_index('privacy', 'legal_holds', 'legal_holds_active_idx', 'index legal_holds_active_idx');

SELECT is(r.rolcanlogin, false, 'role ' || n || ' exists and is NOLOGIN')
FROM unnest(ARRAY['privacy_admin', 'privacy_requester', 'privacy_auditor']) AS n
LEFT JOIN pg_roles r ON r.rolname = n;

-- Generic rules over everything in schema privacy.
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
    WHERE p.pronamespace = 'privacy'::regnamespace
      AND has_function_privilege('pgtap_privacy_public_probe', p.oid, 'EXECUTE')$$,
    'no function in schema privacy is executable by PUBLIC');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p,
           aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a
    WHERE p.pronamespace = 'privacy'::regnamespace AND a.grantee = 0$$,
    'no function in schema privacy has an ACL entry for PUBLIC');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
    WHERE p.pronamespace = 'privacy'::regnamespace AND p.prosecdef
      AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)$$,
    'every SECURITY DEFINER function pins search_path = pg_catalog, pg_temp');
SELECT is_empty($$
    SELECT c.oid::regclass::text FROM pg_class c
    WHERE c.relnamespace = 'privacy'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'S', 'p')
      AND (has_table_privilege('pgtap_privacy_public_probe', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')
           OR (c.relkind = 'S' AND has_sequence_privilege('pgtap_privacy_public_probe', c.oid, 'USAGE')))$$,
    'no table, view or sequence in schema privacy is accessible to PUBLIC');
SELECT is_empty($$
    SELECT c.oid::regclass::text FROM pg_class c
    WHERE c.relnamespace = 'privacy'::regnamespace AND c.relkind IN ('r', 'p', 'S')
      AND c.oid <> ALL (SELECT unnest(extconfig) FROM pg_extension WHERE extname = 'pg_privacy')
      -- The pseudonymization secret and the receipt signing key stay out of dumps on purpose
      -- (docs/soft-delete.md, docs/compliance.md).
      AND c.oid <> ALL (ARRAY['privacy.installation_secret', 'privacy.signing_key']::regclass[])
      -- A copy of legal_holds for Citus worker nodes, written with each hold, and the Citus
      -- tables that failed verification, found again by the launcher (docs/citus.md).
      AND c.oid <> ALL (ARRAY['privacy.hold_replica', 'privacy.citus_unverified']::regclass[])$$,
    'every table and sequence in schema privacy is an extension config table (pg_dump keeps its rows)');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
    WHERE p.pronamespace = 'privacy'::regnamespace
      AND NOT EXISTS (SELECT FROM pg_depend d
                      WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')$$,
    'every function in schema privacy belongs to the extension (DROP EXTENSION removes it)');

SELECT * FROM finish();
ROLLBACK;
