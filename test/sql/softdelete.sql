-- Soft-delete through row-level security (docs/soft-delete.md, issue 3): registration, who sees
-- what, marking, restore, finalization in foreign-key order, anonymization, unregistration.
-- Every suite starts from a fresh extension: job ids and chains do not depend on test order.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_privacy CASCADE;
CREATE EXTENSION pg_privacy;
RESET client_min_messages;
SET client_min_messages = notice;
DROP SCHEMA IF EXISTS sd CASCADE;
CREATE SCHEMA sd;
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sd_owner') THEN CREATE ROLE sd_owner; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sd_app') THEN CREATE ROLE sd_app; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sd_bypass') THEN CREATE ROLE sd_bypass BYPASSRLS; END IF;
END $$;
GRANT USAGE ON SCHEMA sd TO sd_owner, sd_app, sd_bypass;
GRANT CREATE ON SCHEMA sd TO sd_owner;

-- The application schema: 3 tenants, foreign keys, a tenant-isolation policy on users.
SET ROLE sd_owner;
CREATE TABLE sd.users (
    tenant text NOT NULL, id bigint PRIMARY KEY, email text NOT NULL UNIQUE, name text,
    birth date, score integer NOT NULL DEFAULT 0);
CREATE INDEX ON sd.users (tenant, id);
-- Profiles and orders are kept anonymized; their subject is a text reference to the user.
CREATE TABLE sd.profiles (
    tenant text NOT NULL, id bigint PRIMARY KEY, user_ref text NOT NULL, bio text, city text NOT NULL);
CREATE TABLE sd.orders (
    tenant text NOT NULL, id bigint PRIMARY KEY, customer_ref text NOT NULL,
    user_id bigint REFERENCES sd.users ON DELETE SET NULL,
    customer text NOT NULL, total numeric(10,2) NOT NULL, placed date NOT NULL);
CREATE INDEX ON sd.orders (tenant, customer_ref);
CREATE TABLE sd.order_items (
    tenant text NOT NULL, order_id bigint NOT NULL REFERENCES sd.orders, line int NOT NULL,
    user_id bigint NOT NULL, sku text NOT NULL, PRIMARY KEY (order_id, line));
CREATE INDEX ON sd.order_items (tenant, user_id);
CREATE TABLE sd.comments (
    tenant text NOT NULL, id bigint PRIMARY KEY, user_id bigint NOT NULL REFERENCES sd.users, body text);
CREATE INDEX ON sd.comments (tenant, user_id);
ALTER TABLE sd.users ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sd.users USING (tenant = current_setting('app.tenant', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA sd TO sd_app, sd_bypass;
RESET ROLE;

INSERT INTO sd.users SELECT t, n, 'u' || n || '@' || t || '.test', 'User ' || n, date '1980-01-01' + n, n
  FROM (SELECT n, (ARRAY['acme', 'globex', 'initech'])[1 + n % 3] AS t FROM generate_series(1, 30) n) s;
INSERT INTO sd.profiles SELECT tenant, id + 1000, id::text, 'bio of ' || id, 'City ' || id FROM sd.users;
INSERT INTO sd.orders SELECT u.tenant, u.id * 10 + k, u.id::text, u.id, u.name, k * 9.5, date '2024-01-01' + k
  FROM sd.users u, generate_series(1, 3) k;
INSERT INTO sd.order_items SELECT o.tenant, o.id, l, o.user_id, 'sku-' || l FROM sd.orders o, generate_series(1, 2) l;
INSERT INTO sd.comments SELECT u.tenant, u.id * 100 + k, u.id, 'comment ' || k FROM sd.users u, generate_series(1, 2) k;

-- Fingerprints of everything, to prove later that other subjects and tenants are untouched.
CREATE FUNCTION sd.fingerprint(only_subject bigint DEFAULT NULL, skip_subject bigint DEFAULT NULL) RETURNS text
LANGUAGE sql AS $$
  SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (
    SELECT 'u' || (u.tenant, u.id, u.email, u.name, u.birth, u.score)::text x, u.id AS s FROM sd.users u
    UNION ALL SELECT 'p' || (p.tenant, p.id, p.user_ref, p.bio, p.city)::text, p.id - 1000 FROM sd.profiles p
    UNION ALL SELECT 'o' || (o.tenant, o.id, o.customer_ref, o.user_id, o.customer, o.total, o.placed)::text, o.id / 10 FROM sd.orders o
    UNION ALL SELECT 'i' || (i.tenant, i.order_id, i.line, i.user_id, i.sku)::text, i.user_id FROM sd.order_items i
    UNION ALL SELECT 'c' || (c.tenant, c.id, c.user_id, c.body)::text, c.user_id FROM sd.comments c) all_rows
  WHERE (only_subject IS NULL OR s = only_subject) AND (skip_subject IS NULL OR s <> skip_subject)
$$;
CREATE TABLE sd.saved AS SELECT 'all'::text AS what, sd.fingerprint() AS fp
  UNION ALL SELECT 'others', sd.fingerprint(skip_subject => 4);

-- RLS state and policies before registration, to compare after unregistration.
CREATE TABLE sd.rls_before AS
  SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
         (SELECT string_agg(p.policyname || ':' || p.permissive || ':' || p.cmd || ':' || coalesce(p.qual, '') || ':' || coalesce(p.with_check, ''), ',' ORDER BY p.policyname)
            FROM pg_policies p WHERE p.schemaname = 'sd' AND p.tablename = c.relname) AS policies
    FROM pg_class c WHERE c.relnamespace = 'sd'::regnamespace AND c.relkind = 'r'
     AND c.relname IN ('users', 'profiles', 'orders', 'order_items', 'comments');

-- Registration. users keeps its tenant policy (had RLS), the others get the pass-through.
SELECT privacy.register_table('sd.users', 'id', 'tenant');
SELECT privacy.register_table('sd.profiles', 'user_ref', 'tenant', 'anonymize');  -- warns: no index
SELECT privacy.register_table('sd.orders', 'customer_ref', 'tenant', on_erase => 'anonymize');
SELECT privacy.register_table('sd.order_items', 'user_id', 'tenant');
SELECT privacy.register_table('sd.comments', 'user_id', 'tenant');
SELECT relation, subject_column, tenant_column, key_columns, on_erase, had_rls, had_force_rls
  FROM privacy.registered_tables WHERE relation::text LIKE 'sd.%' ORDER BY relation::text;
SELECT tablename, policyname, permissive, cmd, qual, with_check FROM pg_policies
 WHERE schemaname = 'sd' ORDER BY tablename, policyname;
SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class
 WHERE relnamespace = 'sd'::regnamespace AND relkind = 'r' AND relname <> 'saved' AND relname <> 'rls_before' ORDER BY relname;
-- Column added without a default (catalog-only), and its partial index.
SELECT attname, format_type(atttypid, atttypmod), atthasdef, attnotnull FROM pg_attribute
 WHERE attrelid = 'sd.users'::regclass AND attname = 'privacy_erased_by';
SELECT indexdef FROM pg_indexes WHERE schemaname = 'sd' AND tablename = 'users' AND indexdef LIKE '%privacy_erased_by%';
SELECT action, target, detail->>'on_erase' AS on_erase FROM privacy.audit_log
 WHERE action = 'table_registered' AND target LIKE 'sd.%' ORDER BY id;

-- Column rules for the anonymized tables.
SELECT privacy.set_column_rule('sd.profiles', 'bio', 'null');
SELECT privacy.set_column_rule('sd.profiles', 'city', 'redact');
SELECT privacy.set_column_rule('sd.orders', 'customer', 'hash');
SELECT privacy.set_column_rule('sd.orders', 'placed', 'redact');
SELECT privacy.set_column_rule('sd.orders', 'total', 'keep');
SELECT privacy.set_column_rule('sd.orders', 'user_id', 'null');

-- Tenant isolation is not widened by registration: acme's role sees acme only.
SET ROLE sd_app;
SET app.tenant = 'acme';
SELECT count(*) AS acme_users_visible, count(*) FILTER (WHERE tenant <> 'acme') AS other_tenants FROM sd.users;
RESET ROLE;

-- Erase jobs run by CALL privacy.run_job: the worker's own loop, in this session.
SET privacy.require_distinct_approver = off;
-- The wrong tenant marks nothing: subject 4 lives in tenant globex.
SELECT privacy.request_erase('acme', '4', 'wrong tenant') AS wrong \gset
SELECT privacy.approve(:wrong);
CALL privacy.run_job(:wrong);
SELECT status, processed_items AS marked_wrong_tenant FROM privacy.jobs WHERE id = :wrong;
SELECT privacy.request_erase('globex', '4', 'GDPR art. 17') AS job \gset
-- Restore: refused while the job has not run (nor stopped).
SELECT privacy.restore(:job);
SELECT privacy.approve(:job);
SET privacy.batch_size = 2;   -- several batches per table: proves keyset paging
CALL privacy.run_job(:job);
RESET privacy.batch_size;
SELECT status, finalization, processed_items, total_items, failed_items FROM privacy.jobs WHERE id = :job;
SELECT relation::text, privacy_erased_by = :job AS by_job, count(*) FROM (
  SELECT 'sd.users'::regclass AS relation, privacy_erased_by FROM sd.users
  UNION ALL SELECT 'sd.profiles', privacy_erased_by FROM sd.profiles
  UNION ALL SELECT 'sd.orders', privacy_erased_by FROM sd.orders
  UNION ALL SELECT 'sd.order_items', privacy_erased_by FROM sd.order_items
  UNION ALL SELECT 'sd.comments', privacy_erased_by FROM sd.comments) r
 WHERE privacy_erased_by IS NOT NULL GROUP BY 1, 2 ORDER BY 1;

-- Who sees what. The plain application role (tenant globex) no longer sees subject 4 ...
SET ROLE sd_app;
SET app.tenant = 'globex';
SELECT count(*) AS visible_subject_4 FROM sd.users WHERE id = 4;
SELECT count(*) AS visible_orders_4 FROM sd.orders WHERE customer_ref = '4';
-- ... cannot update or delete the hidden rows ...
UPDATE sd.orders SET total = 0 WHERE customer_ref = '4' RETURNING id;
DELETE FROM sd.comments WHERE user_id = 4 RETURNING id;
-- ... still sees only its tenant ...
SELECT count(*) FILTER (WHERE tenant <> 'globex') AS other_tenants_visible FROM sd.users;
SET app.tenant = 'acme';
SELECT count(*) AS acme_users_visible FROM sd.users;
RESET ROLE;
-- The owner is covered too (FORCE ROW LEVEL SECURITY).
SET ROLE sd_owner;
SELECT count(*) AS owner_sees_orders_4 FROM sd.orders WHERE customer_ref = '4';
RESET ROLE;
-- BYPASSRLS and superusers still see them.
SET ROLE sd_bypass;
SELECT count(*) AS bypass_sees_orders_4 FROM sd.orders WHERE customer_ref = '4';
RESET ROLE;
SELECT count(*) AS superuser_sees_orders_4 FROM sd.orders WHERE customer_ref = '4';
-- Nothing else changed.
SELECT fp = sd.fingerprint(skip_subject => 4) AS others_untouched FROM sd.saved WHERE what = 'others';

-- Restore the chosen key of one relation, then one relation, then everything.
SELECT privacy.restore(:job, 'sd.orders', '[{"id": 41}, {"id": "42"}]');
SELECT privacy.restore(:job, 'sd.orders', '[{"nope": 1}]');
SELECT privacy.restore(:job, NULL, '[{"id": 41}]');
SELECT id, privacy_erased_by = :job AS marked FROM sd.orders WHERE customer_ref = '4' ORDER BY id;
SELECT privacy.restore(:job, 'sd.comments');
SELECT privacy.restore(:job);
SELECT detail FROM privacy.audit_log WHERE action = 'restored' AND job_id = :job ORDER BY id;
SELECT fp = sd.fingerprint() AS everything_back FROM sd.saved WHERE what = 'all';
-- Past the window: refused, with the date.
UPDATE privacy.jobs SET recoverable_until = '2020-01-01 00:00:00+00' WHERE id = :job;
SET TimeZone = 'UTC';
SELECT privacy.restore(:job);
RESET TimeZone;

-- Finalization. Erase subject 4 again; a comment of subject 4 is referenced from a table
-- pg_privacy does not know, so its deletion fails: it is flagged in job_errors once, and so is
-- the user it references; the rest is finalized, and the pass ends finalized_with_errors.
CREATE TABLE sd.moderation (comment_id bigint REFERENCES sd.comments, note text);
INSERT INTO sd.moderation VALUES (401, 'kept for moderation');
SELECT privacy.request_erase('globex', '4', 'GDPR art. 17, again') AS again \gset
SELECT privacy.approve(:again);
CALL privacy.run_job(:again);
-- The recovery window closes (the clock, simulated), and run_job finalizes.
UPDATE privacy.jobs SET recoverable_until = now() WHERE id = :again;
-- Pseudonym of subject 4 (to prove determinism below) before finalizing.
SELECT privacy._pseudonym('4') = privacy._pseudonym('4') AS deterministic, length(privacy._pseudonym('4')) AS len;
CALL privacy.run_job(:again);
SELECT relation::text, row_key, phase, attempt, sqlstate FROM privacy.job_errors WHERE job_id = :again ORDER BY id;
SELECT finalization, finalized_at IS NOT NULL AS finalized_at_set FROM privacy.jobs WHERE id = :again;
SELECT action, outcome, detail FROM privacy.audit_log
 WHERE action IN ('finalization_started', 'finalized', 'finalized_with_errors') AND job_id = :again ORDER BY id;
-- Deleted: users, order_items, comments (except the blocked one). Anonymized and visible again:
-- profiles and orders, with their subject hashed and rules applied.
SELECT (SELECT count(*) FROM sd.users WHERE id = 4) AS users,
       (SELECT count(*) FROM sd.order_items WHERE order_id BETWEEN 41 AND 43) AS items,
       (SELECT count(*) FROM sd.comments WHERE id IN (401, 402)) AS comments_left,
       (SELECT privacy_erased_by = :again FROM sd.comments WHERE id = 401) AS blocked_still_marked;
SELECT id, user_ref = privacy._pseudonym('4') AS hashed_subject, bio, city, privacy_erased_by FROM sd.profiles WHERE id = 1004;
SELECT id, customer_ref = privacy._pseudonym('4') AS hashed_subject, user_id, customer = privacy._pseudonym('User 4') AS hashed_customer,
       total, placed, privacy_erased_by FROM sd.orders WHERE id BETWEEN 41 AND 43 ORDER BY id;
-- Deterministic: the anonymized profile and orders still join on the pseudonym.
SELECT count(*) AS joined FROM sd.profiles p JOIN sd.orders o ON o.customer_ref = p.user_ref WHERE p.id = 1004;
-- The application sees the anonymized rows again, and nothing else changed.
SET ROLE sd_app;
SELECT count(*) AS app_sees_anonymized_orders FROM sd.orders WHERE id BETWEEN 41 AND 43;
RESET ROLE;
SELECT fp = sd.fingerprint(skip_subject => 4) AS others_untouched FROM sd.saved WHERE what = 'others';

-- Known edges (docs/soft-delete.md), with subject 6 of tenant acme hidden by an erase.
SELECT privacy.request_erase('acme', '6', 'known edges') AS six \gset
SELECT privacy.approve(:six);
CALL privacy.run_job(:six);
SELECT processed_items AS marked FROM privacy.jobs WHERE id = :six;
CREATE VIEW sd.user_ids AS SELECT id FROM sd.users WHERE tenant = 'acme';
CREATE VIEW sd.user_ids_invoker WITH (security_invoker = true) AS SELECT id FROM sd.users WHERE tenant = 'acme';
GRANT SELECT ON sd.user_ids, sd.user_ids_invoker TO sd_app;
SET ROLE sd_app;
SET app.tenant = 'acme';
SELECT count(*) AS app_sees_user_6 FROM sd.users WHERE id = 6;
-- 1. A unique constraint still sees the hidden row.
INSERT INTO sd.users (tenant, id, email) VALUES ('acme', 1006, 'u6@acme.test');
-- 2. A view owned by a superuser (a bypassing role) shows it; a security_invoker view does not.
SELECT count(*) AS owner_view_shows_6 FROM sd.user_ids WHERE id = 6;
SELECT count(*) AS invoker_view_shows_6 FROM sd.user_ids_invoker WHERE id = 6;
-- 3. Foreign-key checks ignore RLS: a new comment may reference the hidden user.
INSERT INTO sd.comments (tenant, id, user_id, body) VALUES ('acme', 9999, 6, 'references a hidden user');
RESET ROLE;
DELETE FROM sd.comments WHERE id = 9999;
SELECT privacy.restore(:six) AS restored;
DROP VIEW sd.user_ids, sd.user_ids_invoker;

-- Unregistering refuses while rows await finalization (the rows the erase could not finalize).
SELECT privacy.unregister_table('sd.comments');
-- Once the cause is gone, retry_items finalizes the flagged rows, and the job is finalized.
DELETE FROM sd.moderation;
SELECT * FROM privacy.retry_items(:again);
SELECT relation::text, resolution, resolved_by = session_user AS by_me FROM privacy.job_errors WHERE job_id = :again ORDER BY id;
SELECT finalization FROM privacy.jobs WHERE id = :again;
SELECT count(*) AS user_4_left FROM sd.users WHERE id = 4;
SELECT privacy.unregister_table('sd.comments');
SELECT privacy.unregister_table('sd.order_items');
SELECT privacy.unregister_table('sd.orders');
SELECT privacy.unregister_table('sd.profiles');
SELECT privacy.unregister_table('sd.users');
SELECT privacy.unregister_table('sd.users');
-- Exactly the previous RLS state and policies, no leftover column or index.
SELECT b.relname, b.relrowsecurity = c.relrowsecurity AS same_rls,
       b.relforcerowsecurity = c.relforcerowsecurity AS same_force,
       b.policies IS NOT DISTINCT FROM (SELECT string_agg(p.policyname || ':' || p.permissive || ':' || p.cmd || ':' || coalesce(p.qual, '') || ':' || coalesce(p.with_check, ''), ',' ORDER BY p.policyname)
            FROM pg_policies p WHERE p.schemaname = 'sd' AND p.tablename = c.relname) AS same_policies
  FROM sd.rls_before b JOIN pg_class c ON c.relname = b.relname AND c.relnamespace = 'sd'::regnamespace
 ORDER BY b.relname;
SELECT count(*) AS leftover_columns FROM pg_attribute
 WHERE attname = 'privacy_erased_by' AND attrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'sd'::regnamespace);
SELECT count(*) AS leftover_indexes FROM pg_indexes WHERE schemaname = 'sd' AND indexdef LIKE '%privacy_erased_by%';
SELECT action, target FROM privacy.audit_log WHERE action = 'table_unregistered' AND target LIKE 'sd.%' ORDER BY id;

DROP SCHEMA sd CASCADE;
