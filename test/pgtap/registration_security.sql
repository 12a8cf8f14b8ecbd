-- Registration needs the rights PostgreSQL itself demands for ALTER TABLE (issue 12): the
-- session user must own the table (or have the privileges of its owner) and be able to look it
-- up. Each attack is written as the attacker would run it: a privacy_admin who does not own a
-- table registers it by name or by OID (schema without USAGE included), or aims at pg_privacy's
-- own tables, a system catalog, a temporary table, a view, a foreign table or a partition. Every
-- refusal changes nothing. Owners, and members of the owning role, still register.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_privacy;
BEGIN;
SELECT plan(38);

CREATE ROLE rs_admin;          -- a privacy administrator, owns nothing
CREATE ROLE rs_owner;          -- owns the application tables, also a privacy administrator
CREATE ROLE rs_team;           -- a group role owning a table
CREATE ROLE rs_member;         -- member of rs_team, privacy administrator
CREATE ROLE rs_other;          -- owns one partition
GRANT privacy_admin TO rs_admin, rs_owner, rs_member;
GRANT rs_team TO rs_member;

-- The HR schema: rs_admin has no USAGE on it.
CREATE SCHEMA rs_hr AUTHORIZATION rs_owner;
CREATE TABLE rs_hr.payroll (id int PRIMARY KEY, tenant text NOT NULL, employee text NOT NULL, salary int);
ALTER TABLE rs_hr.payroll OWNER TO rs_owner;
INSERT INTO rs_hr.payroll VALUES (1, 't1', 'e1', 90000);

-- An application schema everyone may use.
CREATE SCHEMA rs_app;
GRANT USAGE, CREATE ON SCHEMA rs_app TO rs_admin, rs_owner, rs_member, rs_other;
CREATE TABLE rs_app.accounts (id int PRIMARY KEY, tenant text NOT NULL, subject text NOT NULL, note text);
ALTER TABLE rs_app.accounts OWNER TO rs_owner;
CREATE TABLE rs_app.team_notes (id int PRIMARY KEY, subject text NOT NULL);
ALTER TABLE rs_app.team_notes OWNER TO rs_team;
CREATE VIEW rs_app.accounts_view AS SELECT * FROM rs_app.accounts;
CREATE MATERIALIZED VIEW rs_app.accounts_mv AS SELECT * FROM rs_app.accounts;
CREATE SEQUENCE rs_app.seq;
CREATE FOREIGN DATA WRAPPER rs_fdw;
CREATE SERVER rs_server FOREIGN DATA WRAPPER rs_fdw;
CREATE FOREIGN TABLE rs_app.remote (id int NOT NULL, subject text) SERVER rs_server;
CREATE TABLE rs_app.events (id int NOT NULL, subject text NOT NULL, PRIMARY KEY (id)) PARTITION BY RANGE (id);
CREATE TABLE rs_app.events_1 PARTITION OF rs_app.events FOR VALUES FROM (0) TO (100);
CREATE TABLE rs_app.events_2 PARTITION OF rs_app.events FOR VALUES FROM (100) TO (200);
ALTER TABLE rs_app.events OWNER TO rs_owner;
ALTER TABLE rs_app.events_1 OWNER TO rs_owner;
ALTER TABLE rs_app.events_2 OWNER TO rs_other;   -- a partition of another owner
CREATE TABLE rs_app.base (id int PRIMARY KEY, subject text NOT NULL);
CREATE TABLE rs_app.derived (extra text) INHERITS (rs_app.base);
ALTER TABLE rs_app.derived ADD PRIMARY KEY (id);
ALTER TABLE rs_app.base OWNER TO rs_owner;
ALTER TABLE rs_app.derived OWNER TO rs_owner;

CREATE INDEX ON rs_hr.payroll (tenant, employee, id);
CREATE INDEX ON rs_app.accounts (tenant, subject, id);
CREATE INDEX ON rs_app.team_notes (subject, id);
CREATE INDEX ON rs_app.events (subject, id);

SELECT 'rs_hr.payroll'::regclass::oid AS payroll_oid \gset

-- A privacy_admin that owns nothing.
SET SESSION AUTHORIZATION rs_admin;
SELECT throws_ok(format('SELECT privacy.register_table(%s, %L, %L)', :payroll_oid, 'employee', 'tenant'),
                 '42501', NULL, 'by OID, without USAGE on the schema: refused');
SELECT throws_like(format('SELECT privacy.register_table(%s, %L, %L)', :payroll_oid, 'employee', 'tenant'),
                   '%rs_hr.payroll%owned by rs_owner%', 'the error names the table and its owner');
SELECT throws_ok($$SELECT privacy.register_table('rs_app.accounts', 'subject', 'tenant')$$, '42501', NULL,
                 'by name, not the owner: refused');
SELECT throws_ok(format('SELECT privacy.register_table(%s, %L, %L)', 'rs_app.accounts'::regclass::oid, 'subject', 'tenant'),
                 '42501', NULL, 'by OID, not the owner: refused');
SELECT throws_ok($$SELECT privacy.register_table('rs_app.team_notes', 'subject')$$, '42501', NULL,
                 'a table of a group the caller is not in: refused');
SELECT throws_ok($$SELECT privacy.register_table('privacy.jobs', 'target_id', 'tenant_id')$$, '42501', NULL,
                 'privacy.jobs: refused');
SELECT throws_ok($$SELECT privacy.register_table('privacy.audit_log', 'actor', 'tenant_id')$$, '42501', NULL,
                 'privacy.audit_log: refused');
RESET SESSION AUTHORIZATION;
SELECT is((SELECT count(*) FROM privacy.registered_tables), 0::bigint, 'nothing was registered');
SELECT is((SELECT count(*) FROM pg_attribute WHERE attname = 'privacy_erased_by' AND NOT attisdropped
              AND attrelid IN ('rs_hr.payroll'::regclass, 'rs_app.accounts'::regclass, 'privacy.jobs'::regclass,
                               'privacy.audit_log'::regclass, 'rs_app.team_notes'::regclass)),
          0::bigint, 'no column was added anywhere');

-- Not even a superuser registers pg_privacy's own tables or the system catalogs.
SELECT throws_ok($$SELECT privacy.register_table('privacy.jobs', 'target_id', 'tenant_id')$$, '42501',
                 'table privacy.jobs belongs to extension pg_privacy and cannot be registered', 'superuser: privacy.jobs refused');
SELECT throws_ok($$SELECT privacy.register_table('privacy.audit_log', 'actor', 'tenant_id')$$, '42501', NULL,
                 'superuser: privacy.audit_log refused');
SELECT throws_ok($$SELECT privacy.register_table('pg_catalog.pg_authid', 'rolname')$$, '42501', NULL,
                 'superuser: a system catalog refused');
SELECT throws_ok($$SELECT privacy.register_table('information_schema.sql_features', 'feature_id')$$, '42501', NULL,
                 'superuser: information_schema refused');

-- Objects that are not plain or partitioned tables.
SELECT throws_ok($$SELECT privacy.register_table('rs_app.accounts_view', 'subject', 'tenant')$$, '42809', NULL, 'a view: 42809');
SELECT throws_ok($$SELECT privacy.register_table('rs_app.accounts_mv', 'subject', 'tenant')$$, '42809', NULL,
                 'a materialized view: 42809');
SELECT throws_ok($$SELECT privacy.register_table('rs_app.seq', 'last_value')$$, '42809', NULL, 'a sequence: 42809');
SELECT throws_ok($$SELECT privacy.register_table('rs_app.remote', 'subject')$$, '42809', NULL, 'a foreign table: 42809');
SELECT throws_ok($$SELECT privacy.register_table('rs_app.events_1', 'subject')$$, '42809',
                 'table rs_app.events_1 is a partition of rs_app.events', 'a partition: 42809');
CREATE TEMP TABLE rs_temp (id int PRIMARY KEY, subject text NOT NULL);
SELECT throws_ok($$SELECT privacy.register_table('rs_temp', 'subject')$$, '0A000', NULL, 'a temporary table: 0A000');
SELECT throws_ok($$SELECT privacy.register_table('rs_app.base', 'subject')$$, '0A000', NULL,
                 'a table with inheritance children: 0A000');
SELECT throws_ok($$SELECT privacy.register_table('rs_app.derived', 'subject')$$, '0A000', NULL,
                 'an inheritance child: 0A000');

-- A partitioned table whose partitions have another owner: the caller needs the rights of each.
SET SESSION AUTHORIZATION rs_owner;
SELECT throws_ok($$SELECT privacy.register_table('rs_app.events', 'subject')$$, '42501',
                 NULL, 'partitioned table with a partition of another owner: refused');
SELECT throws_like($$SELECT privacy.register_table('rs_app.events', 'subject')$$,
                   '%rs_app.events_2%owned by rs_other%', 'the error names the partition and its owner');
RESET SESSION AUTHORIZATION;
SELECT is((SELECT count(*) FROM privacy.registered_tables), 0::bigint, 'still nothing registered');
SELECT is((SELECT count(*) FROM pg_policy WHERE polrelid IN ('rs_app.events'::regclass, 'rs_app.events_1'::regclass,
                                                             'rs_app.events_2'::regclass)),
          0::bigint, 'no policy was created on the partitioned table');

-- The owner registers (a privacy_admin); a member of the owning group registers.
SET SESSION AUTHORIZATION rs_owner;
SELECT lives_ok($$SELECT privacy.register_table('rs_app.accounts', 'subject', 'tenant', 'anonymize')$$, 'the owner registers');
SELECT lives_ok($$SELECT privacy.register_table('rs_hr.payroll', 'employee', 'tenant')$$, 'the owner registers payroll');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION rs_member;
SELECT lives_ok($$SELECT privacy.register_table('rs_app.team_notes', 'subject')$$, 'a member of the owning role registers');
RESET SESSION AUTHORIZATION;
SELECT is((SELECT registered_by FROM privacy.registered_tables WHERE relation = 'rs_app.team_notes'::regclass),
          'rs_member', 'registered_by is the session user');

-- Column rules and unregistration: the same rule.
SET SESSION AUTHORIZATION rs_admin;
SELECT throws_ok($$SELECT privacy.set_column_rule('rs_app.accounts', 'note', 'null')$$, '42501', NULL,
                 'set_column_rule by a non-owner: refused');
SELECT throws_ok($$SELECT privacy.unregister_table('rs_app.accounts')$$, '42501', NULL,
                 'unregister_table by a non-owner: refused');
SELECT throws_ok(format('SELECT privacy.unregister_table(%s)', :payroll_oid), '42501', NULL,
                 'unregister_table by OID, without USAGE: refused');
RESET SESSION AUTHORIZATION;
SELECT is((SELECT count(*) FROM privacy.registered_tables), 3::bigint, 'the registrations are still there');
SELECT is((SELECT count(*) FROM privacy.column_rules), 0::bigint, 'no rule was set');
SET SESSION AUTHORIZATION rs_owner;
SELECT lives_ok($$SELECT privacy.set_column_rule('rs_app.accounts', 'note', 'null')$$, 'the owner sets a rule');
SELECT lives_ok($$SELECT privacy.unregister_table('rs_app.accounts')$$, 'the owner unregisters');
RESET SESSION AUTHORIZATION;

-- Once the partition has the same owner, the partitioned table registers, partitions included.
ALTER TABLE rs_app.events_2 OWNER TO rs_owner;
SET SESSION AUTHORIZATION rs_owner;
SELECT lives_ok($$SELECT privacy.register_table('rs_app.events', 'subject')$$, 'the owner of every partition registers');
RESET SESSION AUTHORIZATION;
SELECT is((SELECT string_agg(c.relname || ':' || c.relrowsecurity || '/' || c.relforcerowsecurity, ',' ORDER BY c.relname)
             FROM pg_class c WHERE c.oid IN ('rs_app.events'::regclass, 'rs_app.events_1'::regclass, 'rs_app.events_2'::regclass)),
          'events:true/true,events_1:true/true,events_2:true/true', 'row level security on the parent and every partition');

SELECT * FROM finish();
ROLLBACK;
