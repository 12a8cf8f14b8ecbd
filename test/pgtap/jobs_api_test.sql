-- The request/decision API of docs/jobs.md ("Requesting and deciding") and the state machine as
-- seen from SQL.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pg_privacy;
SELECT plan(41);

CREATE SCHEMA jobs_t;
CREATE TABLE jobs_t.accounts (id bigint PRIMARY KEY, tenant text NOT NULL, subject text NOT NULL, note text);
CREATE INDEX ON jobs_t.accounts (tenant, subject);
INSERT INTO jobs_t.accounts SELECT g, 'acme', 's' || (g % 5), 'row ' || g FROM generate_series(1, 50) g;
SELECT privacy.register_table('jobs_t.accounts', 'subject', 'tenant');

CREATE ROLE jobs_alice LOGIN IN ROLE privacy_admin;
CREATE ROLE jobs_bob LOGIN IN ROLE privacy_admin;
CREATE ROLE jobs_rita LOGIN IN ROLE privacy_requester;
SET LOCAL privacy.require_distinct_approver = on;

-- Submission: validation.
SELECT throws_ok($$ SELECT privacy.request_erase('acme', 's1', '   ') $$, '22023',
                 'reason must not be empty', 'a blank reason is refused');
SELECT throws_ok($$ SELECT privacy.request_erase('', 's1', 'why') $$, '22023',
                 'tenant_id must not be empty', 'a blank tenant is refused');
SELECT throws_ok($$ SELECT privacy.request_erase('acme', NULL, 'why') $$, '22023',
                 'subject_id must not be empty', 'a missing subject is refused');
SELECT throws_ok($$ SELECT privacy.request_erase('acme', 's1', 'why', 'not an address') $$, '22023',
                 'notify_email "not an address" is not an e-mail address', 'a bad e-mail is refused');
SELECT throws_ok($$ SELECT privacy.request_purge('acme', 'tenant', 'globex', 'why') $$, '22023', NULL,
                 'a tenant purge must name its own tenant');
SELECT is((SELECT count(*) FROM privacy.jobs), 0::bigint, 'refused requests leave no job behind');

-- Approval policy: erase and purge need approval by default, export does not.
SET SESSION AUTHORIZATION jobs_alice;
SELECT privacy.request_erase('acme', 's1', 'ticket 1', 'dpo@example.com') AS erase_job \gset
RESET SESSION AUTHORIZATION;
SELECT is((SELECT status FROM privacy.jobs WHERE id = :erase_job), 'pending', 'an erase starts pending');
SELECT is((SELECT requested_by FROM privacy.jobs WHERE id = :erase_job), 'jobs_alice', 'the requester is the session user');
SELECT ok((SELECT due_at BETWEEN now() + interval '29 days' AND now() + interval '31 days' FROM privacy.jobs WHERE id = :erase_job),
          'due_at is requested_at + privacy.deadline (30 days)');
SELECT is((SELECT action FROM privacy.audit_log WHERE job_id = :erase_job ORDER BY id LIMIT 1), 'submitted', 'submission is audited');

SELECT privacy.configure_tenant('acme', approval_required => '{}'::privacy.job_kind[], deadline => '10 days');
SELECT privacy.request_purge('acme', 'subject', 's2', 'no approval needed') AS purge_job \gset
SELECT is((SELECT status FROM privacy.jobs WHERE id = :purge_job), 'approved', 'tenant policy without approval queues at once');
SELECT is((SELECT requires_approval FROM privacy.jobs WHERE id = :purge_job), false, 'requires_approval recorded');
SELECT ok((SELECT due_at < now() + interval '11 days' FROM privacy.jobs WHERE id = :purge_job), 'tenant deadline applies');
SELECT privacy.configure_tenant('acme', approval_required => '{erase,purge}', deadline => '30 days');

-- Distinct approver.
SET SESSION AUTHORIZATION jobs_alice;
SELECT throws_ok(format('SELECT privacy.approve(%s)', :erase_job), '42501', NULL, 'nobody approves their own request');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION jobs_bob;
SELECT lives_ok(format('SELECT privacy.approve(%s, %L)', :erase_job, 'checked identity'), 'another admin approves');
RESET SESSION AUTHORIZATION;
SELECT is((SELECT status || '/' || decided_by || '/' || decision_note FROM privacy.jobs WHERE id = :erase_job),
          'approved/jobs_bob/checked identity', 'decision recorded');
SELECT is((SELECT actor FROM privacy.audit_log WHERE job_id = :erase_job AND action = 'approved'), 'jobs_bob', 'approval audited with its actor');

-- Refused transitions say where the job is and what is allowed.
SELECT throws_ok(format('SELECT privacy.approve(%s)', :erase_job), '55000',
                 format('job %s is approved and cannot be approved', :erase_job), 'approving twice is refused');
SELECT throws_ok(format('SELECT privacy.retry(%s)', :erase_job), '55000', NULL, 'only failed jobs are retried');
SELECT throws_ok(format('SELECT privacy.reject(%s, %L)', :erase_job, 'late'), '55000', NULL, 'an approved job cannot be rejected');
SELECT throws_ok('SELECT privacy.approve(999999)', '22023', 'job 999999 does not exist', 'unknown job');

-- Reject needs a reason; cancel works from pending and approved.
SELECT privacy.request_erase('acme', 's3', 'ticket 3') AS rejected_job \gset
SELECT throws_ok(format('SELECT privacy.reject(%s, %L)', :rejected_job, ''), '22023', 'reason must not be empty', 'reject needs a reason');
SELECT lives_ok(format('SELECT privacy.reject(%s, %L)', :rejected_job, 'identity not verified'), 'reject');
SELECT is((SELECT status::text || '/' || decision_note FROM privacy.jobs WHERE id = :rejected_job), 'rejected/identity not verified', 'rejected with reason');
SELECT lives_ok(format('SELECT privacy.cancel(%s, %L)', :purge_job, 'duplicate'), 'cancel an approved job');
SELECT is((SELECT status FROM privacy.jobs WHERE id = :purge_job), 'cancelled', 'cancelled at once when not running');
SELECT throws_ok(format('SELECT privacy.cancel(%s, %L)', :purge_job, 'again'), '55000', NULL, 'a cancelled job is final');

-- Preview: per relation, matching rows and hold flag.
SELECT is((SELECT matching_rows FROM privacy.preview(:erase_job) WHERE relation = 'jobs_t.accounts'::regclass), 10::bigint,
          'preview counts the subject''s rows');
SELECT is((SELECT held FROM privacy.preview(:erase_job) WHERE relation = 'jobs_t.accounts'::regclass), false, 'no hold');

-- Deadline extension.
SELECT throws_ok(format('SELECT privacy.extend_deadline(%s, %L, %L)', :erase_job, '-1 day', 'why'), '22023', NULL, 'negative extension refused');
SELECT lives_ok(format('SELECT privacy.extend_deadline(%s, %L, %L)', :erase_job, '14 days', 'complex case'), 'extend deadline');
SELECT ok((SELECT due_at > now() + interval '43 days' FROM privacy.jobs WHERE id = :erase_job), 'due_at moved by 14 days');
SELECT is((SELECT count(*) FROM privacy.audit_log WHERE job_id = :erase_job AND action = 'deadline_extended'), 1::bigint, 'extension audited');

-- Monitoring.
SELECT is((SELECT total FROM privacy.dashboard), 3::bigint, 'dashboard counts every job');
SELECT is((SELECT count(*) FROM privacy.find_jobs('acme')), 3::bigint, 'find_jobs by tenant');
SELECT is((SELECT count(*) FROM privacy.find_jobs(:'erase_job')), 1::bigint, 'find_jobs by job id');
SELECT is((SELECT count(*) FROM privacy.find_jobs(NULL, 'rejected')), 1::bigint, 'find_jobs by status');
SELECT is((privacy.job_detail(:erase_job))->'job'->>'status', 'approved', 'job_detail shows the job');

-- Requesters: may request, may not decide, see only their own jobs.
SET SESSION AUTHORIZATION jobs_rita;
SELECT lives_ok($$ SELECT privacy.request_erase('acme', 's4', 'erasure request') $$, 'a requester may request');
SELECT throws_ok(format('SELECT privacy.approve(%s)', :erase_job), '42501', NULL, 'a requester may not approve');
SELECT is((SELECT count(*) FROM privacy.find_jobs()), 1::bigint, 'a requester sees only their own jobs');
RESET SESSION AUTHORIZATION;

SELECT * FROM finish();
ROLLBACK;
