-- Export API surface (docs/exports.md): signatures, SECURITY DEFINER, privileges, argument errors.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pg_privacy;
SELECT plan(16);

SELECT has_function('privacy', 'add_export_recipient', ARRAY['text', 'text']);
SELECT has_function('privacy', 'remove_export_recipient', ARRAY['text']);
SELECT function_returns('privacy', 'download_export', ARRAY['bigint'], 'setof text');
SELECT function_returns('privacy', 'export_chunks', ARRAY['bigint'], 'setof bytea');
SELECT is_definer('privacy', 'add_export_recipient', ARRAY['text', 'text']);
SELECT is_definer('privacy', 'remove_export_recipient', ARRAY['text']);
SELECT is_definer('privacy', 'download_export', ARRAY['bigint']);
SELECT is_definer('privacy', 'export_chunks', ARRAY['bigint']);

SELECT ok(has_function_privilege('privacy_admin', 'privacy.download_export(bigint)', 'EXECUTE')
          AND has_function_privilege('privacy_admin', 'privacy.export_chunks(bigint)', 'EXECUTE'),
          'privacy_admin may download');
SELECT ok(NOT has_function_privilege('privacy_requester', 'privacy.download_export(bigint)', 'EXECUTE')
          AND NOT has_function_privilege('privacy_auditor', 'privacy.download_export(bigint)', 'EXECUTE')
          AND NOT has_function_privilege('public', 'privacy.export_chunks(bigint)', 'EXECUTE'),
          'requester, auditor and PUBLIC may not download');
SELECT is_empty($$SELECT proname FROM pg_proc WHERE pronamespace = 'privacy'::regnamespace
                   AND proname IN ('_run_export_now', '_mark_rows', '_finalize_rows')$$,
                'no test-only entry point runs jobs: tests drive CALL privacy.run_job');

SELECT throws_ok($$SELECT * FROM privacy.add_export_recipient('  ', 'x')$$, '22023',
                 'export recipient name must not be empty', 'blank recipient name: 22023');
SELECT throws_ok($$SELECT * FROM privacy.add_export_recipient('pgtap', 'no PEM here')$$, '22023',
                 'export recipient certificate is not a PEM X.509 certificate', 'not a certificate: 22023');
SELECT throws_ok($$SELECT privacy.remove_export_recipient('pgtap-nobody')$$, '22023',
                 'export recipient "pgtap-nobody" does not exist', 'unknown recipient: 22023');
SELECT throws_ok($$SELECT privacy.download_export(-5)$$, '22023', 'job -5 does not exist',
                 'unknown job: 22023');
SELECT is((SELECT count(*) FROM privacy.audit_log WHERE target LIKE 'pgtap%'), 0::bigint,
          'refused calls leave no audit row');

SELECT * FROM finish();
ROLLBACK;
