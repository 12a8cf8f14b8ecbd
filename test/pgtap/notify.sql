-- Notifications (docs/notifications.md): the event payload's keys, the e-mail rules at the
-- notify_min_items boundary, and who may use the test hook.
BEGIN;
SELECT plan(10);
CREATE EXTENSION IF NOT EXISTS pg_privacy;
-- privacy_test.notify_job_event: the test-only module's hook (test/modules/privacy_test).
CREATE EXTENSION IF NOT EXISTS privacy_test;

CREATE TEMP TABLE notify_case AS
WITH inserted AS (
    INSERT INTO privacy.jobs (kind, target_type, target_id, tenant_id, reason, requires_approval,
                              status, due_at, total_items, processed_items, notify_email)
    VALUES ('erase', 'subject', 'pgtap-subject', 'pgtap_tenant', 'test', false, 'completed',
            now() + interval '30 days', current_setting('privacy.notify_min_items')::bigint,
            current_setting('privacy.notify_min_items')::bigint, 'dpo@example.com')
    RETURNING id)
SELECT id FROM inserted;

SELECT is(
    (SELECT array_agg(k ORDER BY k)
       FROM jsonb_object_keys(privacy_test.notify_job_event((SELECT id FROM notify_case), 'processing',
                                                        'completed')::jsonb) AS k),
    ARRAY['at', 'failed_items', 'job_id', 'kind', 'new_status', 'old_status', 'processed_items',
          'target_type', 'tenant_id', 'total_items'],
    'the payload has exactly the documented keys');
SELECT is((SELECT count(*) FROM privacy.notifications WHERE job_id = (SELECT id FROM notify_case)),
          1::bigint, 'total_items = notify_min_items: the completion is e-mailed');
SELECT is((SELECT recipient FROM privacy.notifications WHERE job_id = (SELECT id FROM notify_case)),
          'dpo@example.com', 'to the notify_email');
SELECT ok((SELECT body LIKE E'%Target:  subject pgtap-subject\n%' AND subject NOT LIKE '%pgtap-subject%'
             FROM privacy.notifications WHERE job_id = (SELECT id FROM notify_case)),
          'the target id is in the body, not in the subject line');

UPDATE privacy.jobs SET total_items = total_items - 1 WHERE id = (SELECT id FROM notify_case);
DELETE FROM privacy.notifications WHERE job_id = (SELECT id FROM notify_case);
SELECT lives_ok(format('SELECT privacy_test.notify_job_event(%s, %L, %L)', (SELECT id FROM notify_case),
                        'processing', 'completed'), 'a smaller job completes');
SELECT is((SELECT count(*) FROM privacy.notifications WHERE job_id = (SELECT id FROM notify_case)),
          0::bigint, 'one item fewer: no e-mail');

SELECT lives_ok(format('SELECT privacy_test.notify_job_event(%s, %L, %L)', (SELECT id FROM notify_case),
                        'processing', 'cancelled'), 'a job is cancelled');
SELECT is((SELECT count(*) FROM privacy.notifications WHERE job_id = (SELECT id FROM notify_case)),
          0::bigint, 'a cancellation is never e-mailed');

SELECT throws_ok(
    $$SELECT privacy_test.notify_job_event(NULL, NULL, 'failed')$$, '22023', NULL,
    'a NULL job id is refused');
SELECT id AS case_id FROM notify_case \gset
SET LOCAL ROLE privacy_admin;
SELECT throws_ok('SELECT privacy_test.notify_job_event(' || :case_id || ', NULL, ''failed'')',
                 '42501', NULL, 'the test hook is not for privacy_admin');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
