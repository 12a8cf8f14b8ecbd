-- Four-eyes approval on every path (docs/jobs.md): only privacy.approve, by someone other than
-- the requester, leads a job from pending to approved; privacy.retry queues failed and
-- cancelled jobs again, and never one that still waits for (or never had) its approval.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pg_privacy;
SELECT plan(24);

CREATE SCHEMA four_t;
CREATE TABLE four_t.accounts (id bigint PRIMARY KEY, tenant text NOT NULL, subject text NOT NULL);
CREATE INDEX ON four_t.accounts (tenant, subject);
INSERT INTO four_t.accounts SELECT g, 'acme', 's' || (g % 5) FROM generate_series(1, 20) g;
SELECT privacy.register_table('four_t.accounts', 'subject', 'tenant');

CREATE ROLE four_alice LOGIN IN ROLE privacy_admin;
CREATE ROLE four_bob LOGIN IN ROLE privacy_admin;
SET LOCAL privacy.require_distinct_approver = on;

-- An erase requested by alice waits for approval.
SET SESSION AUTHORIZATION four_alice;
SELECT privacy.request_erase('acme', 's1', 'ticket 1') AS job \gset
RESET SESSION AUTHORIZATION;
SELECT is((SELECT status::text FROM privacy.jobs WHERE id = :job), 'pending', 'the erase waits for approval');

-- retry is no way around approval, whoever asks.
SET SESSION AUTHORIZATION four_alice;
SELECT throws_ok(format('SELECT privacy.retry(%s)', :job), '55000',
                 format('job %s is pending and cannot be retried', :job), 'the requester cannot retry a pending job');
RESET SESSION AUTHORIZATION;
SELECT throws_ok(format('SELECT privacy.retry(%s)', :job), '55000', NULL, 'nobody retries a pending job');
SELECT is((SELECT status::text FROM privacy.jobs WHERE id = :job), 'pending', 'the job still waits for approval');
SELECT is((SELECT count(*) FROM privacy.audit_log WHERE job_id = :job AND action = 'retried'), 0::bigint,
          'nothing was audited as retried');

-- The requester does not approve, not as session user and not as current user either.
SET SESSION AUTHORIZATION four_alice;
SELECT throws_ok(format('SELECT privacy.approve(%s)', :job), '42501',
                 format('job %s was requested by four_alice, who may not approve it', :job),
                 'approval by the requester is refused');
RESET SESSION AUTHORIZATION;
-- Code that PostgreSQL runs for another role (here a materialized view refresh; in a job, a table
-- owner's trigger) keeps the session user of whoever runs it: it approves nothing.
CREATE FUNCTION four_t.approve_job(job bigint) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
  PERFORM privacy.approve(job, 'approved from inside a refresh');
  RETURN 1;
END $$;
CREATE MATERIALIZED VIEW four_t.approvals AS SELECT four_t.approve_job(:job) AS approved WITH NO DATA;
SELECT throws_ok('REFRESH MATERIALIZED VIEW four_t.approvals', '42501', NULL,
                 'no approval from code run inside a security-restricted operation');

-- Another admin approves; an approved or processing job is not retried.
SET SESSION AUTHORIZATION four_bob;
SELECT lives_ok(format('SELECT privacy.approve(%s, %L)', :job, 'identity checked'), 'another admin approves');
RESET SESSION AUTHORIZATION;
SELECT throws_ok(format('SELECT privacy.retry(%s)', :job), '55000',
                 format('job %s is approved and cannot be retried', :job), 'an approved job is not retried');
UPDATE privacy.jobs SET status = 'processing', started_at = now() WHERE id = :job;
SELECT throws_ok(format('SELECT privacy.retry(%s)', :job), '55000',
                 format('job %s is processing and cannot be retried', :job), 'a processing job is not retried');

-- A failed job is retried: queued again, audited.
UPDATE privacy.jobs SET status = 'failed', error = 'boom', finished_at = now() WHERE id = :job;
SELECT lives_ok(format('SELECT privacy.retry(%s)', :job), 'a failed job is retried');
SELECT is((SELECT status::text || '/' || (error IS NULL)::text FROM privacy.jobs WHERE id = :job), 'approved/true',
          'the retried job is queued again, its error cleared');
SELECT is((SELECT count(*) FROM privacy.audit_log WHERE job_id = :job AND action = 'retried'), 1::bigint,
          'the retry is audited');

-- A cancelled job that had been approved is retried, and not cancelled again by its old request.
SELECT lives_ok(format('SELECT privacy.cancel(%s, %L)', :job, 'paused'), 'the approved job is cancelled');
SELECT lives_ok(format('SELECT privacy.retry(%s)', :job), 'a cancelled job that had been approved is retried');
SELECT is((SELECT status::text || '/' || cancel_requested::text FROM privacy.jobs WHERE id = :job), 'approved/false',
          'queued again, with its cancel request cleared');

-- A job cancelled before anyone approved it is not retried: that would skip the approval.
SELECT privacy.request_erase('acme', 's2', 'ticket 2') AS unapproved \gset
SELECT lives_ok(format('SELECT privacy.cancel(%s, %L)', :unapproved, 'duplicate'), 'a pending job is cancelled');
SELECT throws_ok(format('SELECT privacy.retry(%s)', :unapproved), '55000',
                 format('job %s was cancelled before it was approved and cannot be retried', :unapproved),
                 'a job cancelled before its approval is not retried');
SELECT is((SELECT status::text FROM privacy.jobs WHERE id = :unapproved), 'cancelled', 'it stays cancelled');

-- A job that needed no approval is retried after a cancel.
SELECT privacy.configure_tenant('acme', approval_required => '{}'::privacy.job_kind[]);
SELECT privacy.request_erase('acme', 's3', 'ticket 3') AS unneeded \gset
SELECT lives_ok(format('SELECT privacy.cancel(%s, %L)', :unneeded, 'later'), 'a queued job is cancelled');
SELECT lives_ok(format('SELECT privacy.retry(%s)', :unneeded), 'a job that needed no approval is retried');

-- Final statuses stay final.
UPDATE privacy.jobs SET status = 'completed', finished_at = now() WHERE id = :unneeded;
SELECT throws_ok(format('SELECT privacy.retry(%s)', :unneeded), '55000', NULL, 'a completed job is not retried');
SELECT privacy.configure_tenant('acme', approval_required => '{erase,purge}');
SELECT privacy.request_erase('acme', 's4', 'ticket 5') AS rejected \gset
SELECT lives_ok(format('SELECT privacy.reject(%s, %L)', :rejected, 'not verified'), 'a pending job is rejected');
SELECT throws_ok(format('SELECT privacy.retry(%s)', :rejected), '55000', NULL, 'a rejected job is not retried');

SELECT * FROM finish();
ROLLBACK;
