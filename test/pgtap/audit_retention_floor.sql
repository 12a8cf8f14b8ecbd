-- The audit retention floor (issue 12): an administrator whose actions the trail records cannot
-- shorten it. configure_tenant refuses an audit_retention below privacy.audit_retention_floor
-- (1 year by default, superuser only), and the purge never deletes rows younger than the floor
-- whatever retention is stored. The trail still verifies.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pg_privacy;
-- privacy_test.purge_audit_as_of: the test-only module's purge as of a later time.
CREATE EXTENSION IF NOT EXISTS privacy_test;
SELECT plan(20);

CREATE FUNCTION pg_temp.chain_ids(c text) RETURNS bigint[] LANGUAGE sql STABLE
AS $$ SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM privacy.audit_log WHERE chain = c $$;
-- The SQLSTATE, message and hint of a statement's error.
CREATE FUNCTION pg_temp.error_of(statement text) RETURNS text LANGUAGE plpgsql AS $fn$
DECLARE
    state text; message text; hint text;
BEGIN
    EXECUTE statement;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
    RETURN state || ': ' || message || ' HINT: ' || hint;
END
$fn$;

-- ---- The setting: one year by default, set only in the server configuration.
SELECT is(current_setting('privacy.audit_retention_floor', true), '365d', 'the floor is one year by default');
SELECT throws_ok($$SET privacy.audit_retention_floor = 0$$, '55P02', NULL,
                 'not even a superuser lowers the floor for a session');
SET LOCAL ROLE privacy_admin;
SELECT throws_ok($$SELECT set_config('privacy.audit_retention_floor', '0', true)$$, NULL, NULL,
                 'an administrator cannot change it');
SELECT throws_ok($$SHOW privacy.audit_retention_floor$$, '42501', NULL,
                 'nor read it: it is a superuser setting');
RESET ROLE;

-- ---- The attack: an administrator sets a one-second retention to wipe the tenant's trail.
SELECT lives_ok($$SELECT privacy.configure_tenant('floor_victim', display_name => 'Victim')$$,
                'a tenant with an audit trail');
CREATE TEMP TABLE victim_before AS
    SELECT pg_temp.chain_ids('floor_victim') AS ids,
           (SELECT audit_retention FROM privacy.tenants WHERE tenant_id = 'floor_victim') AS retention;
SET LOCAL ROLE privacy_admin;
SELECT is(pg_temp.error_of($$SELECT privacy.configure_tenant('floor_victim', audit_retention => '1 second')$$),
          '22023: audit_retention for tenant "floor_victim" must be at least privacy.audit_retention_floor '
          || '(365 days), not 00:00:01 HINT: Audit rows are kept at least as long as '
          || 'privacy.audit_retention_floor, which only a superuser can lower (postgresql.conf). Pass a '
          || 'longer audit_retention, e.g. ''1 year''.',
          'a one-second audit_retention is refused, naming the tenant, the value and the floor');
SELECT throws_ok($$SELECT privacy.configure_tenant('floor_victim', audit_retention => '364 days')$$,
                 '22023', NULL, 'a day short of the floor is refused too');
SELECT throws_ok($$SELECT privacy.configure_tenant('floor_victim', display_name => 'Renamed', reset => true,
                                                   audit_retention => '1 hour')$$,
                 '22023', NULL, 'also together with other settings');
RESET ROLE;
SELECT is((SELECT audit_retention FROM privacy.tenants WHERE tenant_id = 'floor_victim'),
          (SELECT retention FROM victim_before), 'a refused call changes no setting');
SELECT is(pg_temp.chain_ids('floor_victim'), (SELECT ids FROM victim_before),
          'and writes nothing to the trail');

SET LOCAL ROLE privacy_admin;
SELECT lives_ok($$SELECT privacy.configure_tenant('floor_victim', audit_retention => '1 year')$$,
                'a retention of one calendar year meets the one-year floor');
RESET ROLE;
SELECT is((SELECT detail->'after'->>'audit_retention' FROM privacy.audit_log
            WHERE chain = 'floor_victim' ORDER BY id DESC LIMIT 1),
          '1 year', 'the retention change is in the tenant''s chain');
SELECT is(privacy._purge_audit(), 0::bigint, 'the purge as of now deletes nothing');
SELECT is((SELECT action FROM privacy.audit_log WHERE chain = 'floor_victim' ORDER BY id DESC LIMIT 1),
          'settings_changed', 'the retention change stays in the chain');

-- ---- A retention stored below the floor (set before the floor was raised) does not count: the
--      purge keeps the last floor period of the chain, and the platform chain's too.
SELECT lives_ok($$SELECT privacy.configure_tenant('floor_legacy', display_name => 'Legacy')$$,
                'a tenant whose retention was set to one second before the floor was raised ...');
UPDATE privacy.tenants SET audit_retention = interval '1 second' WHERE tenant_id = 'floor_legacy';
DO $$ BEGIN PERFORM privacy._audit('floor_test', 'floor_legacy', NULL, 'row ' || g) FROM generate_series(1, 3) g; END $$;
CREATE TEMP TABLE legacy_before AS SELECT pg_temp.chain_ids('floor_legacy') AS ids;
DO $$ BEGIN PERFORM privacy_test.purge_audit_as_of(now() + interval '1 day'); END $$;
SELECT is(pg_temp.chain_ids('floor_legacy'), (SELECT ids FROM legacy_before),
          '... keeps its rows in a purge as of a day from now');
DO $$ BEGIN PERFORM privacy_test.purge_audit_as_of(now() + interval '364 days'); END $$;
SELECT is(pg_temp.chain_ids('floor_legacy'), (SELECT ids FROM legacy_before),
          'and as of 364 days from now: nothing of the floor period is deleted');
SELECT is((SELECT ok FROM privacy.verify_audit_log()), true, 'the trail verifies');

-- Beyond the floor the purge goes on as before: the floor, not the stored second, decides.
DO $$ BEGIN PERFORM privacy_test.purge_audit_as_of(now() + interval '366 days'); END $$;
SELECT is((SELECT array_agg(action) FROM privacy.audit_log WHERE chain = 'floor_legacy'), ARRAY['audit_purged'],
          'as of more than a year from now the chain is purged');
SELECT is((SELECT ok FROM privacy.verify_audit_log()), true, 'and the trail still verifies');

SELECT * FROM finish();
ROLLBACK;
