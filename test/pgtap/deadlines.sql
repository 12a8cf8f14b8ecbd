-- Deadlines per request (docs/compliance.md, "Deadlines"): the regulation of a request, its due
-- date in the tenant's time zone, and what privacy.extend_deadline allows, records and tells. The
-- calendar arithmetic itself (month ends, leap years) is unit-tested in
-- test/unit/deadline_test.cpp; here each rule is seen through the SQL API.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pg_privacy;
SELECT plan(33);

CREATE TABLE public.deadline_people (tenant text NOT NULL, id text NOT NULL, PRIMARY KEY (tenant, id));
SELECT privacy.register_table('public.deadline_people', 'id', 'tenant');
CREATE ROLE deadline_rita LOGIN IN ROLE privacy_requester;

-- Tenant settings: a default regulation, a privacy contact, a time zone; bad values refused.
SELECT throws_ok($$ SELECT privacy.configure_tenant('dl_gdpr', time_zone => 'Mars/Olympus_Mons') $$, '22023',
                 'time_zone for tenant "dl_gdpr" is not a time zone PostgreSQL knows: "Mars/Olympus_Mons"',
                 'an unknown time zone is refused');
SELECT throws_ok($$ SELECT privacy.configure_tenant('dl_gdpr', privacy_contact => 'dpo at example.com') $$, '22023',
                 'privacy_contact for tenant "dl_gdpr" is not a valid e-mail address',
                 'a privacy contact that is not one address is refused');
SELECT throws_ok($$ SELECT privacy.configure_tenant('dl_gdpr', regulation => 'hipaa') $$, '22P02', NULL,
                 'an unknown regulation is refused');
SELECT is((SELECT count(*) FROM privacy.tenants WHERE tenant_id = 'dl_gdpr'), 0::bigint, 'refusals change nothing');
SELECT privacy.configure_tenant('dl_gdpr', regulation => 'gdpr', privacy_contact => 'dpo@gdpr.example',
                                time_zone => 'Europe/Berlin');
SELECT privacy.configure_tenant('dl_ccpa', regulation => 'ccpa', time_zone => 'America/Los_Angeles');
SELECT privacy.configure_tenant('dl_other', deadline => '10 days');
SELECT is((SELECT row(regulation, privacy_contact, time_zone)::text FROM privacy.tenant_settings('dl_gdpr')),
          '(gdpr,dpo@gdpr.example,Europe/Berlin)', 'tenant_settings shows the regulation, contact and zone');
SELECT is((SELECT row(regulation, privacy_contact, time_zone)::text FROM privacy.tenant_settings('dl_other')),
          '(other,,UTC)', 'without them: regulation other, no contact, UTC');

-- Due dates: GDPR one calendar month in the tenant's zone, CCPA 45 days, other the tenant's deadline.
SELECT privacy.request_erase('dl_gdpr', 'g1', 'ticket 1', 'subject-g1@example.com') AS gdpr_job \gset
SELECT privacy.request_erase('dl_ccpa', 'c1', 'ticket 2') AS ccpa_job \gset
SELECT privacy.request_erase('dl_other', 'o1', 'ticket 3') AS other_job \gset
SELECT privacy.request_purge('dl_gdpr', 'subject', 'g2', 'ticket 4', NULL, 'ccpa') AS override_job \gset
SELECT is((SELECT regulation || ' ' || (due_at = ((requested_at AT TIME ZONE 'Europe/Berlin') + interval '1 month')
                                                   AT TIME ZONE 'Europe/Berlin')
           FROM privacy.jobs WHERE id = :gdpr_job), 'gdpr true', 'a GDPR request is due one month after receipt, in Berlin');
SELECT is((SELECT regulation || ' ' || (due_at = ((requested_at AT TIME ZONE 'America/Los_Angeles') + interval '45 days')
                                                   AT TIME ZONE 'America/Los_Angeles')
           FROM privacy.jobs WHERE id = :ccpa_job), 'ccpa true', 'a CCPA request is due 45 days after receipt');
SELECT is((SELECT regulation || ' ' || (due_at = requested_at + interval '10 days') FROM privacy.jobs WHERE id = :other_job),
          'other true', 'regulation other: the tenant''s deadline');
SELECT is((SELECT regulation || ' ' || (due_at = ((requested_at AT TIME ZONE 'Europe/Berlin') + interval '45 days')
                                                   AT TIME ZONE 'Europe/Berlin')
           FROM privacy.jobs WHERE id = :override_job), 'ccpa true', 'the request''s regulation beats the tenant''s');

-- GDPR: up to two further months, together, within the first month; the requester is told.
SELECT lives_ok(format('SELECT privacy.extend_deadline(%s, %L, %L)', :gdpr_job, '1 month', 'complex request'),
                'a GDPR deadline is extended by a month');
SELECT lives_ok(format('SELECT privacy.extend_deadline(%s, %L, %L)', :gdpr_job, '1 month', 'still complex'),
                'and by another month');
SELECT is((SELECT (due_at = ((requested_at AT TIME ZONE 'Europe/Berlin') + interval '1 month' + interval '1 month'
                             + interval '1 month') AT TIME ZONE 'Europe/Berlin')
                  || ' ' || deadline_extensions FROM privacy.jobs WHERE id = :gdpr_job),
          'true 2', 'each extension moves the due date on, in Berlin; two extensions counted');
SELECT throws_like(format('SELECT privacy.extend_deadline(%s, %L, %L)', :gdpr_job, '32 days', 'more'),
                   format('the deadline of job %s cannot be extended to %% Europe/Berlin: GDPR Art. 12(3) allows at most two further months, until three months after receipt', :gdpr_job),
                   'beyond three months after receipt is refused');
SELECT is((SELECT count(*) FROM privacy.audit_log WHERE job_id = :gdpr_job AND action = 'deadline_extended'
             AND detail->>'reason' IN ('complex request', 'still complex') AND detail->>'regulation' = 'gdpr'),
          2::bigint, 'each extension is audited with its reason');
SELECT is((SELECT count(*) FROM privacy.notifications WHERE job_id = :gdpr_job AND recipient = 'subject-g1@example.com'
             AND subject LIKE '%has a new deadline%' AND body LIKE '%still complex%'),
          1::bigint, 'the requester (notify_email) is told, with the reason');

-- The first month is over (receipt 31 January 2024, Berlin): no extension any more. The message
-- shows the month end in the tenant's zone.
UPDATE privacy.jobs SET requested_at = '2024-01-31 10:00 Europe/Berlin', due_at = '2024-02-29 10:00 Europe/Berlin',
                        deadline_extensions = 0
 WHERE id = :gdpr_job;
SELECT throws_ok(format('SELECT privacy.extend_deadline(%s, %L, %L)', :gdpr_job, '1 day', 'late'), '55000',
                 format('the deadline of job %s can no longer be extended: GDPR Art. 12(3) allows an extension only if the data subject is told within the first period after receipt, which ended at 2024-02-29 10:00:00 Europe/Berlin', :gdpr_job),
                 'after the first month a GDPR deadline cannot be extended');
SELECT is((SELECT due_at FROM privacy.jobs WHERE id = :gdpr_job), '2024-02-29 10:00 Europe/Berlin'::timestamptz,
          'a refused extension changes nothing');

-- CCPA: once, by at most 45 days.
SELECT throws_like(format('SELECT privacy.extend_deadline(%s, %L, %L)', :ccpa_job, '46 days', 'complex'),
                   '%CCPA (Cal. Civ. Code 1798.130(a)(2)) allows one extension of at most 45 days%',
                   'a CCPA extension beyond 45 days is refused');
SELECT lives_ok(format('SELECT privacy.extend_deadline(%s, %L, %L)', :ccpa_job, '45 days', 'complex'),
                'a CCPA deadline is extended by 45 days');
SELECT throws_ok(format('SELECT privacy.extend_deadline(%s, %L, %L)', :ccpa_job, '1 day', 'again'), '55000',
                 format('the deadline of job %s was extended already: CCPA (Cal. Civ. Code 1798.130(a)(2)) allows one extension of at most 45 days', :ccpa_job),
                 'a second CCPA extension is refused');
SELECT is((SELECT due_at = ((requested_at AT TIME ZONE 'America/Los_Angeles') + interval '90 days') AT TIME ZONE 'America/Los_Angeles'
           FROM privacy.jobs WHERE id = :ccpa_job), true, 'due 90 days after receipt');

-- Other: any positive interval, any number of times; never backwards.
SELECT lives_ok(format('SELECT privacy.extend_deadline(%s, %L, %L)', :other_job, '1 year', 'agreed'), 'other: a year');
SELECT lives_ok(format('SELECT privacy.extend_deadline(%s, %L, %L)', :other_job, '1 day', 'agreed'), 'other: again');
SELECT throws_ok(format('SELECT privacy.extend_deadline(%s, %L, %L)', :other_job, '-1 day', 'x'), '22023',
                 'by must be a positive interval', 'a negative extension is refused');
SELECT throws_ok(format('SELECT privacy.extend_deadline(%s, %L, %L)', :other_job, '1 month -1 day', 'x'), '22023',
                 'by must be a positive interval', 'an extension with a negative part is refused');
SELECT throws_ok(format('SELECT privacy.extend_deadline(%s, %L, %L)', :other_job, '0', 'x'), '22023',
                 'by must be a positive interval', 'a zero extension is refused');

-- An extension lets the notices go out again for the new due date.
UPDATE privacy.jobs SET deadline_warned_at = now(), overdue_notified_at = now() WHERE id = :other_job;
SELECT privacy.extend_deadline(:other_job, '1 day', 'agreed');
SELECT is((SELECT deadline_warned_at IS NULL AND overdue_notified_at IS NULL FROM privacy.jobs WHERE id = :other_job), true,
          'an extension clears the notices sent for the old due date');

-- Only open jobs have a deadline; only admins extend.
SELECT privacy.cancel(:override_job, 'duplicate');
SELECT throws_ok(format('SELECT privacy.extend_deadline(%s, %L, %L)', :override_job, '1 day', 'x'), '55000',
                 format('job %s is cancelled and has no deadline left to extend', :override_job),
                 'a cancelled job has no deadline to extend');
SET SESSION AUTHORIZATION deadline_rita;
SELECT throws_ok(format('SELECT privacy.extend_deadline(%s, %L, %L)', :ccpa_job, '1 day', 'x'), '42501', NULL,
                 'a requester cannot extend deadlines');
SELECT lives_ok($$ SELECT privacy.request_erase('dl_ccpa', 'c2', 'ticket 5', regulation => 'gdpr') $$,
                'a requester names the regulation of a request');
RESET SESSION AUTHORIZATION;
SELECT is((SELECT regulation FROM privacy.jobs WHERE target_id = 'c2'), 'gdpr', 'and it is recorded');

-- Every request filed before this feature behaves as 'other' (the column's default).
SELECT is((SELECT column_default FROM information_schema.columns
            WHERE table_schema = 'privacy' AND table_name = 'jobs' AND column_name = 'regulation'),
          '''other''::privacy.regulation', 'rows inserted without a regulation are ''other''');

SELECT * FROM finish();
ROLLBACK;
