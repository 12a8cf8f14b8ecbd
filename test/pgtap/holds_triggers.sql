-- Legal holds: the enforcement triggers sit on a registered table only while a hold could cover
-- its rows (docs/legal-holds.md, "Cost when nothing is held"): attached by place_hold and by
-- register_table under an active hold, dropped by release_hold, the expiry step and
-- privacy._sync_hold_triggers. Enforcement itself is tested in holds.sql.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_privacy;
BEGIN;
SELECT plan(35);

CREATE SCHEMA holds_trg;
CREATE TABLE holds_trg.a (id int PRIMARY KEY, tenant text, subject text, amount int);
CREATE TABLE holds_trg.b (id int PRIMARY KEY, subject text);
CREATE TABLE holds_trg.c (id int PRIMARY KEY, tenant text, subject text);
CREATE INDEX ON holds_trg.a (tenant, subject, id);
CREATE INDEX ON holds_trg.b (subject, id);
CREATE INDEX ON holds_trg.c (tenant, subject, id);
INSERT INTO holds_trg.a SELECT g, 't' || (g % 2), 's' || (g % 5), g FROM generate_series(1, 20) g;
INSERT INTO holds_trg.b SELECT g, 's' || (g % 5) FROM generate_series(1, 10) g;
INSERT INTO holds_trg.c SELECT g, 't1', 's' || (g % 5) FROM generate_series(1, 10) g;
SELECT privacy.register_table('holds_trg.a', 'subject', 'tenant');
SELECT privacy.register_table('holds_trg.b', 'subject');

-- The hold triggers of a table, e.g. 'privacy_hold_guard_delete:A,...'; '' for none.
CREATE FUNCTION pg_temp.hold_triggers(rel regclass) RETURNS text LANGUAGE sql AS $$
  SELECT coalesce(string_agg(tgname || ':' || tgenabled::text, ',' ORDER BY tgname), '')
    FROM pg_catalog.pg_trigger WHERE tgrelid = rel AND tgname LIKE 'privacy\_hold\_guard%'
$$;
\set both '''privacy_hold_guard_delete:A,privacy_hold_guard_truncate:A,privacy_hold_guard_update:A'''

-- No hold: no trigger at all.
SELECT is(pg_temp.hold_triggers('holds_trg.a'), '', 'registered table without holds has no hold trigger');
SELECT is(pg_temp.hold_triggers('holds_trg.b'), '', 'single-tenant table without holds has no hold trigger');

-- A subject hold covers every registered table.
SELECT privacy.place_hold('subject', 's1', 't1', 'case 1') AS h1 \gset
SELECT is(pg_temp.hold_triggers('holds_trg.a'), :both, 'place_hold attached the triggers');
SELECT is(pg_temp.hold_triggers('holds_trg.b'), :both, 'and on the other registered table');
SELECT is((SELECT string_agg(tgfoid::regproc::text || '(' || encode(tgargs, 'escape') || ')', ' ' ORDER BY tgname)
             FROM pg_trigger WHERE tgrelid = 'holds_trg.a'::regclass),
          'privacy._hold_guard(subject\000tenant\000) '
          'privacy._hold_guard_truncate(subject\000tenant\000) privacy._hold_guard(subject\000tenant\000)',
          'the triggers name the registered columns');
-- AFTER ... FOR EACH ROW (no transition tables: no copy of every changed row), ENABLE ALWAYS, so
-- the logical replication apply worker (row triggers only) is checked by the same triggers.
SELECT is((SELECT string_agg(tgname || ':' || tgtype || ':' || (tgoldtable IS NULL AND tgnewtable IS NULL), ',' ORDER BY tgname)
             FROM pg_trigger WHERE tgrelid = 'holds_trg.a'::regclass),
          'privacy_hold_guard_delete:9:true,privacy_hold_guard_truncate:34:true,privacy_hold_guard_update:17:true',
          'row triggers for DELETE and UPDATE, a statement trigger for TRUNCATE, no transition table');
SELECT throws_ok($$DELETE FROM holds_trg.a WHERE id = 11$$, 'PV001', NULL, 'superuser DELETE of a held row refused');
SET LOCAL session_replication_role = replica;
SELECT throws_ok($$UPDATE holds_trg.a SET amount = 0 WHERE id = 11$$, 'PV001', NULL, 'replica mode: UPDATE refused');
SELECT throws_ok($$TRUNCATE holds_trg.a$$, 'PV001', NULL, 'replica mode: TRUNCATE refused');
SET LOCAL session_replication_role = origin;

-- A second hold; releasing one keeps the triggers, releasing the last removes them.
SELECT privacy.place_hold('subject', 's2', 't1', 'case 2') AS h2 \gset
SELECT privacy.release_hold(:h1, 'settled');
SELECT is(pg_temp.hold_triggers('holds_trg.a'), :both, 'triggers stay while another hold is active');
SELECT throws_ok($$DELETE FROM holds_trg.a WHERE id = 7$$, 'PV001', NULL, 'the remaining hold is enforced');
SELECT privacy.release_hold(:h2, 'settled');
SELECT is(pg_temp.hold_triggers('holds_trg.a'), '', 'release of the last hold removed the triggers');
SELECT is(pg_temp.hold_triggers('holds_trg.b'), '', 'from every table');
SELECT lives_ok($$DELETE FROM holds_trg.a WHERE id = 11$$, 'DELETE allowed after release');

-- A table hold covers its table only.
SELECT privacy.place_hold('table', 'holds_trg.b', NULL, 'regulator') AS h3 \gset
SELECT is(pg_temp.hold_triggers('holds_trg.b'), :both, 'table hold: its table has the triggers');
SELECT is(pg_temp.hold_triggers('holds_trg.a'), '', 'table hold: other tables have none');
SELECT throws_ok($$DELETE FROM holds_trg.b WHERE id = 1$$, 'PV001', NULL, 'table hold enforced');
SELECT privacy.release_hold(:h3, 'done');
SELECT is(pg_temp.hold_triggers('holds_trg.b'), '', 'released table hold: triggers gone');

-- A table registered while a tenant hold is active gets the triggers at once.
SELECT privacy.place_hold('tenant', 't1', NULL, 'audit') AS h4 \gset
SELECT privacy.register_table('holds_trg.c', 'subject', 'tenant');
SELECT is(pg_temp.hold_triggers('holds_trg.c'), :both, 'registered under a tenant hold: triggers attached');
SELECT throws_ok($$DELETE FROM holds_trg.c WHERE id = 1$$, 'PV001', NULL, 'and enforced');
SELECT privacy.release_hold(:h4, 'done');
SELECT is(pg_temp.hold_triggers('holds_trg.c'), '', 'released: gone from the new table too');

-- Expiry: the expiry step deactivates the hold, audits it, and drops the triggers.
SELECT privacy.place_hold('subject', 's3', 't1', 'short', now() + interval '1 hour') AS h5 \gset
SELECT is(pg_temp.hold_triggers('holds_trg.a'), :both, 'expiring hold: triggers attached');
UPDATE privacy.legal_holds SET expires_at = now() - interval '1 second' WHERE id = :h5;  -- time passes
SELECT privacy._expire_holds();
SELECT is((SELECT active FROM privacy.legal_holds WHERE id = :h5), false, 'expiry step deactivated the hold');
SELECT is((SELECT count(*) FROM privacy.audit_log WHERE action = 'hold_expired' AND target = 'hold ' || :h5),
          1::bigint, 'hold_expired audited');
SELECT is(pg_temp.hold_triggers('holds_trg.a'), '', 'expiry step removed the triggers');

-- A hold written directly into privacy.legal_holds: the launcher's catch-up step (run here by
-- hand) attaches the triggers; removing it, detaches them.
INSERT INTO privacy.legal_holds (scope, scope_id, tenant_id, reason) VALUES ('tenant', 't0', 't0', 'direct');
SELECT is(privacy._sync_hold_triggers(), 0, 'sync left no table behind');
SELECT is(pg_temp.hold_triggers('holds_trg.a') || ';' || pg_temp.hold_triggers('holds_trg.c'),
          :both || ';' || :both, 'sync attached the triggers for a directly inserted hold');
DELETE FROM privacy.legal_holds WHERE reason = 'direct';
SELECT privacy._sync_hold_triggers();
SELECT is(pg_temp.hold_triggers('holds_trg.a'), '', 'sync detached them once no hold is left');

-- Triggers of 0.1.0 (statement triggers with transition tables, an ENABLE REPLICA row trigger),
-- as an update leaves them on a held table: privacy._hold_guard refuses to run as a statement
-- trigger (fail closed), and the next sync (the launcher's reconcile step, run here by hand)
-- replaces them with this version's.
CREATE TRIGGER privacy_hold_guard_delete AFTER DELETE ON holds_trg.a REFERENCING OLD TABLE AS privacy_old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION privacy._hold_guard('subject', 'tenant');
CREATE TRIGGER privacy_hold_guard_replica AFTER UPDATE OR DELETE ON holds_trg.a
    FOR EACH ROW EXECUTE FUNCTION privacy._hold_guard('subject', 'tenant');
ALTER TABLE holds_trg.a ENABLE REPLICA TRIGGER privacy_hold_guard_replica;
-- 0.1.0 put its statement triggers on partitioned tables as well; row triggers go on leaves only.
CREATE TABLE holds_trg.p (tenant text NOT NULL, id int NOT NULL, subject text, PRIMARY KEY (tenant, id))
    PARTITION BY LIST (tenant);
CREATE TABLE holds_trg.p0 PARTITION OF holds_trg.p FOR VALUES IN ('t0');
CREATE INDEX ON holds_trg.p (tenant, subject, id);
SELECT privacy.register_table('holds_trg.p', 'subject', 'tenant');
CREATE TRIGGER privacy_hold_guard_update AFTER UPDATE ON holds_trg.p
    REFERENCING OLD TABLE AS privacy_old_rows NEW TABLE AS privacy_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION privacy._hold_guard('subject', 'tenant');
INSERT INTO privacy.legal_holds (scope, scope_id, tenant_id, reason) VALUES ('subject', 's4', 't0', 'upgrade');
SELECT throws_ok($$DELETE FROM holds_trg.a WHERE id = 5$$, '55000',
                 'privacy._hold_guard() on table holds_trg.a must be an AFTER UPDATE or AFTER DELETE trigger FOR EACH ROW',
                 'a statement trigger of 0.1.0 fails closed');
SELECT is(privacy._sync_hold_triggers(), 0, 'sync left no table behind');
SELECT is(pg_temp.hold_triggers('holds_trg.a'), :both, 'sync replaced the triggers of 0.1.0');
SELECT is(pg_temp.hold_triggers('holds_trg.p') || ';' || pg_temp.hold_triggers('holds_trg.p0'),
          'privacy_hold_guard_truncate:A;' || :both,
          'on a partitioned table, only the TRUNCATE trigger stays; its partition has all three');
SELECT is((SELECT string_agg(tgname || ':' || tgtype, ',' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = 'holds_trg.a'::regclass),
          'privacy_hold_guard_delete:9,privacy_hold_guard_truncate:34,privacy_hold_guard_update:17',
          'with row triggers');
SELECT throws_ok($$DELETE FROM holds_trg.a WHERE id = 4$$, 'PV001', NULL, 'the replaced triggers enforce the hold');
SELECT lives_ok($$DELETE FROM holds_trg.a WHERE id = 3$$, 'and let other rows go');
DELETE FROM privacy.legal_holds WHERE reason = 'upgrade';
SELECT privacy._sync_hold_triggers();

SELECT * FROM finish();
ROLLBACK;
