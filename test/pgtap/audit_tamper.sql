-- The audit trail is append-only and every kind of tampering is found (issue 6, docs/audit.md).
-- Tampering is done the only way left: a superuser who disables the trigger. Each case runs in a
-- subtransaction that is rolled back (pg_temp.verify_after), so the cases do not interfere.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pg_privacy;
SELECT plan(24);

-- An independent SQL re-implementation of the canonical encoding of core/hash_chain.hpp.
CREATE FUNCTION pg_temp.enc(v text) RETURNS text LANGUAGE sql IMMUTABLE
AS $$ SELECT CASE WHEN v IS NULL THEN '~;' ELSE octet_length(v) || ':' || v || ';' END $$;
CREATE FUNCTION pg_temp.row_hash(prev text, l privacy.audit_log) RETURNS text LANGUAGE sql STABLE
AS $$
    SELECT encode(sha256(convert_to(prev
        || pg_temp.enc(l.id::text) || pg_temp.enc(l.chain)
        || pg_temp.enc(to_char(l.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
        || pg_temp.enc(l.actor) || pg_temp.enc(l.acting_role) || pg_temp.enc(l.client_addr)
        || pg_temp.enc(l.application_name) || pg_temp.enc(l.action) || pg_temp.enc(l.tenant_id)
        || pg_temp.enc(l.job_id::text) || pg_temp.enc(l.target) || pg_temp.enc(l.outcome)
        || pg_temp.enc(l.detail::text), 'UTF8')), 'hex')
$$;
-- A perfect forgery: a new row with id new_id that links to row after_id, correctly hashed.
CREATE FUNCTION pg_temp.forged(after_id bigint, new_id bigint) RETURNS privacy.audit_log
LANGUAGE plpgsql AS $$
DECLARE
    l privacy.audit_log;
BEGIN
    SELECT * INTO l FROM privacy.audit_log WHERE id = after_id;
    l.prev_hash := l.hash;
    l.id := new_id;
    l.action := 'forged';
    l.at := l.at + interval '1 microsecond';
    l.hash := pg_temp.row_hash(l.prev_hash, l);
    RETURN l;
END
$$;
-- Runs the tampering SQL with the triggers disabled, verifies, rolls the tampering back and
-- returns 'ok/first_bad_id' ('-' for none).
CREATE FUNCTION pg_temp.verify_after(tamper text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    result text;
BEGIN
    BEGIN
        ALTER TABLE privacy.audit_log DISABLE TRIGGER ALL;
        ALTER TABLE privacy.audit_chains DISABLE TRIGGER ALL;
        EXECUTE tamper;
        SELECT v.ok || '/' || coalesce(v.first_bad_id::text, '-') INTO result
        FROM privacy.verify_audit_log() v;
        RAISE EXCEPTION 'pg_temp.verify_after: undo';
    EXCEPTION WHEN raise_exception THEN
        IF SQLERRM <> 'pg_temp.verify_after: undo' THEN RAISE; END IF;
    END;
    RETURN result;
END
$$;

-- Fixture: chain tamper_t (r1..r5) interleaved with chain tamper_u; two free ids after r2.
-- On a fresh database the ids cross 99 -> 100, so text order differs from numeric order.
CREATE TEMP TABLE moved_ids AS SELECT setval('privacy.audit_log_id_seq', 97)
    WHERE (SELECT last_value FROM privacy.audit_log_id_seq) < 97;
CREATE TEMP TABLE fx (name text PRIMARY KEY, id bigint NOT NULL);
INSERT INTO fx VALUES ('r1', privacy._audit('tamper_test', 'tamper_t', 1, 'r1'));
INSERT INTO fx VALUES ('u1', privacy._audit('tamper_test', 'tamper_u', 1, 'u1'));
INSERT INTO fx VALUES ('r2', privacy._audit('tamper_test', 'tamper_t', 2, 'r2', 'ok', '{"rows": 2}'));
CREATE TEMP TABLE skipped_ids AS SELECT nextval('privacy.audit_log_id_seq') FROM generate_series(1, 2);
INSERT INTO fx VALUES ('r3', privacy._audit('tamper_test', 'tamper_t', 3, 'r3'));
INSERT INTO fx VALUES ('u2', privacy._audit('tamper_test', 'tamper_u', 2, 'u2'));
INSERT INTO fx VALUES ('r4', privacy._audit('tamper_test', 'tamper_t', 4, 'r4'));
INSERT INTO fx VALUES ('r5', privacy._audit('tamper_test', 'tamper_t', NULL, 'r5', 'error', '{"ü": "ß;:~"}'));
CREATE FUNCTION pg_temp.fx(n text) RETURNS bigint LANGUAGE sql STABLE
AS $$ SELECT id FROM fx WHERE name = n $$;

-- The hashes are what the documented encoding says (an auditor's re-implementation agrees).
SELECT is((SELECT count(*) FROM privacy.audit_log l JOIN fx USING (id)
           WHERE l.hash = pg_temp.row_hash(l.prev_hash, l)), 7::bigint,
          'an independent SQL implementation of the canonical encoding reproduces every hash');
SELECT is((SELECT prev_hash FROM privacy.audit_log WHERE id = pg_temp.fx('r2')),
          (SELECT hash FROM privacy.audit_log WHERE id = pg_temp.fx('r1')),
          'each row links to the previous row of its own chain');

-- Untouched: ok, every row checked.
SELECT is((SELECT ok FROM privacy.verify_audit_log()), true, 'the untouched trail verifies');
SELECT is((SELECT checked FROM privacy.verify_audit_log()), (SELECT count(*) FROM privacy.audit_log),
          'verify_audit_log checks every row');
SELECT is(pg_temp.verify_after('SELECT 1'), 'true/-', 'disabling the triggers alone changes nothing');

-- Append-only, for a superuser, even in replica mode.
SET LOCAL session_replication_role = replica;
SELECT throws_ok(format('UPDATE privacy.audit_log SET outcome = %L WHERE id = %s', 'ok', pg_temp.fx('r3')),
                 '42501', 'UPDATE on privacy.audit_log is not allowed: the audit trail is append-only',
                 'UPDATE of the trail is refused for a superuser in replica mode');
SELECT throws_ok(format('DELETE FROM privacy.audit_log WHERE id = %s', pg_temp.fx('r1')), '42501', NULL,
                 'DELETE of the trail is refused');
SELECT throws_ok('TRUNCATE privacy.audit_log', '42501', NULL, 'TRUNCATE of the trail is refused');
SELECT throws_ok('UPDATE privacy.audit_chains SET last_id = 0', '42501', NULL,
                 'moving a chain head by hand is refused');
SELECT throws_ok($$DELETE FROM privacy.audit_chains WHERE chain = 'tamper_t'$$, '42501', NULL,
                 'deleting a chain head is refused');
SELECT throws_ok('TRUNCATE privacy.audit_chains', '42501', NULL, 'TRUNCATE of the chain heads is refused');
RESET session_replication_role;
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgrelid IN ('privacy.audit_log'::regclass, 'privacy.audit_chains'::regclass)
             AND tgenabled = 'A'), 4::bigint, 'the four guard triggers are ENABLE ALWAYS');

-- Every kind of tampering, with the row where the chain breaks.
SELECT is(pg_temp.verify_after(format($$UPDATE privacy.audit_log SET outcome = 'refused' WHERE id = %s$$, pg_temp.fx('r3'))),
          'false/' || pg_temp.fx('r3'), 'a changed field is found at its row');
SELECT is(pg_temp.verify_after(format($$UPDATE privacy.audit_log SET detail = '{"rows": 3}' WHERE id = %s$$, pg_temp.fx('r2'))),
          'false/' || pg_temp.fx('r2'), 'a changed detail is found at its row');
SELECT is(pg_temp.verify_after(format($$UPDATE privacy.audit_log SET at = at - interval '1 day' WHERE id = %s$$, pg_temp.fx('r4'))),
          'false/' || pg_temp.fx('r4'), 'a changed time is found at its row');
SELECT is(pg_temp.verify_after(format('DELETE FROM privacy.audit_log WHERE id = %s', pg_temp.fx('r3'))),
          'false/' || pg_temp.fx('r4'), 'a deleted middle row is found at the next row');
SELECT is(pg_temp.verify_after(format('DELETE FROM privacy.audit_log WHERE id = %s', pg_temp.fx('r5'))),
          'false/' || pg_temp.fx('r5'), 'a deleted newest row is found through the chain head');
SELECT is(pg_temp.verify_after(format('DELETE FROM privacy.audit_log WHERE id = %s', pg_temp.fx('r1'))),
          'false/' || pg_temp.fx('r2'), 'a deleted first row is found at the next row');
SELECT is(pg_temp.verify_after(format('INSERT INTO privacy.audit_log SELECT (pg_temp.forged(%s, %s)).*',
                                      pg_temp.fx('r2'), pg_temp.fx('r2') + 1)),
          'false/' || pg_temp.fx('r3'), 'a perfectly hashed inserted row is found where the chain no longer links');
SELECT is(pg_temp.verify_after(format($$INSERT INTO privacy.audit_log SELECT %s, chain, at, actor, acting_role,
                                        client_addr, application_name, action, tenant_id, job_id, target, outcome,
                                        detail, prev_hash, hash FROM privacy.audit_log WHERE id = %s$$,
                                      pg_temp.fx('r2') + 1, pg_temp.fx('r2'))),
          'false/' || (pg_temp.fx('r2') + 1), 'a copied row is found at its own id');
SELECT is(pg_temp.verify_after(format('INSERT INTO privacy.audit_log SELECT (pg_temp.forged(%1$s, %1$s + 1000000)).*',
                                      pg_temp.fx('r5'))),
          'false/' || (pg_temp.fx('r5') + 1000000), 'a perfectly hashed row appended behind the head is found');
SELECT is(pg_temp.verify_after(format('UPDATE privacy.audit_log SET id = -id WHERE id = %1$s;
                                       UPDATE privacy.audit_log SET id = %1$s WHERE id = %2$s;
                                       UPDATE privacy.audit_log SET id = %2$s WHERE id = -%1$s',
                                      pg_temp.fx('r2'), pg_temp.fx('r4'))),
          'false/' || pg_temp.fx('r2'), 'two rows swapped (reordered) are found at the first of them');
SELECT is(pg_temp.verify_after(format($$UPDATE privacy.audit_log SET chain = 'tamper_u', tenant_id = 'tamper_u' WHERE id = %s$$,
                                      pg_temp.fx('r3'))),
          'false/' || pg_temp.fx('r3'), 'a row moved to another chain is found');
SELECT is(pg_temp.verify_after(format($$UPDATE privacy.audit_chains SET last_id = %s WHERE chain = 'tamper_t'$$,
                                      pg_temp.fx('r4'))),
          'false/' || pg_temp.fx('r5'), 'a chain head moved back is found at the first row it no longer covers');

SELECT * FROM finish();
ROLLBACK;
