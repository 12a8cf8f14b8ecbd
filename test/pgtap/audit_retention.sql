-- Audit retention (issue 6): each chain loses only a prefix older than its retention, gets an
-- anchor, still verifies, and the purge itself is audited. Other chains are untouched.
-- Retentions are at least privacy.audit_retention_floor (1 year by default, see
-- audit_retention_floor.sql), so the purges run "as of" a year and more from now.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pg_privacy;
-- privacy_test.purge_audit_as_of: the test-only module's purge as of a later time.
CREATE EXTENSION IF NOT EXISTS privacy_test;
SELECT plan(23);

CREATE TEMP TABLE fx (name text PRIMARY KEY, id bigint NOT NULL);
CREATE FUNCTION pg_temp.fx(n text) RETURNS bigint LANGUAGE sql STABLE
AS $$ SELECT id FROM fx WHERE name = n $$;
CREATE FUNCTION pg_temp.chain_ids(c text) RETURNS bigint[] LANGUAGE sql STABLE
AS $$ SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM privacy.audit_log WHERE chain = c $$;

SELECT lives_ok($$SELECT privacy.configure_tenant('ret_short', audit_retention => '1 year')$$,
                'a tenant keeps its audit rows for one year');
SELECT lives_ok($$SELECT privacy.configure_tenant('ret_long')$$, 'another tenant keeps the default (7 years)');
INSERT INTO fx VALUES ('s1', privacy._audit('retention_test', 'ret_short', NULL, 's1'));
INSERT INTO fx VALUES ('l1', privacy._audit('retention_test', 'ret_long', NULL, 'l1'));
INSERT INTO fx VALUES ('s2', privacy._audit('retention_test', 'ret_short', NULL, 's2'));
INSERT INTO fx VALUES ('p1', privacy._audit('retention_test', NULL, NULL, 'p1'));
INSERT INTO fx VALUES ('s3', privacy._audit('retention_test', 'ret_short', NULL, 's3'));
INSERT INTO fx VALUES ('s4', privacy._audit('retention_test', 'ret_short', NULL, 's4'));
CREATE TEMP TABLE before_purge AS
    SELECT pg_temp.chain_ids('ret_long') AS long_ids, pg_temp.chain_ids('') AS platform_ids,
           (SELECT prev_hash FROM privacy.audit_log WHERE id = pg_temp.fx('s3')) AS s3_prev,
           (SELECT min(id) FROM privacy.audit_log WHERE chain = 'ret_short') AS short_first;

-- Purge "as of" one year after s3 was written: everything of ret_short before s3 is due.
SELECT cmp_ok(privacy_test.purge_audit_as_of((SELECT at FROM privacy.audit_log WHERE id = pg_temp.fx('s3')) + interval '1 year'),
              '>=', 3::bigint, '_purge_audit returns the rows it deleted');
SELECT is(pg_temp.chain_ids('ret_short'),
          ARRAY[pg_temp.fx('s3'), pg_temp.fx('s4'),
                (SELECT max(id) FROM privacy.audit_log WHERE chain = 'ret_short')],
          'only the prefix older than the retention is gone; the purge row is appended');
SELECT is((SELECT action FROM privacy.audit_log WHERE chain = 'ret_short' ORDER BY id DESC LIMIT 1),
          'audit_purged', 'the purge is audited on the purged chain');
SELECT is((SELECT detail->>'deleted' FROM privacy.audit_log WHERE chain = 'ret_short' ORDER BY id DESC LIMIT 1),
          '3', 'with the number of rows deleted');
SELECT is((SELECT (detail->>'through_id')::bigint FROM privacy.audit_log WHERE chain = 'ret_short' ORDER BY id DESC LIMIT 1),
          pg_temp.fx('s2'), 'and the last id deleted');
SELECT is((SELECT anchor_id FROM privacy.audit_chains WHERE chain = 'ret_short'), pg_temp.fx('s3'),
          'the anchor is the first retained row');
SELECT is((SELECT anchor_hash FROM privacy.audit_chains WHERE chain = 'ret_short'), (SELECT s3_prev FROM before_purge),
          'the anchor hash is the hash the first retained row links to');
SELECT is(pg_temp.chain_ids('ret_long'), (SELECT long_ids FROM before_purge), 'another tenant''s chain is untouched');
SELECT is(pg_temp.chain_ids(''), (SELECT platform_ids FROM before_purge), 'the platform chain is untouched');
SELECT is((SELECT ok FROM privacy.verify_audit_log()), true, 'every chain still verifies after the purge');

-- The purge's permission does not outlive it.
SELECT throws_ok(format('DELETE FROM privacy.audit_log WHERE id = %s', pg_temp.fx('s4')), '42501', NULL,
                 'a direct DELETE is refused again right after a purge');

-- The same purge again changes nothing.
CREATE TEMP TABLE after_first AS SELECT pg_temp.chain_ids('ret_short') AS short_ids;
DO $$ BEGIN PERFORM privacy_test.purge_audit_as_of((SELECT at FROM privacy.audit_log WHERE id = pg_temp.fx('s3')) + interval '1 year'); END $$;
SELECT is(pg_temp.chain_ids('ret_short'), (SELECT short_ids FROM after_first), 'a repeated purge deletes nothing');

-- Everything of the chain is due: the chain keeps only the new purge row, which is its anchor.
DO $$ BEGIN PERFORM privacy_test.purge_audit_as_of(now() + interval '1 year 2 days'); END $$;
SELECT is((SELECT array_agg(action) FROM privacy.audit_log WHERE chain = 'ret_short'), ARRAY['audit_purged'],
          'a fully purged chain holds only its purge row');
SELECT is((SELECT anchor_id FROM privacy.audit_chains WHERE chain = 'ret_short'),
          (SELECT min(id) FROM privacy.audit_log WHERE chain = 'ret_short'), 'which is the new anchor');
SELECT is((SELECT ok FROM privacy.verify_audit_log()), true, 'and the chain verifies from it');
CREATE TEMP TABLE after_full AS SELECT pg_temp.chain_ids('ret_short') AS short_ids;
DO $$ BEGIN PERFORM privacy_test.purge_audit_as_of(now() + interval '1 year 2 days'); END $$;
SELECT is(pg_temp.chain_ids('ret_short'), (SELECT short_ids FROM after_full),
          'a chain holding only purge rows is left alone (no purge row replaces a purge row)');

-- Batches: 2500 rows go 1000 at a time, each batch audited, the chain verifiable throughout.
DO $$ BEGIN PERFORM privacy.configure_tenant('ret_batch', audit_retention => '1 year'); END $$;
DO $$ BEGIN PERFORM count(privacy._audit('retention_batch', 'ret_batch', g, NULL)) FROM generate_series(1, 2500) g; END $$;
SELECT cmp_ok(privacy_test.purge_audit_as_of(now() + interval '1 year 2 hours'), '>=', 2501::bigint,
              'a large purge deletes every due row');
SELECT is((SELECT (detail->>'deleted')::int FROM privacy.audit_log WHERE chain = 'ret_batch'),
          2501 + 2 - 2000, 'in batches of 1000 (the last batch also takes the two earlier purge rows)');
SELECT is((SELECT ok FROM privacy.verify_audit_log()), true, 'the trail verifies after a batched purge');

-- The anchor is checked: a chain emptied by hand is found (the tampering is rolled back).
ALTER TABLE privacy.audit_log DISABLE TRIGGER ALL;
DELETE FROM privacy.audit_log WHERE chain = 'ret_short';
SELECT is((SELECT first_bad_id FROM privacy.verify_audit_log()),
          (SELECT last_id FROM privacy.audit_chains WHERE chain = 'ret_short'),
          'a chain emptied behind the purge''s back is found');

SET LOCAL ROLE privacy_admin;
SELECT throws_ok($$SELECT privacy._purge_audit()$$, '42501', NULL, 'only a superuser may purge by hand');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
