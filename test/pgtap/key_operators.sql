-- Batches page through a registered table in key order with pg_catalog's operators only
-- (docs/security.md), so register_table refuses a key whose type compares with operators from
-- another schema, and changes nothing.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pg_privacy;
CREATE EXTENSION IF NOT EXISTS citext;
SELECT plan(5);

CREATE SCHEMA keyop_t;
CREATE TABLE keyop_t.by_email (email citext PRIMARY KEY, tenant text NOT NULL, subject text NOT NULL);
SELECT throws_ok($$SELECT privacy.register_table('keyop_t.by_email', 'subject', 'tenant')$$, '0A000',
                 'key column email of table keyop_t.by_email has type public.citext, whose btree operators are not built in',
                 'a citext key is refused');
SELECT is((SELECT count(*) FROM privacy.registered_tables WHERE relation = 'keyop_t.by_email'::regclass), 0::bigint,
          'the table is not registered');
SELECT hasnt_column('keyop_t', 'by_email', 'privacy_erased_by', 'the refused registration changed nothing');

-- Domains over built-in types and enums compare with pg_catalog's operators: accepted.
CREATE DOMAIN keyop_t.code AS integer CHECK (VALUE > 0);
CREATE TYPE keyop_t.region AS ENUM ('eu', 'us');
CREATE TABLE keyop_t.by_code (region keyop_t.region NOT NULL, code keyop_t.code NOT NULL,
                              tenant text NOT NULL, subject text NOT NULL, PRIMARY KEY (region, code));
CREATE INDEX ON keyop_t.by_code (tenant, subject, region, code);
SELECT lives_ok($$SELECT privacy.register_table('keyop_t.by_code', 'subject', 'tenant')$$,
                'a key of a domain over integer and an enum is accepted');
SELECT is((SELECT key_columns::text FROM privacy.registered_tables WHERE relation = 'keyop_t.by_code'::regclass),
          '{region,code}', 'registered with its key');
-- Keyset paging through such a key, one row per batch, is in test/sql/jobs_run_job.sql (CALL
-- privacy.run_job commits, so it cannot run inside this test's transaction).

SELECT * FROM finish();
ROLLBACK;
