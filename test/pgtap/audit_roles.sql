-- Role boundaries of the audit trail (issue 6): privacy_auditor reads, verifies and exports the
-- trail and nothing else; no role writes to it except through the extension.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pg_privacy;
SELECT plan(20);

SET LOCAL ROLE privacy_auditor;
SELECT lives_ok('SELECT count(*) FROM privacy.audit_log', 'the auditor reads the trail');
SELECT lives_ok('SELECT count(*) FROM privacy.audit_chains', 'the auditor reads the chain heads');
SELECT lives_ok('SELECT * FROM privacy.verify_audit_log()', 'the auditor verifies the trail');
SELECT lives_ok($$SELECT count(*) FROM privacy.audit_export(now() - interval '1 day', now() + interval '1 day')$$,
                'the auditor exports the trail (CSV form)');
SELECT lives_ok($$SELECT count(*) FROM privacy.audit_export_json(now() - interval '1 day', now() + interval '1 day')$$,
                'the auditor exports the trail (JSON form)');
SELECT throws_ok($$SELECT privacy.configure_tenant('auditor_was_here')$$, '42501', NULL,
                 'the auditor cannot change settings');
SELECT throws_ok($$SELECT privacy._audit('forged', NULL, NULL, NULL)$$, '42501', NULL,
                 'the auditor cannot call the append path');
SELECT throws_ok($$SELECT privacy._purge_audit()$$, '42501', NULL, 'the auditor cannot purge');
SELECT throws_ok($$INSERT INTO privacy.audit_log (chain, at, actor, acting_role, action, outcome, prev_hash, hash)
                   VALUES ('', now(), 'x', 'x', 'forged', 'ok', 'x', 'x')$$, '42501', NULL,
                 'the auditor cannot INSERT into the trail');
SELECT throws_ok($$UPDATE privacy.audit_log SET outcome = 'x'$$, '42501', NULL, 'the auditor cannot UPDATE the trail');
SELECT throws_ok($$DELETE FROM privacy.audit_log$$, '42501', NULL, 'the auditor cannot DELETE from the trail');
SELECT throws_ok($$INSERT INTO privacy.audit_chains VALUES ('forged', 0, 'x')$$, '42501', NULL,
                 'the auditor cannot write chain heads');
RESET ROLE;

SELECT is((SELECT count(*) FROM privacy.audit_log
           WHERE action = 'audit_exported' AND detail->>'format' IN ('csv', 'json')
             AND at >= now()), 2::bigint, 'each export wrote an audit_exported row');

-- Exactly the read-only evidence functions (and the worker status of the foundation).
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
    WHERE p.pronamespace = 'privacy'::regnamespace
      AND has_function_privilege('privacy_auditor', p.oid, 'EXECUTE')
      AND p.proname NOT IN ('verify_audit_log', 'audit_export', 'audit_export_json', 'worker_status',
                            'receipt', 'sla_report', 'tenant_scope', '_job_in_tenant_scope')$$,
    'privacy_auditor may execute nothing but verify_audit_log, audit_export(_json), receipt, sla_report, worker_status '
    'and tenant_scope / _job_in_tenant_scope (its tenant scope, used by the policies of the tables it reads)');

-- No role has a write privilege on the trail; only the extension's own code writes.
SELECT is_empty($$
    SELECT r.rolname, t.tab, priv
    FROM pg_roles r, unnest(ARRAY['privacy.audit_log', 'privacy.audit_chains']) t(tab),
         unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) priv
    WHERE NOT r.rolsuper AND r.rolname <> 'pg_write_all_data' AND has_table_privilege(r.oid, t.tab, priv)$$,
    'no role but a superuser holds a write privilege on privacy.audit_log or privacy.audit_chains');
-- pg_write_all_data bypasses table privileges; the guard trigger still refuses its writes.
CREATE ROLE audit_test_writer;
GRANT pg_write_all_data, privacy_auditor TO audit_test_writer;
SET LOCAL ROLE audit_test_writer;
SELECT throws_ok($$INSERT INTO privacy.audit_log (chain, at, actor, acting_role, action, outcome, prev_hash, hash)
                   VALUES ('', now(), 'x', 'x', 'forged', 'ok', 'x', 'x')$$, '42501',
                 'INSERT on privacy.audit_log is not allowed: the audit trail is append-only',
                 'a pg_write_all_data member cannot INSERT into the trail');
SELECT throws_ok($$INSERT INTO privacy.audit_chains VALUES ('forged', 0, 'x')$$, '42501', NULL,
                 'a pg_write_all_data member cannot create a chain head');
RESET ROLE;
SELECT is_empty($$
    SELECT r.rolname, f FROM pg_roles r,
         unnest(ARRAY['privacy._audit(text, text, bigint, text, text, jsonb)',
                      'privacy._purge_audit()']) f
    WHERE NOT r.rolsuper AND has_function_privilege(r.oid, f, 'EXECUTE')$$,
    'no role may call privacy._audit or privacy._purge_audit directly');
SELECT is_empty($$SELECT p.oid::regprocedure FROM pg_proc p
                   WHERE p.pronamespace = 'privacy'::regnamespace AND p.proname = '_purge_audit' AND p.pronargs > 0$$,
                'the shipped purge is as of now only: no argument names a time to purge "as of"');
SELECT is_empty($$
    SELECT r.rolname FROM pg_roles r
    WHERE NOT r.rolsuper AND NOT pg_has_role(r.oid, 'pg_write_all_data', 'MEMBER')
      AND has_sequence_privilege(r.oid, 'privacy.audit_log_id_seq', 'USAGE,UPDATE')$$,
    'no role may draw audit ids');

SELECT * FROM finish();
ROLLBACK;
