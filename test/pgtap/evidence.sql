-- Compliance evidence as seen from SQL (docs/compliance.md): the records of processing, who may
-- touch the signing key, evidence that cannot be changed, and how privacy.replay_erasures and
-- privacy.receipt refuse bad input. Receipts and replays of real jobs run through the workers in
-- test/t/100_receipts.pl and test/t/101_erasure_replay.pl.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pg_privacy;
SELECT plan(27);

CREATE ROLE evidence_admin IN ROLE privacy_admin;
CREATE ROLE evidence_auditor IN ROLE privacy_auditor;

-- Records of processing: which tables hold personal data and what an erasure does to each column.
CREATE SCHEMA evidence_app;
CREATE TABLE evidence_app.users (tenant text NOT NULL, id int NOT NULL, email text, PRIMARY KEY (tenant, id));
CREATE TABLE evidence_app.orders (tenant text NOT NULL, order_no int NOT NULL, customer text, note text, amount numeric,
                                  PRIMARY KEY (tenant, order_no));
CREATE INDEX ON evidence_app.orders (tenant, customer, order_no);
SELECT privacy.register_table('evidence_app.users', 'id', 'tenant');
SELECT privacy.register_table('evidence_app.orders', 'customer', 'tenant', 'anonymize');
SELECT privacy.set_column_rule('evidence_app.orders', 'note', 'null');
SELECT privacy.configure_tenant('evidence_t', recovery_window => '3 days');
SELECT is((SELECT columns FROM privacy.records_of_processing WHERE relation = 'evidence_app.users'::regclass),
          '{"tenant": {"type": "text", "on_erase": "deleted"}, "id": {"type": "integer", "on_erase": "deleted"},
            "email": {"type": "text", "on_erase": "deleted"}}'::jsonb,
          'a delete table: every column is deleted');
SELECT is((SELECT columns FROM privacy.records_of_processing WHERE relation = 'evidence_app.orders'::regclass),
          '{"tenant": {"type": "text", "on_erase": "kept (key)"}, "order_no": {"type": "integer", "on_erase": "kept (key)"},
            "customer": {"type": "text", "on_erase": "hash"}, "note": {"type": "text", "on_erase": "null"},
            "amount": {"type": "numeric", "on_erase": "keep"}}'::jsonb,
          'an anonymize table: each column''s rule, the subject hashed, keys kept');
SELECT is((SELECT row(owner, subject_column, tenant_column, on_erase, recovery_window, tenant_recovery_windows->>'evidence_t')::text
             FROM privacy.records_of_processing WHERE relation = 'evidence_app.orders'::regclass),
          format('(%s,customer,tenant,anonymize,"%s","3 days")', current_user, current_setting('privacy.recovery_window')::interval),
          'owner, subject and tenant columns, erase rule and retention of erased rows');
SET LOCAL ROLE evidence_auditor;
SELECT is((SELECT count(*) FROM privacy.records_of_processing WHERE relation::text LIKE 'evidence_app.%'), 2::bigint,
          'auditors read the records of processing');
RESET ROLE;

-- The signing key: nobody reads it; only admins set it; bad input changes nothing.
CREATE TEMP TABLE key_rows AS
    SELECT (SELECT count(*) FROM privacy.signing_certificates) + (SELECT count(*) FROM privacy.signing_key) AS n;
GRANT SELECT ON key_rows TO PUBLIC;
SELECT is((SELECT count(*) FROM (VALUES ('privacy_admin'), ('privacy_auditor'), ('privacy_requester')) r(role)
            WHERE has_table_privilege(r.role, 'privacy.signing_key', 'SELECT')), 0::bigint,
          'no role may read privacy.signing_key');
SET LOCAL ROLE evidence_admin;
SELECT throws_ok($$ SELECT * FROM privacy.signing_key $$, '42501', NULL, 'not even an admin');
SELECT throws_ok($$ SELECT * FROM privacy.set_signing_key('not a certificate', 'not a key') $$, '22023',
                 'receipt signing certificate is not a PEM X.509 certificate', 'a certificate that is none is refused');
SELECT throws_ok($$ SELECT * FROM privacy.set_signing_key(NULL, 'x') $$, '22023', 'certificate must not be NULL',
                 'a NULL certificate is refused');
RESET ROLE;
SET LOCAL ROLE evidence_auditor;
SELECT throws_ok($$ SELECT * FROM privacy.set_signing_key('x', 'y') $$, '42501', NULL, 'auditors do not set the key');
RESET ROLE;
SELECT is((SELECT count(*) FROM privacy.signing_certificates) + (SELECT count(*) FROM privacy.signing_key),
          (SELECT n FROM key_rows), 'refusals stored nothing');
SELECT is((SELECT count(*) FROM pg_extension e, unnest(e.extconfig) c
            WHERE e.extname = 'pg_privacy' AND c = 'privacy.signing_key'::regclass), 0::bigint,
          'pg_dump leaves the key out');
SELECT is((SELECT count(*) FROM privacy.installation), 1::bigint, 'one installation identity');

-- replay_erasures checks its input before anything else.
CREATE TEMP TABLE exported AS SELECT string_agg(line, E'\n') AS ledger FROM privacy.erasure_ledger_export() AS line;
SELECT throws_ok($$ SELECT * FROM privacy.replay_erasures((SELECT ledger FROM exported)) $$, '55000',
                 'erasure ledger is not signed', 'a ledger exported without a signing key is refused');
SELECT is((SELECT count(*) FROM privacy.replay_erasures((SELECT ledger FROM exported), allow_unsigned => true)), 0::bigint,
          'unless the caller accepts it: nothing to replay');
SELECT throws_ok($$ SELECT * FROM privacy.replay_erasures((SELECT replace(ledger, (SELECT id::text FROM privacy.installation), '00000000-0000-4000-8000-000000000000') FROM exported), true) $$,
                 '22023', NULL, 'a ledger of another installation is refused');
SELECT throws_ok($$ SELECT * FROM privacy.replay_erasures('') $$, '22023', 'erasure ledger is empty', 'an empty ledger');
SELECT throws_ok($$ SELECT * FROM privacy.replay_erasures(NULL) $$, '22023', 'ledger must not be NULL', 'no ledger');


-- Evidence is append-only, for superusers too; the one change allowed is signing a receipt.
INSERT INTO privacy.jobs (id, kind, target_type, target_id, tenant_id, reason, requires_approval, status, due_at)
VALUES (8001, 'export', 'subject', 's', 'evidence_t', 'fixture', false, 'completed', now());
INSERT INTO privacy.receipts (job_id, document, sha256) VALUES (8001, '{}', 'x');
SELECT lives_ok($$ UPDATE privacy.receipts SET signature = '\x01', signed_by = 'f', signed_at = now() WHERE job_id = 8001 $$,
                'a receipt issued unsigned may be signed');
SELECT throws_ok($$ UPDATE privacy.receipts SET signature = '\x02' WHERE job_id = 8001 $$, '42501',
                 'UPDATE on privacy.receipts is not allowed: compliance evidence is append-only', 'but only once');
SELECT throws_ok($$ UPDATE privacy.receipts SET document = '{"forged": true}', signature = NULL, signed_by = NULL WHERE job_id = 8001 $$,
                 '42501', NULL, 'a receipt''s document never changes');
SELECT throws_ok($$ DELETE FROM privacy.receipts $$, '42501', NULL, 'receipts are never deleted');
SELECT throws_ok($$ TRUNCATE privacy.receipts $$, '42501', NULL, 'nor truncated');
INSERT INTO privacy.erasure_ledger (seq, kind, tenant_id, target_type, target_id, job_id, regulation, tables,
                                    requested_at, erased_at, prev_hash, hash)
SELECT coalesce(max(seq), 0) + 1, 'erase', 'evidence_t', 'subject', 's', 8001, 'gdpr', '{}', 'r', 'e', repeat('0', 64),
       encode(sha256(convert_to(clock_timestamp()::text, 'UTF8')), 'hex')
  FROM privacy.erasure_ledger;
CREATE TEMP TABLE ledger_rows AS SELECT count(*) AS n FROM privacy.erasure_ledger;
SELECT throws_ok($$ UPDATE privacy.erasure_ledger SET target_id = 't' $$, '42501',
                 'UPDATE on privacy.erasure_ledger is not allowed: compliance evidence is append-only', 'ledger entries never change');
SELECT throws_ok($$ DELETE FROM privacy.erasure_ledger $$, '42501', NULL, 'nor go away');
SELECT is((SELECT count(*) FROM privacy.erasure_ledger), (SELECT n FROM ledger_rows), 'the entry is still there');

-- privacy.receipt refuses what has no receipt.
SELECT throws_ok($$ SELECT privacy.receipt(999999) $$, '22023', 'job 999999 does not exist', 'an unknown job');
INSERT INTO privacy.jobs (id, kind, target_type, target_id, tenant_id, reason, requires_approval, status, due_at)
VALUES (8002, 'erase', 'subject', 's', 'evidence_t', 'fixture', true, 'completed', now());
SELECT throws_ok($$ SELECT privacy.receipt(8002) $$, '55000', 'job 8002 has no receipt yet (erase job, completed)',
                 'an erase that is not finalized has no receipt yet');

SELECT * FROM finish();
ROLLBACK;
