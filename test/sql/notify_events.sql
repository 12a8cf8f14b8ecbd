-- Notifications: the pg_notify payload and the e-mail rules (docs/notifications.md).
-- Delivery over SMTP is tested end to end in test/t/050_notify_smtp.pl.
-- Every suite starts from a fresh extension: job ids and chains do not depend on test order.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_privacy CASCADE;
CREATE EXTENSION pg_privacy;
-- privacy_test.notify_job_event (test/modules/privacy_test, never shipped) sends a job's event as
-- if its status had just changed: each case below is a job row written directly.
CREATE EXTENSION privacy_test;
RESET client_min_messages;
SHOW privacy.notify_min_items;

BEGIN;
CREATE TEMP TABLE notify_jobs (name text PRIMARY KEY, id bigint);
-- Jobs straight into the table (superuser), one per case.
WITH cases(name, kind, status, total, email, note, error) AS (VALUES
    ('big_erase',   'erase',  'completed', 1000, 'dpo@example.com', NULL, NULL),
    ('small_erase', 'erase',  'completed', 999,  'dpo@example.com', NULL, NULL),
    ('no_email',    'export', 'completed', 5000, NULL,              NULL, NULL),
    ('failed',      'purge',  'failed',    2,    'ops@example.com', NULL, 'lock timeout on public.orders'),
    ('rejected',    'export', 'rejected',  NULL, 'dpo@example.com', 'not a customer of ours', NULL),
    ('cancelled',   'erase',  'cancelled', 5000, 'dpo@example.com', NULL, NULL),
    ('bad_email',   'erase',  'failed',    1,    E'dpo@example.com\r\nBcc: spy@example.com', NULL, 'x')),
inserted AS (
    INSERT INTO privacy.jobs (kind, target_type, target_id, tenant_id, reason, requires_approval,
                              status, due_at, total_items, processed_items, notify_email,
                              decision_note, error, recoverable_until)
    SELECT kind::privacy.job_kind, 'subject', 'subject-' || name, 'tenant_notify', 'test', false,
           status::privacy.job_status, now() + interval '30 days', total, coalesce(total, 0), email,
           note, error, timestamptz '2030-01-02 03:04:05+00'
      FROM cases
    RETURNING id, target_id)
INSERT INTO notify_jobs SELECT substr(target_id, 9), id FROM inserted;

-- The payload: ids, kind, tenant, statuses and progress; never the target id.
SELECT name, privacy_test.notify_job_event(id, 'processing', 'completed')::jsonb - 'at' - 'job_id' AS payload
  FROM notify_jobs WHERE name = 'big_erase';
SELECT name, privacy_test.notify_job_event(id, NULL, 'pending')::jsonb - 'at' - 'job_id' AS payload
  FROM notify_jobs WHERE name = 'rejected';
SELECT (privacy_test.notify_job_event(id, 'processing', 'completed')::jsonb ->> 'job_id')::bigint = id
       AS payload_names_the_job
  FROM notify_jobs WHERE name = 'big_erase';

-- The e-mail rules: one status change per case, as its row stands.
DELETE FROM privacy.notifications WHERE job_id IN (SELECT id FROM notify_jobs);
SELECT count(*) AS events
  FROM notify_jobs j, privacy.jobs r,
       LATERAL privacy_test.notify_job_event(j.id, 'processing', r.status::text)
 WHERE r.id = j.id;
SELECT j.name, n.recipient, replace(n.subject, j.id::text, 'N') AS subject
  FROM notify_jobs j LEFT JOIN privacy.notifications n ON n.job_id = j.id
 ORDER BY j.name;

-- Bodies: what to do next, and no subject data beyond the target id.
SELECT j.name,
       n.body LIKE '%Target:  subject subject-' || j.name || E'\n%' AS names_target,
       n.body LIKE '%recoverable until 2030-01-02 03:04:05 UTC%' AS recovery_window,
       n.body LIKE '%privacy.restore(' || j.id || ')%' AS how_to_restore,
       n.body LIKE '%lock timeout on public.orders%' AS quotes_error,
       n.body LIKE '%privacy.retry(' || j.id || ')%' AS how_to_retry,
       n.body LIKE E'%Reason given:\n  not a customer of ours\n%' AS quotes_reason
  FROM notify_jobs j JOIN privacy.notifications n ON n.job_id = j.id
 ORDER BY j.name;

-- An address that would inject headers is not queued; the skip is audited instead.
SELECT a.outcome, a.detail->>'queued' AS queued, a.detail->>'error' LIKE 'notify_email is not a valid e-mail address%' AS says_why
  FROM privacy.audit_log a JOIN notify_jobs j ON j.id = a.job_id
 WHERE j.name = 'bad_email' AND a.action = 'notification_failed';

-- Without privacy.smtp_url the mailer is disabled and says how much waits.
SELECT state, detail ~ '^privacy\.smtp_url is empty: [0-9]+ e-mails queued$' AS says_queued
  FROM privacy.worker_status() WHERE process = 'mailer';

-- Unknown job.
SAVEPOINT unknown_job;
SELECT privacy_test.notify_job_event(-1, NULL, 'failed');
ROLLBACK TO SAVEPOINT unknown_job;
ROLLBACK;

-- The test hook is for superusers only.
SET ROLE privacy_admin;
SELECT privacy_test.notify_job_event(1, NULL, 'failed');
RESET ROLE;
