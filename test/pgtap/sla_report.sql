-- privacy.sla_report against figures computed by hand on a fixture (docs/compliance.md,
-- "The SLA report"). The jobs are written straight into privacy.jobs with fixed times, so every
-- figure below can be checked with pencil and paper:
--
-- tenant sla_a (UTC), regulation gdpr, received January 2024:
--   9001 erase completed  received 01-10, due 02-10, answered 01-12: 2 days, on time; 2 items flagged, 1 resolved
--   9002 erase completed  received 01-20, due 03-20 (1 extension), answered 02-25: 36 days, on time
--   9003 erase rejected   received 01-25, due 02-25, answered 01-26: 1 day, on time
--   9004 erase cancelled  received 01-28: counts as a request only
--   9005 erase pending    received 01-30, due 02-29, still open: late
--     -> 5 requests, on time 3, late 1, share 3/4 = 0.75, median {1, 2, 36} = 2 days, max 36 days
--   9006 export completed received 01-15, due 02-15, answered 02-16: 32 days, late -> share 0
-- tenant sla_a, gdpr, February 2024:
--   9007 erase completed  received 02-01, due 03-01, answered 02-05 12:00: 4 days 12 hours, on time
--   9008 erase processing received 02-10, due 2099: open, not late
--   9013 erase failed     received 02-11, due 03-11, still open: late
--     -> 3 requests, on time 1, late 1, share 0.5
-- tenant sla_a, regulation other, January: 9012 erase completed in 1 day, on time
-- tenant sla_b (America/Los_Angeles), ccpa:
--   9009 purge  received 2024-03-01 05:00 UTC = 02-29 21:00 in Los Angeles: a February request; 1 day
--   9010 export received 2024-03-01 09:00 UTC = 03-01 01:00 in Los Angeles: March; 1 hour 30 minutes
-- outside [2024-01-01, 2024-04-01): 9011 received 2023-12-31 23:00 UTC
BEGIN;
CREATE EXTENSION IF NOT EXISTS pg_privacy;
SELECT plan(5);

SELECT privacy.configure_tenant('sla_b', time_zone => 'America/Los_Angeles');

INSERT INTO privacy.jobs (id, kind, target_type, target_id, tenant_id, reason, requires_approval, status,
                          regulation, requested_at, due_at, finished_at, deadline_extensions)
VALUES
 (9001, 'erase',  'subject', 's1',  'sla_a', 'fixture', true, 'completed',  'gdpr', '2024-01-10 00:00+00', '2024-02-10 00:00+00', '2024-01-12 00:00+00', 0),
 (9002, 'erase',  'subject', 's2',  'sla_a', 'fixture', true, 'completed',  'gdpr', '2024-01-20 00:00+00', '2024-03-20 00:00+00', '2024-02-25 00:00+00', 1),
 (9003, 'erase',  'subject', 's3',  'sla_a', 'fixture', true, 'rejected',   'gdpr', '2024-01-25 00:00+00', '2024-02-25 00:00+00', '2024-01-26 00:00+00', 0),
 (9004, 'erase',  'subject', 's4',  'sla_a', 'fixture', true, 'cancelled',  'gdpr', '2024-01-28 00:00+00', '2024-02-28 00:00+00', '2024-01-29 00:00+00', 0),
 (9005, 'erase',  'subject', 's5',  'sla_a', 'fixture', true, 'pending',    'gdpr', '2024-01-30 00:00+00', '2024-02-29 00:00+00', NULL, 0),
 (9006, 'export', 'subject', 's6',  'sla_a', 'fixture', false, 'completed', 'gdpr', '2024-01-15 00:00+00', '2024-02-15 00:00+00', '2024-02-16 00:00+00', 0),
 (9007, 'erase',  'subject', 's7',  'sla_a', 'fixture', true, 'completed',  'gdpr', '2024-02-01 00:00+00', '2024-03-01 00:00+00', '2024-02-05 12:00+00', 0),
 (9008, 'erase',  'subject', 's8',  'sla_a', 'fixture', true, 'processing', 'gdpr', '2024-02-10 00:00+00', '2099-01-01 00:00+00', NULL, 0),
 (9013, 'erase',  'subject', 's13', 'sla_a', 'fixture', true, 'failed',     'gdpr', '2024-02-11 00:00+00', '2024-03-11 00:00+00', NULL, 0),
 (9012, 'erase',  'subject', 's12', 'sla_a', 'fixture', true, 'completed',  'other', '2024-01-05 00:00+00', '2024-02-04 00:00+00', '2024-01-06 00:00+00', 0),
 (9009, 'purge',  'subject', 's9',  'sla_b', 'fixture', true, 'completed',  'ccpa', '2024-03-01 05:00+00', '2024-04-15 00:00+00', '2024-03-02 05:00+00', 0),
 (9010, 'export', 'subject', 's10', 'sla_b', 'fixture', false, 'completed', 'ccpa', '2024-03-01 09:00+00', '2024-04-15 00:00+00', '2024-03-01 10:30+00', 0),
 (9011, 'erase',  'subject', 's11', 'sla_a', 'fixture', true, 'completed',  'gdpr', '2023-12-31 23:00+00', '2024-01-31 00:00+00', '2024-01-01 01:00+00', 0);
-- Three attempts at two items of job 9001: the first item's retry was flagged again and is
-- open; the second was resolved by hand. Two items flagged, one resolved.
INSERT INTO privacy.job_errors (job_id, row_key, phase, attempt, sqlstate, message, resolution, resolved_by, resolved_at) VALUES
 (9001, '{"id": 1}', 'mark', 1, '55P03', 'locked', 'retried', 'dpo', '2024-01-12 00:00+00'),
 (9001, '{"id": 1}', 'mark', 2, '23503', 'still referenced', NULL, NULL, NULL),
 (9001, '{"id": 2}', 'mark', 1, '55P03', 'locked', 'resolved', 'dpo', '2024-01-13 00:00+00');

SELECT results_eq(
    $$SELECT tenant_id, regulation::text, month, kind::text, requests, completed, rejected, cancelled, open,
             answered_on_time, late, on_time_share, median_time, max_time, extensions, items_flagged, items_resolved
        FROM privacy.sla_report('2024-01-01', '2024-04-01')$$,
    $$VALUES
      ('sla_a', 'gdpr',  '2024-01-01'::date, 'export', 1::bigint, 1::bigint, 0::bigint, 0::bigint, 0::bigint,
       0::bigint, 1::bigint, 0.0000::numeric, '32 days'::interval, '32 days'::interval, 0::bigint, 0::bigint, 0::bigint),
      ('sla_a', 'gdpr',  '2024-01-01'::date, 'erase',  5::bigint, 2::bigint, 1::bigint, 1::bigint, 1::bigint,
       3::bigint, 1::bigint, 0.7500::numeric, '2 days'::interval, '36 days'::interval, 1::bigint, 2::bigint, 1::bigint),
      ('sla_a', 'gdpr',  '2024-02-01'::date, 'erase',  3::bigint, 1::bigint, 0::bigint, 0::bigint, 2::bigint,
       1::bigint, 1::bigint, 0.5000::numeric, '4 days 12:00'::interval, '4 days 12:00'::interval, 0::bigint, 0::bigint, 0::bigint),
      ('sla_a', 'other', '2024-01-01'::date, 'erase',  1::bigint, 1::bigint, 0::bigint, 0::bigint, 0::bigint,
       1::bigint, 0::bigint, 1.0000::numeric, '1 day'::interval, '1 day'::interval, 0::bigint, 0::bigint, 0::bigint),
      ('sla_b', 'ccpa',  '2024-02-01'::date, 'purge',  1::bigint, 1::bigint, 0::bigint, 0::bigint, 0::bigint,
       1::bigint, 0::bigint, 1.0000::numeric, '1 day'::interval, '1 day'::interval, 0::bigint, 0::bigint, 0::bigint),
      ('sla_b', 'ccpa',  '2024-03-01'::date, 'export', 1::bigint, 1::bigint, 0::bigint, 0::bigint, 0::bigint,
       1::bigint, 0::bigint, 1.0000::numeric, '01:30'::interval, '01:30'::interval, 0::bigint, 0::bigint, 0::bigint)$$,
    'the SLA report matches the figures computed by hand');

SELECT is((SELECT sum(requests) FROM privacy.sla_report('2023-12-01', '2024-01-01')), 1::numeric,
          'the period is [from, to): the request of 31 December counts in December only');
SELECT throws_like($$ SELECT * FROM privacy.sla_report('2024-02-01', '2024-01-01') $$,
                   'sla_report needs from_ts < to_ts, got [%)', 'an empty period is refused');

CREATE ROLE sla_auditor IN ROLE privacy_auditor;
CREATE ROLE sla_requester IN ROLE privacy_requester;
SET LOCAL ROLE sla_auditor;
SELECT is((SELECT count(*) FROM privacy.sla_report('2024-01-01', '2024-04-01')), 6::bigint, 'auditors read the report');
RESET ROLE;
SET LOCAL ROLE sla_requester;
SELECT throws_ok($$ SELECT * FROM privacy.sla_report('2024-01-01', '2024-04-01') $$, '42501', NULL,
                 'requesters do not');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
