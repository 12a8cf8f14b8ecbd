-- Registered tables that change under pg_privacy (issue 13): DROP TABLE removes the
-- registration and is audited; a registration left dangling (its table dropped while the event
-- trigger did not run) is skipped by preview and removed cleanly by unregister_table; a table
-- hold follows its table by OID, so renaming the table does not escape it.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_privacy;
BEGIN;
SELECT plan(21);

CREATE SCHEMA tl;
CREATE TABLE tl.notes (id int PRIMARY KEY, tenant text NOT NULL, subject text NOT NULL, body text);
CREATE TABLE tl.invoices (id int PRIMARY KEY, tenant text NOT NULL, subject text NOT NULL, amount int);
CREATE TABLE tl.ghost (id int PRIMARY KEY, tenant text NOT NULL, subject text NOT NULL);
CREATE TABLE tl.kept (id int PRIMARY KEY, tenant text NOT NULL, subject text NOT NULL);
CREATE INDEX ON tl.notes (tenant, subject, id);
CREATE INDEX ON tl.invoices (tenant, subject, id);
CREATE INDEX ON tl.ghost (tenant, subject, id);
CREATE INDEX ON tl.kept (tenant, subject, id);
INSERT INTO tl.invoices SELECT g, 't1', 's' || (g % 3), g FROM generate_series(1, 9) g;
INSERT INTO tl.kept SELECT g, 't1', 's' || (g % 3) FROM generate_series(1, 9) g;
SELECT privacy.register_table('tl.notes', 'subject', 'tenant', 'anonymize');
SELECT privacy.set_column_rule('tl.notes', 'body', 'null');
SELECT privacy.register_table('tl.invoices', 'subject', 'tenant');
SELECT privacy.register_table('tl.ghost', 'subject', 'tenant');
SELECT privacy.register_table('tl.kept', 'subject', 'tenant');

-- DROP TABLE of a registered table without a hold: the registration goes with it, audited.
SELECT 'tl.notes'::regclass::oid AS notes_oid \gset
SELECT lives_ok($$DROP TABLE tl.notes$$, 'DROP TABLE of a registered table');
SELECT is((SELECT count(*) FROM privacy.registered_tables WHERE relation::oid = :notes_oid), 0::bigint,
          'its registration is gone');
SELECT is((SELECT count(*) FROM privacy.column_rules WHERE relation::oid = :notes_oid), 0::bigint,
          'its column rules are gone');
SELECT is((SELECT jsonb_build_object('target', target, 'actor', actor, 'outcome', outcome, 'chain', chain)
             FROM privacy.audit_log WHERE action = 'table_dropped'),
          jsonb_build_object('target', 'tl.notes', 'actor', session_user, 'outcome', 'ok', 'chain', ''),
          'table_dropped is audited with the table''s name');

-- A dangling registration (from before the event trigger): simulated by dropping the table
-- while the event trigger is disabled.
SELECT 'tl.ghost'::regclass::oid AS ghost_oid \gset
DO $$ BEGIN
  IF EXISTS (SELECT FROM pg_event_trigger WHERE evtname = 'privacy_tamper_guard_drop') THEN
    ALTER EVENT TRIGGER privacy_tamper_guard_drop DISABLE;
  END IF;
END $$;
DROP TABLE tl.ghost;
DO $$ BEGIN
  IF EXISTS (SELECT FROM pg_event_trigger WHERE evtname = 'privacy_tamper_guard_drop') THEN
    ALTER EVENT TRIGGER privacy_tamper_guard_drop ENABLE ALWAYS;
  END IF;
END $$;
SELECT is((SELECT count(*) FROM privacy.registered_tables WHERE relation::oid = :ghost_oid), 1::bigint,
          'the registration dangles');
SELECT privacy.request_erase('t1', 's1', 'ticket 1') AS job \gset
SELECT lives_ok(format('SELECT * FROM privacy.preview(%s)', :job), 'preview works with a dangling registration');
SELECT is((SELECT string_agg(relation::text || '=' || matching_rows, ',' ORDER BY relation::text) FROM privacy.preview(:job)),
          'tl.invoices=3,tl.kept=3', 'preview lists the tables that exist');
SELECT lives_ok(format('SELECT privacy.unregister_table(%s)', :ghost_oid), 'unregister_table of a dangling registration');
SELECT is((SELECT count(*) FROM privacy.registered_tables WHERE relation::oid = :ghost_oid), 0::bigint,
          'the dangling registration is gone');
SELECT is((SELECT detail->>'dangling' FROM privacy.audit_log WHERE action = 'table_unregistered'
            ORDER BY id DESC LIMIT 1), 'true', 'audited as table_unregistered of a dangling registration');

-- A table hold follows its table through a rename.
SELECT privacy.place_hold('table', 'tl.invoices', NULL, 'regulator request R-9') AS table_hold \gset
SELECT is((SELECT relation FROM privacy.legal_holds WHERE id = :table_hold), 'tl.invoices'::regclass,
          'the hold records the relation');
ALTER TABLE tl.invoices RENAME TO bills;
SELECT throws_ok($$DELETE FROM tl.bills WHERE id = 1$$, 'PV001', NULL, 'DELETE after the rename is refused');
SELECT throws_ok($$UPDATE tl.bills SET amount = 0 WHERE id = 1$$, 'PV001', NULL, 'UPDATE after the rename is refused');
SELECT throws_ok($$TRUNCATE tl.bills$$, 'PV001', NULL, 'TRUNCATE after the rename is refused');
SELECT throws_ok($$DROP TABLE tl.bills$$, 'PV001', NULL, 'DROP TABLE after the rename is refused');
SELECT throws_ok($$SELECT privacy.unregister_table('tl.bills')$$, 'PV001', NULL, 'unregister after the rename is refused');
ALTER SCHEMA tl RENAME TO tl_renamed;
SELECT throws_ok($$DELETE FROM tl_renamed.bills WHERE id = 1$$, 'PV001', NULL, 'and after renaming its schema');
SELECT lives_ok($$DELETE FROM tl_renamed.kept WHERE id = 1$$, 'other tables are not held');
SELECT lives_ok(format('SELECT privacy.release_hold(%s, %L)', :table_hold, 'done'), 'release the renamed table''s hold');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgrelid = 'tl_renamed.bills'::regclass AND tgname LIKE 'privacy_hold_guard%'),
          0::bigint, 'the release removed the triggers of the renamed table');
SELECT lives_ok($$DELETE FROM tl_renamed.bills WHERE id = 1$$, 'released: DELETE allowed');

SELECT * FROM finish();
ROLLBACK;
