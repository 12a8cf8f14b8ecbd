-- CALL privacy.run_job: the worker's batch loop in the calling session (no worker serves this
-- database in the test cluster). Erase with a zero recovery window finalizes in the same run;
-- purge deletes in every table, children first.
-- Every suite starts from a fresh extension: job ids and chains do not depend on test order.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_privacy CASCADE;
CREATE EXTENSION pg_privacy;
RESET client_min_messages;
SET privacy.require_distinct_approver = off;
SET privacy.batch_size = 7;

CREATE SCHEMA shop;
CREATE TABLE shop.customers (id bigint PRIMARY KEY, tenant text NOT NULL, customer text NOT NULL, email text);
CREATE TABLE shop.orders (id bigint PRIMARY KEY, tenant text NOT NULL, customer text NOT NULL,
                          customer_id bigint NOT NULL REFERENCES shop.customers, total numeric);
CREATE INDEX ON shop.customers (tenant, customer);
CREATE INDEX ON shop.orders (tenant, customer);
INSERT INTO shop.customers SELECT g, 'acme', 'c' || g, 'c' || g || '@example.com' FROM generate_series(1, 5) g;
INSERT INTO shop.orders SELECT g, 'acme', 'c' || (g % 5 + 1), g % 5 + 1, g FROM generate_series(1, 40) g;
SELECT privacy.register_table('shop.customers', 'customer', 'tenant');
SELECT privacy.register_table('shop.orders', 'customer', 'tenant');

-- run_job refuses what it cannot run, with a hint.
SELECT privacy.request_erase('acme', 'c1', 'ticket 100') AS job \gset
CALL privacy.run_job(:job);
BEGIN;
CALL privacy.run_job(:job);
ROLLBACK;

-- An erase, processed in batches of 7 in this session.
SELECT privacy.approve(:job);
CALL privacy.run_job(:job);
SELECT status, processed_items, total_items, failed_items, progress_pct
  FROM privacy.job_overview WHERE id = :job;
SELECT count(*) AS marked_orders FROM shop.orders WHERE privacy_erased_by = :job;
SELECT count(*) AS marked_customers FROM shop.customers WHERE privacy_erased_by = :job;
SELECT recoverable_until > now() + interval '29 days' AS restorable_for_30_days, finalized_at IS NULL AS not_finalized
  FROM privacy.jobs WHERE id = :job;

-- Zero recovery window: finalized in the same run, children (orders) before parents.
SELECT tenant_id, recovery_window FROM privacy.configure_tenant('acme', recovery_window => '0');
SELECT privacy.request_erase('acme', 'c2', 'ticket 101') AS job2 \gset
SELECT privacy.approve(:job2);
CALL privacy.run_job(:job2);
SELECT status, finalized_at IS NOT NULL AS finalized FROM privacy.jobs WHERE id = :job2;
SELECT count(*) AS c2_orders_left FROM shop.orders WHERE customer = 'c2';
SELECT count(*) AS c2_customers_left FROM shop.customers WHERE customer = 'c2';
SELECT action FROM privacy.audit_log WHERE job_id = :job2 ORDER BY id;

-- Purge of a subject: deleted in every table whether marked or not.
SELECT privacy.request_purge('acme', 'subject', 'c3', 'ticket 102') AS job3 \gset
SELECT privacy.approve(:job3);
CALL privacy.run_job(:job3);
SELECT status, processed_items FROM privacy.jobs WHERE id = :job3;
SELECT count(*) AS c3_rows_left FROM shop.orders WHERE customer = 'c3';

-- Keys of a domain over integer and of an enum page with pg_catalog's operators
-- (docs/security.md): one row per batch, every row of the subject, nothing else.
CREATE TYPE shop.region AS ENUM ('eu', 'us');
CREATE DOMAIN shop.code AS integer CHECK (VALUE > 0);
CREATE TABLE shop.by_code (region shop.region NOT NULL, code shop.code NOT NULL,
                           tenant text NOT NULL, customer text NOT NULL, PRIMARY KEY (region, code));
CREATE INDEX ON shop.by_code (tenant, customer, region, code);
INSERT INTO shop.by_code VALUES ('eu', 1, 'acme', 'k1'), ('eu', 2, 'acme', 'k1'), ('us', 1, 'acme', 'k1'),
                                ('us', 2, 'acme', 'k2');
SELECT privacy.register_table('shop.by_code', 'customer', 'tenant');
SELECT privacy.request_erase('acme', 'k1', 'ticket 103') AS job4 \gset
SELECT privacy.approve(:job4);
SET privacy.batch_size = 1;
CALL privacy.run_job(:job4);
SET privacy.batch_size = 7;
SELECT processed_items, finalization FROM privacy.jobs WHERE id = :job4;
SELECT region, code FROM shop.by_code ORDER BY 1, 2;   -- acme's window is 0: finalized at once
SELECT privacy.unregister_table('shop.by_code');

-- An error before the first batch fails the job with its message and an audit row, and run_job
-- raises it once the failure is committed (issue 13, finding 5): the owner of a registered
-- table cannot count its rows any more.
CREATE ROLE run_job_locked_owner;
CREATE TABLE shop.locked (id bigint PRIMARY KEY, tenant text NOT NULL, customer text NOT NULL);
INSERT INTO shop.locked VALUES (1, 'acme', 'c5');
ALTER TABLE shop.locked OWNER TO run_job_locked_owner;
GRANT USAGE ON SCHEMA shop TO run_job_locked_owner;
CREATE INDEX ON shop.locked (tenant, customer, id);
SELECT privacy.register_table('shop.locked', 'customer', 'tenant');
REVOKE SELECT ON shop.locked FROM run_job_locked_owner;
SELECT privacy.request_erase('acme', 'c5', 'ticket 104') AS job5 \gset
SELECT privacy.approve(:job5);
CALL privacy.run_job(:job5);
SELECT status, error, attempts FROM privacy.jobs WHERE id = :job5;
SELECT action FROM privacy.audit_log WHERE job_id = :job5 ORDER BY id;
GRANT SELECT ON shop.locked TO run_job_locked_owner;
SELECT privacy.unregister_table('shop.locked');
DROP TABLE shop.locked;
REVOKE USAGE ON SCHEMA shop FROM run_job_locked_owner;
DROP ROLE run_job_locked_owner;

-- Other customers untouched.
SELECT customer, count(*) FROM shop.orders GROUP BY customer ORDER BY customer;
SELECT privacy.job_detail(:job3)->'job'->>'status' AS detail_status;
SELECT * FROM privacy.dashboard;

-- Restore brings job 1's rows back; then the tables can be unregistered.
SELECT privacy.restore(:job) AS restored_rows;
SELECT count(*) AS visible_again FROM shop.orders WHERE privacy_erased_by IS NULL AND customer = 'c1';
SELECT privacy.unregister_table('shop.orders');
SELECT privacy.unregister_table('shop.customers');
DROP SCHEMA shop CASCADE;
DROP EXTENSION pg_privacy;
