-- Registration: validation with SQLSTATEs, key discovery, quoting of hostile identifiers,
-- single-tenant tables, column rules, privileges of the secret.
-- Every suite starts from a fresh extension: job ids and chains do not depend on test order.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_privacy CASCADE;
CREATE EXTENSION pg_privacy;
RESET client_min_messages;
DROP SCHEMA IF EXISTS rg CASCADE;
DROP SCHEMA IF EXISTS "My Schema" CASCADE;
CREATE SCHEMA rg;
-- Runs a statement and shows its SQLSTATE and message instead of failing.
CREATE FUNCTION rg.try(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE statement;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

CREATE TABLE rg.accounts (tenant text NOT NULL, id int PRIMARY KEY, subject text NOT NULL,
                          doc jsonb, addr inet NOT NULL DEFAULT '127.0.0.1', n int NOT NULL DEFAULT 1,
                          note varchar(20));
CREATE TABLE rg.nokey (subject text, v int);
CREATE TABLE rg.nullable_unique (subject text NOT NULL, code text UNIQUE, part int);
CREATE UNIQUE INDEX ON rg.nullable_unique (part) WHERE part > 0;
CREATE TABLE rg.unique_key (subject text NOT NULL, code text NOT NULL, b int NOT NULL, UNIQUE (code, b));
CREATE VIEW rg.a_view AS SELECT * FROM rg.accounts;

-- Validation: each refusal has its SQLSTATE and changes nothing.
SELECT rg.try($$SELECT privacy.register_table('rg.missing', 'subject')$$);
SELECT rg.try($$SELECT privacy.register_table('rg.accounts', 'nobody')$$);
SELECT rg.try($$SELECT privacy.register_table('rg.accounts', 'subject', 'no_tenant')$$);
SELECT rg.try($$SELECT privacy.register_table('rg.accounts', 'doc', 'tenant')$$);
SELECT rg.try($$SELECT privacy.register_table('rg.accounts', 'subject', 'subject')$$);
SELECT rg.try($$SELECT privacy.register_table('rg.accounts', 'subject', 'tenant', 'shred')$$);
SELECT rg.try($$SELECT privacy.register_table('rg.a_view', 'subject')$$);
SELECT rg.try($$SELECT privacy.register_table('rg.nokey', 'subject')$$);
SELECT rg.try($$SELECT privacy.register_table('rg.nullable_unique', 'subject')$$);
SELECT count(*) AS nothing_registered FROM privacy.registered_tables WHERE relation::text LIKE 'rg.%';
SELECT count(*) AS no_column_added FROM pg_attribute WHERE attname = 'privacy_erased_by'
   AND attrelid IN ('rg.accounts'::regclass, 'rg.nokey'::regclass, 'rg.nullable_unique'::regclass);
-- The message, detail and hint of one refusal.
SELECT privacy.register_table('rg.nokey', 'subject');

-- A unique index on NOT NULL columns serves as the key when there is no primary key.
SELECT privacy.register_table('rg.unique_key', 'subject');
SELECT key_columns FROM privacy.registered_tables WHERE relation = 'rg.unique_key'::regclass;
SELECT rg.try($$SELECT privacy.register_table('rg.unique_key', 'subject')$$) AS twice;

-- Column rules.
SELECT privacy.register_table('rg.accounts', 'subject', 'tenant', 'anonymize');
SELECT rg.try($$SELECT privacy.set_column_rule('rg.accounts', 'note', 'shuffle')$$);
SELECT rg.try($$SELECT privacy.set_column_rule('rg.accounts', 'n', 'null')$$);
SELECT rg.try($$SELECT privacy.set_column_rule('rg.accounts', 'addr', 'redact')$$);
SELECT rg.try($$SELECT privacy.set_column_rule('rg.accounts', 'n', 'hash')$$);
SELECT rg.try($$SELECT privacy.set_column_rule('rg.accounts', 'note', 'hash')$$);
SELECT rg.try($$SELECT privacy.set_column_rule('rg.accounts', 'subject', 'keep')$$);
SELECT rg.try($$SELECT privacy.set_column_rule('rg.accounts', 'subject', 'null')$$);
SELECT rg.try($$SELECT privacy.set_column_rule('rg.accounts', 'note', 'tombstone')$$);
SELECT rg.try($$SELECT privacy.set_column_rule('rg.accounts', 'id', 'redact')$$);
SELECT rg.try($$SELECT privacy.set_column_rule('rg.accounts', 'ghost', 'null')$$);
SELECT rg.try($$SELECT privacy.set_column_rule('rg.unique_key', 'b', 'null')$$);
SELECT rg.try($$SELECT privacy.set_column_rule('rg.nokey', 'v', 'null')$$);
SELECT privacy.set_column_rule('rg.accounts', 'note', 'redact');
SELECT privacy.set_column_rule('rg.accounts', 'doc', 'redact');
SELECT privacy.set_column_rule('rg.accounts', 'n', 'redact');
SELECT privacy.set_column_rule('rg.accounts', 'note', 'null');
SELECT privacy.set_column_rule('rg.accounts', 'subject', 'tombstone');
SELECT privacy.set_column_rule('rg.accounts', 'subject', 'hash');
SELECT column_name, rule FROM privacy.column_rules WHERE relation = 'rg.accounts'::regclass ORDER BY 1;
SELECT detail FROM privacy.audit_log WHERE action = 'settings_changed' AND target = 'rg.accounts' ORDER BY id;

-- Hostile identifiers: every name is quoted wherever SQL is built.
CREATE TABLE rg.t (x int);
CREATE SCHEMA "My Schema";
CREATE TABLE "My Schema"."Users Table" (
    "Tenant Id" text NOT NULL,
    "Key; x" int NOT NULL,
    "x""; drop table rg.t; --" text NOT NULL,
    "Notes ""quoted""" text,
    PRIMARY KEY ("Tenant Id", "Key; x"));
INSERT INTO "My Schema"."Users Table" VALUES ('T 1', 1, 'alice', 'n1'), ('T 1', 2, 'alice', 'n2'),
                                              ('T 1', 3, 'bob', 'n3'), ('T 2', 1, 'alice', 'n4');
SELECT privacy.register_table('"My Schema"."Users Table"', 'x"; drop table rg.t; --', 'Tenant Id', 'anonymize');
SELECT privacy.set_column_rule('"My Schema"."Users Table"', 'Notes "quoted"', 'hash');
-- A real erase of alice in tenant 'T 1' (CALL privacy.run_job runs the worker's loop here).
SET privacy.require_distinct_approver = off;
SELECT privacy.request_erase('T 1', 'alice', 'hostile names') AS alice \gset
SELECT privacy.approve(:alice);
CALL privacy.run_job(:alice);
SELECT "Tenant Id", "Key; x", privacy_erased_by = :alice AS marked FROM "My Schema"."Users Table" ORDER BY 1, 2;
SELECT privacy.restore(:alice, '"My Schema"."Users Table"', '[{"Tenant Id": "T 1", "Key; x": 2}]') AS restored;
-- The recovery window closes (the clock, simulated) and the finalization runs.
UPDATE privacy.jobs SET recoverable_until = now() WHERE id = :alice;
CALL privacy.run_job(:alice);
SELECT status, finalization FROM privacy.jobs WHERE id = :alice;
SELECT "Tenant Id", "Key; x", "x""; drop table rg.t; --" = privacy._pseudonym('alice') AS subject_hashed,
       "Notes ""quoted""" = privacy._pseudonym('n1') AS notes_hashed, privacy_erased_by
  FROM "My Schema"."Users Table" ORDER BY 1, 2;
SELECT to_regclass('rg.t') IS NOT NULL AS t_survives;
SELECT privacy.unregister_table('"My Schema"."Users Table"');
SELECT relrowsecurity, relforcerowsecurity, (SELECT count(*) FROM pg_policy WHERE polrelid = c.oid) AS policies
  FROM pg_class c WHERE oid = '"My Schema"."Users Table"'::regclass;

-- A single-tenant table (no tenant column) and a subject id that does not fit the column type.
CREATE TABLE rg.single (id bigint PRIMARY KEY, owner_id bigint NOT NULL, v text);
INSERT INTO rg.single SELECT n, n % 4, 'v' || n FROM generate_series(1, 12) n;
SELECT privacy.register_table('rg.single', 'owner_id');
SELECT privacy.request_erase('any', '2', 'single tenant') AS two \gset
SELECT privacy.request_erase('any', 'not-a-number', 'no such subject') AS nan \gset
SELECT privacy.approve(:two), privacy.approve(:nan);
CALL privacy.run_job(:two);
CALL privacy.run_job(:nan);
SELECT id = :two AS two, processed_items FROM privacy.jobs WHERE id IN (:two, :nan) ORDER BY id;
SELECT array_agg(id ORDER BY id) AS marked_ids FROM rg.single WHERE privacy_erased_by = :two;
UPDATE privacy.jobs SET recoverable_until = now() WHERE id = :two;
CALL privacy.run_job(:two);
SELECT count(*) AS left_rows FROM rg.single;

-- Privileges: the secret is readable by no role; the API is granted to privacy_admin only.
GRANT USAGE ON SCHEMA rg TO privacy_admin;
SET ROLE privacy_admin;
SELECT rg.try($$SELECT * FROM privacy.installation_secret$$);
SELECT rg.try($$SELECT privacy._pseudonym('x')$$);
RESET ROLE;
SELECT p.proname, has_function_privilege('privacy_admin', p.oid, 'EXECUTE') AS admin,
       has_function_privilege('privacy_requester', p.oid, 'EXECUTE') AS requester,
       p.prosecdef AS definer, p.provolatile
  FROM pg_proc p WHERE p.pronamespace = 'privacy'::regnamespace
   AND p.proname IN ('register_table', 'unregister_table', 'set_column_rule', 'restore', '_pseudonym',
                     '_random_bytes', 'retry_items', 'resolve_item')
 ORDER BY 1;
SELECT length(secret) AS secret_bytes, count(*) OVER () AS secrets FROM privacy.installation_secret;

SELECT privacy.unregister_table(relation) FROM privacy.registered_tables WHERE relation::text LIKE 'rg.%' ORDER BY relation::text;
DROP SCHEMA rg CASCADE;
DROP SCHEMA "My Schema" CASCADE;
