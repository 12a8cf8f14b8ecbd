-- Legal holds: place/release validation, auditing, and the enforcement triggers (DELETE,
-- UPDATE, TRUNCATE, DROP) as superuser, as table owner and in replica mode. Everything runs in
-- one transaction (rolled back), which also exercises a backend seeing its own new holds.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_privacy;
BEGIN;
SELECT plan(65);

CREATE SCHEMA holds_tap;
CREATE TABLE holds_tap.orders (id int PRIMARY KEY, tenant text, subject text, amount int,
                               privacy_erased_by bigint);
INSERT INTO holds_tap.orders
SELECT g, 't' || (g % 2), 's' || (g % 5), g, NULL FROM generate_series(1, 40) g;
UPDATE holds_tap.orders SET privacy_erased_by = 7 WHERE id IN (1, 21, 31);   -- soft-deleted before any hold
CREATE TABLE holds_tap.single (id int PRIMARY KEY, subject text, note text);
INSERT INTO holds_tap.single SELECT g, 's' || (g % 5), 'n' FROM generate_series(1, 10) g;
CREATE TABLE holds_tap.unregistered (id int);
-- Order lines that go with their order (ON DELETE CASCADE): a cascade reaches held lines too.
CREATE TABLE holds_tap.shipments (id int PRIMARY KEY);
CREATE TABLE holds_tap.lines (id int PRIMARY KEY, shipment int REFERENCES holds_tap.shipments ON DELETE CASCADE,
                              tenant text, subject text);
INSERT INTO holds_tap.shipments VALUES (1), (2);
INSERT INTO holds_tap.lines VALUES (1, 1, 't0', 's0'), (2, 1, 't1', 's1'), (3, 2, 't0', 's0');
INSERT INTO privacy.registered_tables (relation, subject_column, tenant_column, key_columns)
VALUES ('holds_tap.orders', 'subject', 'tenant', '{id}'), ('holds_tap.single', 'subject', NULL, '{id}'),
       ('holds_tap.lines', 'subject', 'tenant', '{id}');
SELECT privacy._attach_hold_triggers('holds_tap.orders', 'subject', 'tenant');
SELECT privacy._attach_hold_triggers('holds_tap.single', 'subject', NULL);
SELECT privacy._attach_hold_triggers('holds_tap.lines', 'subject', 'tenant');

-- Triggers exist and fire ALWAYS.
SELECT is((SELECT string_agg(tgname || ':' || tgenabled::text, ',' ORDER BY tgname) FROM pg_trigger
            WHERE tgrelid = 'holds_tap.orders'::regclass),
          'privacy_hold_guard_delete:A,privacy_hold_guard_truncate:A,privacy_hold_guard_update:A',
          'the triggers are ENABLE ALWAYS (the apply worker too)');
SELECT throws_ok($$SELECT privacy._attach_hold_triggers('holds_tap.orders', 'nosuch', 'tenant')$$,
                 '42703', NULL, 'attaching with a missing column is refused');

-- Validation of place_hold: nothing is inserted on error.
SELECT throws_ok($$SELECT privacy.place_hold('subject', 's1', 't1', '  ')$$, '22023', 'a legal hold needs a reason', 'blank reason');
SELECT throws_ok($$SELECT privacy.place_hold('subject', 's1', 't1', NULL)$$, '22023', 'a legal hold needs a reason', 'NULL reason');
SELECT throws_ok($$SELECT privacy.place_hold('subject', '', 't1', 'r')$$, '22023', NULL, 'blank scope_id');
SELECT throws_ok($$SELECT privacy.place_hold('subject', 's1', NULL, 'r')$$, '22023',
                 'a subject hold on "s1" needs the tenant the subject belongs to', 'subject hold needs tenant');
SELECT throws_ok($$SELECT privacy.place_hold('tenant', 't1', 't2', 'r')$$, '22023', NULL, 'tenant hold with another tenant_id');
SELECT throws_ok($$SELECT privacy.place_hold('table', 'holds_tap.nosuch', NULL, 'r')$$, '42P01', NULL, 'unknown table');
SELECT throws_ok($$SELECT privacy.place_hold('table', 'holds_tap.unregistered', NULL, 'r')$$, '22023',
                 'table holds_tap.unregistered is not registered with pg_privacy', 'unregistered table');
SELECT throws_ok($$SELECT privacy.place_hold('subject', 's1', 't1', 'r', now() - interval '1 minute')$$, '22023', NULL,
                 'expires_at in the past');
SELECT is((SELECT count(*) FROM privacy.legal_holds), 0::bigint, 'failed calls placed no hold');

-- No hold: everything goes.
SELECT lives_ok($$UPDATE holds_tap.orders SET amount = amount WHERE id = 1$$, 'UPDATE without holds');

-- A subject hold.
SELECT privacy.place_hold('subject', 's1', 't1', 'case 17: litigation') AS subject_hold \gset
SELECT is((SELECT row(scope, scope_id, tenant_id, created_by, active, block_updates)::text
             FROM privacy.legal_holds WHERE id = :subject_hold),
          '(subject,s1,t1,' || session_user || ',t,t)', 'the hold row');
SELECT is((SELECT count(*) FROM privacy.audit_log WHERE action = 'hold_placed' AND target = 'hold ' || :subject_hold
             AND tenant_id = 't1' AND actor = session_user), 1::bigint, 'hold_placed audited');
SELECT throws_ok($$DELETE FROM holds_tap.orders WHERE subject = 's1' AND tenant = 't1'$$, 'PV001', NULL,
                 'superuser DELETE of held rows refused');
SELECT throws_like($$DELETE FROM holds_tap.orders WHERE id = 11$$,
                   '%blocked by legal hold ' || :subject_hold || ' (subject s1)%', 'the error names the hold');
SELECT throws_ok($$UPDATE holds_tap.orders SET amount = 0 WHERE id = 11$$, 'PV001', NULL, 'UPDATE of a held row refused');
SELECT throws_ok($$UPDATE holds_tap.orders SET privacy_erased_by = 99 WHERE id = 11$$, 'PV001', NULL,
                 'marking a held row as erased is refused too');
SELECT throws_ok($$TRUNCATE holds_tap.orders$$, 'PV001', NULL, 'TRUNCATE of a table with held rows refused');
SET LOCAL session_replication_role = replica;
SELECT throws_ok($$DELETE FROM holds_tap.orders WHERE id = 11$$, 'PV001', NULL, 'replica mode: DELETE refused');
SELECT throws_ok($$UPDATE holds_tap.orders SET amount = 0 WHERE id = 11$$, 'PV001', NULL, 'replica mode: UPDATE refused');
SELECT throws_ok($$TRUNCATE holds_tap.orders$$, 'PV001', NULL, 'replica mode: TRUNCATE refused');
SET LOCAL session_replication_role = origin;
SELECT is((SELECT count(*) FROM holds_tap.orders WHERE subject = 's1' AND tenant = 't1'), 4::bigint,
          'held rows are all still there');
-- Rows of other subjects, and the same subject id in another tenant, are not held.
SELECT lives_ok($$DELETE FROM holds_tap.orders WHERE id IN (2, 4)$$, 'other subjects can be deleted');
SELECT lives_ok($$UPDATE holds_tap.orders SET amount = -1 WHERE subject = 's1' AND tenant = 't0'$$,
                'same subject id in another tenant is not held');
-- A table owner that is not superuser is refused as well.
CREATE ROLE holds_tap_owner NOLOGIN;
ALTER TABLE holds_tap.orders OWNER TO holds_tap_owner;
GRANT USAGE ON SCHEMA holds_tap TO holds_tap_owner;
SET LOCAL ROLE holds_tap_owner;
SELECT throws_ok($$DELETE FROM holds_tap.orders WHERE id = 11$$, 'PV001', NULL, 'table owner DELETE refused');
SELECT throws_ok($$TRUNCATE holds_tap.orders$$, 'PV001', NULL, 'table owner TRUNCATE refused');
RESET ROLE;
-- The check runs when the statement has changed its rows: the error undoes the whole statement.
SELECT throws_ok($$DELETE FROM holds_tap.orders WHERE tenant = 't1'$$, 'PV001', NULL,
                 'a DELETE of many rows, some held, is refused');
SELECT is((SELECT count(*) FROM holds_tap.orders WHERE tenant = 't1'), 20::bigint, 'and deleted none of them');
-- Every way PostgreSQL updates or deletes rows goes through the same check.
SELECT throws_ok($$INSERT INTO holds_tap.orders VALUES (11, 't1', 's1', 0) ON CONFLICT (id) DO UPDATE SET amount = 0$$,
                 'PV001', NULL, 'INSERT ... ON CONFLICT DO UPDATE of a held row refused');
SELECT throws_ok($$MERGE INTO holds_tap.orders o USING (VALUES (11)) v(id) ON o.id = v.id WHEN MATCHED THEN DELETE$$,
                 'PV001', NULL, 'MERGE ... DELETE of a held row refused');
SELECT throws_ok($$MERGE INTO holds_tap.orders o USING (VALUES (11)) v(id) ON o.id = v.id
                   WHEN MATCHED THEN UPDATE SET amount = 0$$, 'PV001', NULL, 'MERGE ... UPDATE of a held row refused');
SELECT throws_ok($$DELETE FROM holds_tap.shipments WHERE id = 1$$, 'PV001', NULL,
                 'a foreign key cascade reaching a held row is refused');
SELECT lives_ok($$DELETE FROM holds_tap.shipments WHERE id = 2$$, 'a cascade reaching no held row goes ahead');
-- A statement whose rows do not fit in work_mem: the transition tables spill to disk and are
-- read back from there.
INSERT INTO holds_tap.orders SELECT g, 't1', 'bulk', g, NULL FROM generate_series(1000, 4999) g;
SET LOCAL work_mem = '64kB';
SELECT throws_ok($$DELETE FROM holds_tap.orders WHERE id >= 1000 OR id = 11$$, 'PV001', NULL,
                 'DELETE with spilled transition table refused');
SELECT throws_ok($$UPDATE holds_tap.orders SET amount = -amount WHERE id >= 1000 OR id = 11$$, 'PV001', NULL,
                 'UPDATE with spilled transition tables refused');
SELECT lives_ok($$UPDATE holds_tap.orders SET amount = -amount WHERE id >= 1000$$, 'and without the held row allowed');
RESET work_mem;
DELETE FROM holds_tap.orders WHERE subject = 'bulk';
-- Restoring soft-deleted held rows (clearing privacy_erased_by only) stays possible.
SELECT throws_ok($$UPDATE holds_tap.orders SET privacy_erased_by = NULL, amount = 0 WHERE id = 31$$, 'PV001', NULL,
                 'restore that also changes data is refused');
SELECT throws_ok($$UPDATE holds_tap.orders SET privacy_erased_by = NULL, id = id + 1000 WHERE id = 21$$, 'PV001', NULL,
                 'restore that also changes the key is refused');
SELECT throws_ok($$UPDATE holds_tap.orders SET privacy_erased_by = NULL, amount = CASE id WHEN 11 THEN 0 ELSE amount END
                    WHERE id IN (11, 21)$$, 'PV001', NULL, 'a restore and a change of another held row in one statement: refused');
SELECT lives_ok($$UPDATE holds_tap.orders SET privacy_erased_by = NULL WHERE id IN (1, 21)$$,
                'restore of several held rows in one statement allowed');
SELECT lives_ok($$UPDATE holds_tap.orders SET privacy_erased_by = NULL WHERE id = 31$$, 'restore of a held row allowed');
-- DROP TABLE of a registered table under hold.
SELECT throws_ok($$DROP TABLE holds_tap.orders$$, 'PV001', NULL, 'DROP TABLE refused while a hold is active');
SELECT throws_ok($$DROP SCHEMA holds_tap CASCADE$$, 'PV001', NULL, 'DROP SCHEMA CASCADE refused too');

-- Release: validation, audit, and rows are free again.
SELECT throws_ok(format('SELECT privacy.release_hold(%s, %L)', :subject_hold, ' '), '22023', NULL, 'release needs a reason');
SELECT throws_ok($$SELECT privacy.release_hold(-1, 'r')$$, '22023', 'legal hold -1 does not exist', 'unknown hold');
SELECT lives_ok(format('SELECT privacy.release_hold(%s, %L)', :subject_hold, 'case settled'), 'release');
SELECT throws_ok(format('SELECT privacy.release_hold(%s, %L)', :subject_hold, 'again'), '55000', NULL,
                 'releasing twice is refused');
SELECT is((SELECT row(active, released_by, release_reason)::text FROM privacy.legal_holds WHERE id = :subject_hold),
          '(f,' || session_user || ',"case settled")', 'released row');
SELECT is((SELECT count(*) FROM privacy.audit_log WHERE action = 'hold_released' AND target = 'hold ' || :subject_hold),
          1::bigint, 'hold_released audited');
SELECT lives_ok($$DELETE FROM holds_tap.orders WHERE id = 11$$, 'DELETE allowed after release');

-- block_updates = false: UPDATE allowed, DELETE still refused.
SELECT privacy.place_hold('tenant', 't1', NULL, 'audit 2026', block_updates => false) AS tenant_hold \gset
SELECT lives_ok($$UPDATE holds_tap.orders SET amount = 0 WHERE tenant = 't1'$$, 'UPDATE allowed with block_updates = false');
SELECT throws_ok($$DELETE FROM holds_tap.orders WHERE id = 13$$, 'PV001', NULL, 'DELETE refused by a tenant hold');
SELECT lives_ok($$DELETE FROM holds_tap.orders WHERE id = 14$$, 'other tenant unaffected');
-- A tenant hold on a table without tenant column: its rows cannot be told apart, so it holds them.
SELECT throws_ok($$DELETE FROM holds_tap.single WHERE id = 1$$, 'PV001', NULL,
                 'single-tenant table: tenant hold refuses (fail safe)');
SELECT lives_ok(format('SELECT privacy.release_hold(%s, %L)', :tenant_hold, 'done'), 'release tenant hold');

-- A subject hold on a single-tenant table matches the subject alone.
SELECT privacy.place_hold('subject', 's3', 't9', 'case 18') AS single_hold \gset
SELECT throws_ok($$DELETE FROM holds_tap.single WHERE id = 3$$, 'PV001', NULL, 'single-tenant table: held subject refused');
SELECT lives_ok($$DELETE FROM holds_tap.single WHERE id = 4$$, 'single-tenant table: other subject allowed');
SELECT throws_ok($$TRUNCATE holds_tap.single$$, 'PV001', NULL, 'single-tenant table: TRUNCATE with a held subject refused');
SELECT lives_ok($$TRUNCATE holds_tap.orders$$, 'TRUNCATE of a table without held rows allowed');
SELECT lives_ok(format('SELECT privacy.release_hold(%s, %L)', :single_hold, 'done'), 'release subject hold');

-- A table hold (unqualified name of a registered table is accepted), limited to one tenant.
INSERT INTO holds_tap.orders VALUES (100, 't1', 's1', 1, NULL), (101, 't2', 's1', 1, NULL);
SELECT privacy.place_hold('table', 'orders', 't2', 'regulator request') AS table_hold \gset
SELECT is((SELECT scope_id FROM privacy.legal_holds WHERE id = :table_hold), 'holds_tap.orders', 'table stored qualified');
SELECT throws_ok($$DELETE FROM holds_tap.orders WHERE id = 101$$, 'PV001', NULL, 'table hold refuses its tenant''s rows');
SELECT lives_ok($$DELETE FROM holds_tap.orders WHERE id = 100$$, 'table hold leaves other tenants');

-- An expired hold no longer holds (even before the launcher marks it inactive).
UPDATE privacy.legal_holds SET active = false, released_at = now(), released_by = 'test' WHERE id = :table_hold;
INSERT INTO privacy.legal_holds (scope, scope_id, tenant_id, reason, expires_at)
VALUES ('subject', 's1', 't2', 'expired', now() - interval '1 second');
SELECT lives_ok($$DELETE FROM holds_tap.orders WHERE id = 101$$, 'expired hold: DELETE allowed');

SELECT * FROM finish();
ROLLBACK;
