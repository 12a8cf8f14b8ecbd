-- The tamper guard (issue 12): while a table is registered, DDL that would expose its erased
-- rows or disarm its legal-hold triggers is refused, for its owner and for a superuser, in
-- replica mode too. Each attack is the statement an owner would run. Other DDL on the table still
-- works, pg_privacy's own operations (holds, rules, unregistration) still work, and after
-- privacy.unregister_table the same statements are the owner's business again.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_privacy;
BEGIN;
SELECT plan(46);

CREATE ROLE tg_owner;
CREATE SCHEMA tg AUTHORIZATION tg_owner;
SET ROLE tg_owner;
CREATE TABLE tg.users (id int PRIMARY KEY, tenant text NOT NULL, subject text NOT NULL, note text);
CREATE INDEX ON tg.users (tenant, subject, id);
INSERT INTO tg.users SELECT g, 't1', 's' || g, 'n' FROM generate_series(1, 10) g;
CREATE FUNCTION tg.noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
CREATE TRIGGER app_trigger AFTER INSERT ON tg.users FOR EACH ROW EXECUTE FUNCTION tg.noop();
RESET ROLE;
SELECT privacy.register_table('tg.users', 'subject', 'tenant', 'anonymize');
-- Row 1 is erased (marked as an erase job's batch marks it: this file runs in one transaction,
-- where CALL privacy.run_job cannot commit); a tenant hold is active, so the hold triggers are
-- attached.
INSERT INTO privacy.jobs (id, kind, target_type, target_id, tenant_id, reason, requires_approval, status, due_at)
VALUES (7001, 'erase', 'subject', 's1', 't1', 'test', false, 'processing', now() + interval '30 days');
UPDATE tg.users SET privacy_erased_by = 7001 WHERE tenant = 't1' AND subject = 's1';
SELECT privacy.place_hold('tenant', 't1', NULL, 'audit 2026') AS hold \gset

-- Every way the owner could expose erased rows or disarm the hold is refused.
SET ROLE tg_owner;
SELECT is((SELECT count(*) FROM tg.users), 9::bigint, 'the owner does not see the erased row');
SELECT throws_ok($$ALTER TABLE tg.users NO FORCE ROW LEVEL SECURITY$$, '55000', NULL, 'NO FORCE ROW LEVEL SECURITY');
SELECT throws_like($$ALTER TABLE tg.users NO FORCE ROW LEVEL SECURITY$$,
                   '%tg.users%registered with pg_privacy%', 'the error names the table');
SELECT throws_ok($$ALTER TABLE tg.users DISABLE ROW LEVEL SECURITY$$, '55000', NULL, 'DISABLE ROW LEVEL SECURITY');
SELECT throws_ok($$DROP POLICY privacy_hide_erased ON tg.users$$, '55000', NULL, 'DROP POLICY privacy_hide_erased');
SELECT throws_ok($$DROP POLICY privacy_passthrough ON tg.users$$, '55000', NULL, 'DROP POLICY privacy_passthrough');
SELECT throws_ok($$ALTER POLICY privacy_hide_erased ON tg.users USING (true)$$, '55000', NULL, 'ALTER POLICY ... USING (true)');
SELECT throws_ok($$ALTER POLICY privacy_hide_erased ON tg.users TO tg_owner$$, '55000', NULL, 'ALTER POLICY ... TO one role');
SELECT throws_ok($$ALTER POLICY privacy_hide_erased ON tg.users RENAME TO mine$$, '55000', NULL, 'ALTER POLICY ... RENAME');
SELECT throws_ok($$ALTER TABLE tg.users DROP COLUMN privacy_erased_by CASCADE$$, '55000', NULL, 'DROP COLUMN privacy_erased_by CASCADE');
SELECT throws_ok($$ALTER TABLE tg.users RENAME COLUMN privacy_erased_by TO gone$$, '55000', NULL, 'RENAME COLUMN privacy_erased_by');
SELECT throws_ok($$ALTER TABLE tg.users ALTER COLUMN privacy_erased_by TYPE text$$, '0A000', NULL,
                 'ALTER COLUMN privacy_erased_by TYPE (PostgreSQL itself refuses: a policy uses the column)');
SELECT throws_ok($$ALTER TABLE tg.users DISABLE TRIGGER privacy_hold_guard_delete$$, '55000', NULL,
                 'DISABLE TRIGGER privacy_hold_guard_delete');
SELECT throws_ok($$ALTER TABLE tg.users DISABLE TRIGGER privacy_hold_guard_update$$, '55000', NULL,
                 'DISABLE TRIGGER privacy_hold_guard_update');
SELECT throws_ok($$ALTER TABLE tg.users DISABLE TRIGGER privacy_hold_guard_truncate$$, '55000', NULL,
                 'DISABLE TRIGGER privacy_hold_guard_truncate');
SELECT throws_ok($$ALTER TABLE tg.users ENABLE REPLICA TRIGGER privacy_hold_guard_update$$, '55000', NULL,
                 'ENABLE REPLICA TRIGGER (ordinary sessions would skip it)');
SELECT throws_ok($$ALTER TABLE tg.users ENABLE TRIGGER privacy_hold_guard_update$$, '55000', NULL,
                 'ENABLE TRIGGER of the update trigger (no longer ALWAYS: the apply worker would skip it)');
SELECT throws_ok($$ALTER TABLE tg.users DISABLE TRIGGER USER$$, '55000', NULL, 'DISABLE TRIGGER USER');
SELECT throws_ok($$ALTER TABLE tg.users ENABLE TRIGGER privacy_hold_guard_delete$$, '55000', NULL,
                 'ENABLE TRIGGER (no longer ALWAYS: replica mode would skip it)');
SELECT throws_ok($$DROP TRIGGER privacy_hold_guard_delete ON tg.users$$, '55000', NULL, 'DROP TRIGGER privacy_hold_guard_delete');
SELECT throws_ok($$ALTER TRIGGER privacy_hold_guard_update ON tg.users RENAME TO old_guard$$, '55000', NULL,
                 'ALTER TRIGGER ... RENAME');
SELECT throws_ok($$CREATE OR REPLACE TRIGGER privacy_hold_guard_delete AFTER DELETE ON tg.users
                   FOR EACH STATEMENT EXECUTE FUNCTION tg.noop()$$, '55000', NULL, 'CREATE OR REPLACE TRIGGER privacy_hold_guard_delete');
SELECT throws_ok($$CREATE OR REPLACE TRIGGER privacy_hold_guard_update AFTER UPDATE ON tg.users
                   REFERENCING OLD TABLE AS o NEW TABLE AS n FOR EACH STATEMENT EXECUTE FUNCTION tg.noop()$$,
                 '55000', NULL, 'CREATE OR REPLACE TRIGGER with another function');
SELECT throws_like($$DROP TRIGGER privacy_hold_guard_update ON tg.users$$, '%legal hold%', 'a trigger refusal mentions the hold');
SELECT is((SELECT count(*) FROM tg.users), 9::bigint, 'after all that, the erased row is still hidden');
SELECT throws_ok($$DELETE FROM tg.users WHERE id = 2$$, 'PV001', NULL, 'and the hold is still enforced');
RESET ROLE;

-- A superuser is refused too, also in replica mode.
SELECT throws_ok($$ALTER TABLE tg.users NO FORCE ROW LEVEL SECURITY$$, '55000', NULL, 'superuser: NO FORCE refused');
SELECT throws_ok($$ALTER TABLE tg.users DISABLE TRIGGER ALL$$, '55000', NULL, 'superuser: DISABLE TRIGGER ALL refused');
SELECT throws_ok($$CREATE OR REPLACE TRIGGER privacy_hold_guard_delete AFTER DELETE ON tg.users
                   FOR EACH STATEMENT EXECUTE FUNCTION privacy._hold_guard('subject', 'tenant')$$, '55000', NULL,
                 'superuser: the same trigger per statement instead of per row refused');
SET LOCAL session_replication_role = replica;
SELECT throws_ok($$DROP POLICY privacy_hide_erased ON tg.users$$, '55000', NULL, 'replica mode: DROP POLICY refused');
SET LOCAL session_replication_role = origin;

-- Other DDL on a registered table goes on.
SET ROLE tg_owner;
SELECT lives_ok($$ALTER TABLE tg.users ADD COLUMN city text$$, 'ADD COLUMN');
SELECT lives_ok($$CREATE INDEX ON tg.users (city)$$, 'CREATE INDEX');
SELECT lives_ok($$ALTER TABLE tg.users DISABLE TRIGGER app_trigger$$, 'DISABLE one of the owner''s own triggers');
SELECT lives_ok($$CREATE POLICY own_rule ON tg.users USING (true)$$, 'CREATE POLICY of the owner');
SELECT lives_ok($$DROP POLICY own_rule ON tg.users$$, 'DROP POLICY of the owner');
SELECT lives_ok($$ALTER TABLE tg.users RENAME COLUMN note TO remark$$, 'RENAME another column');
RESET ROLE;

-- pg_privacy's own DDL goes through: releasing the last hold drops the triggers, a new hold
-- attaches them again; a column rule; and once no hold is left, the (inert) triggers are the
-- owner's to drop only while no hold covers the table.
SELECT lives_ok(format('SELECT privacy.release_hold(%s, %L)', :hold, 'done'), 'release_hold drops the triggers');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgrelid = 'tg.users'::regclass AND tgname LIKE 'privacy_hold_guard%'),
          0::bigint, 'triggers gone with the hold');
SELECT lives_ok($$SELECT privacy.place_hold('subject', 's3', 't1', 'case 3')$$, 'place_hold attaches them');
SELECT lives_ok($$SELECT privacy.set_column_rule('tg.users', 'remark', 'redact')$$, 'set_column_rule');
UPDATE privacy.legal_holds SET active = false, released_at = now() WHERE active;   -- holds ended
SELECT lives_ok($$DROP TRIGGER privacy_hold_guard_truncate ON tg.users$$,
                'an inert trigger (no hold covers the table) may be dropped');

-- After unregistering, the table is the owner's again.
UPDATE tg.users SET privacy_erased_by = NULL;
SELECT lives_ok($$SELECT privacy.unregister_table('tg.users')$$, 'unregister_table');
SET ROLE tg_owner;
SELECT lives_ok($$ALTER TABLE tg.users ENABLE ROW LEVEL SECURITY$$, 'ENABLE ROW LEVEL SECURITY');
SELECT lives_ok($$ALTER TABLE tg.users NO FORCE ROW LEVEL SECURITY$$, 'NO FORCE after unregister');
SELECT lives_ok($$ALTER TABLE tg.users DISABLE ROW LEVEL SECURITY$$, 'DISABLE ROW LEVEL SECURITY after unregister');
RESET ROLE;
SELECT is((SELECT count(*) FROM privacy.audit_log WHERE action = 'table_unregistered' AND target = 'tg.users'),
          1::bigint, 'the unregistration is audited');

SELECT * FROM finish();
ROLLBACK;
