-- Anonymization for any subject column type (issue 13, finding 7; docs/soft-delete.md,
-- "Anonymization rules" and "Foreign keys to the subject's rows"): the subject column takes a
-- rule like any other column (hash, null, or the tenant's tombstone), an erase that could not
-- anonymize a table is refused at submission, and the three usual schemas work: ON DELETE SET
-- NULL, RESTRICT with a tombstone, CASCADE. A purge after an erase also finds the rows the erase
-- anonymized with the subject's pseudonym.
-- Every suite starts from a fresh extension: job ids and chains do not depend on test order.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_privacy CASCADE;
CREATE EXTENSION pg_privacy;
DROP SCHEMA IF EXISTS an CASCADE;
RESET client_min_messages;
SET privacy.require_distinct_approver = off;
CREATE SCHEMA an;

CREATE TABLE an.users (id bigint PRIMARY KEY, tenant text NOT NULL, email text NOT NULL);
-- ON DELETE SET NULL: an order outlives its customer, anonymized with user_id NULL.
CREATE TABLE an.orders (id bigint PRIMARY KEY, tenant text NOT NULL,
                        user_id bigint REFERENCES an.users ON DELETE SET NULL, total numeric NOT NULL);
-- RESTRICT and NOT NULL: an invoice must keep a customer, the tenant's tombstone user.
CREATE TABLE an.invoices (id bigint PRIMARY KEY, tenant text NOT NULL,
                          user_id bigint NOT NULL REFERENCES an.users ON DELETE RESTRICT, amount numeric NOT NULL);
-- CASCADE: sessions go with their user; registered 'delete', finalized before it anyway.
CREATE TABLE an.sessions (id bigint PRIMARY KEY, tenant text NOT NULL,
                          user_id bigint NOT NULL REFERENCES an.users ON DELETE CASCADE);
-- A table pg_privacy does not know, ON DELETE CASCADE: its rows go when the user is finalized.
CREATE TABLE an.logins (user_id bigint NOT NULL REFERENCES an.users ON DELETE CASCADE, at int);
-- A text subject, hashed.
CREATE TABLE an.messages (id bigint PRIMARY KEY, tenant text NOT NULL, author text NOT NULL, body text);
INSERT INTO an.users SELECT g, 'acme', 'u' || g || '@acme.test' FROM generate_series(0, 3) g;  -- 0: tombstone
INSERT INTO an.orders SELECT u * 10 + k, 'acme', u, k FROM generate_series(1, 3) u, generate_series(1, 2) k;
INSERT INTO an.invoices SELECT u * 10 + k, 'acme', u, k FROM generate_series(1, 3) u, generate_series(1, 2) k;
INSERT INTO an.sessions SELECT u * 10 + k, 'acme', u FROM generate_series(1, 3) u, generate_series(1, 2) k;
INSERT INTO an.logins SELECT u, k FROM generate_series(1, 3) u, generate_series(1, 2) k;
INSERT INTO an.messages SELECT u * 10 + k, 'acme', u::text, 'hello ' || k FROM generate_series(1, 3) u, generate_series(1, 2) k;
SET client_min_messages = error;  -- no index warnings
SELECT privacy.register_table('an.users', 'id', 'tenant');
SELECT privacy.register_table('an.orders', 'user_id', 'tenant', 'anonymize');
SELECT privacy.register_table('an.invoices', 'user_id', 'tenant', 'anonymize');
SELECT privacy.register_table('an.sessions', 'user_id', 'tenant');
SELECT privacy.register_table('an.messages', 'author', 'tenant', 'anonymize');
RESET client_min_messages;
SELECT privacy.configure_tenant('acme', recovery_window => '0') IS NOT NULL AS configured;

-- Refused at submission, never at finalization: invoices.user_id (bigint NOT NULL) can hold
-- neither the pseudonym nor NULL. The hint says how to fix it. Nothing is stored.
SELECT privacy.request_erase('acme', '1', 'finding 7');
-- A rule on the subject column is consulted: 'tombstone' needs the tenant's tombstone ...
SELECT privacy.set_column_rule('an.invoices', 'user_id', 'tombstone');
SELECT privacy.request_erase('acme', '1', 'finding 7');
-- ... of the column's type.
SELECT tombstone_subject FROM privacy.configure_tenant('acme', tombstone_subject => 'nobody');
SELECT privacy.request_erase('acme', '1', 'finding 7');
SELECT count(*) AS no_job_stored FROM privacy.jobs;
SELECT tombstone_subject FROM privacy.configure_tenant('acme', tombstone_subject => '0');
SELECT tombstone_subject FROM privacy.tenant_settings('acme');
-- Rules the subject column cannot take.
SELECT privacy.set_column_rule('an.orders', 'user_id', 'hash');
SELECT privacy.set_column_rule('an.invoices', 'user_id', 'null');

-- Now the erase is accepted and, with a window of zero, finalized in the same run: orders keep
-- their rows with user_id NULL, invoices point to the tombstone, sessions and the user are
-- deleted (the unregistered logins go with the user by their CASCADE), messages are hashed.
SELECT privacy.request_erase('acme', '1', 'finding 7') AS erase \gset
SELECT privacy.approve(:erase);
CALL privacy.run_job(:erase);
SELECT status, finalization, processed_items FROM privacy.jobs WHERE id = :erase;
SELECT id, user_id, total, privacy_erased_by FROM an.orders WHERE id / 10 = 1 ORDER BY id;
SELECT id, user_id, amount, privacy_erased_by FROM an.invoices WHERE id / 10 = 1 ORDER BY id;
SELECT (SELECT count(*) FROM an.sessions WHERE user_id = 1) AS sessions,
       (SELECT count(*) FROM an.users WHERE id = 1) AS users,
       (SELECT count(*) FROM an.logins WHERE user_id = 1) AS logins;
SELECT id, author = privacy._pseudonym('1') AS hashed, body FROM an.messages WHERE id / 10 = 1 ORDER BY id;
SELECT count(*) AS flagged FROM privacy.job_errors;
-- Others untouched.
SELECT user_id, count(*) FROM an.orders GROUP BY user_id ORDER BY user_id NULLS FIRST;
SELECT user_id, count(*) FROM an.invoices GROUP BY user_id ORDER BY user_id;

-- A purge of the subject after its erase also finds the rows anonymized with its pseudonym
-- (messages); rows anonymized with NULL or the tombstone are no longer the subject's.
SELECT privacy.request_purge('acme', 'subject', '1', 'purge after erase') AS purge \gset
SELECT matching_rows FROM privacy.preview(:purge) WHERE relation = 'an.messages'::regclass;
SELECT privacy.approve(:purge);
CALL privacy.run_job(:purge);
SELECT status, processed_items FROM privacy.jobs WHERE id = :purge;
SELECT count(*) AS hashed_messages_left FROM an.messages WHERE author = privacy._pseudonym('1');
SELECT count(*) AS other_messages FROM an.messages;

-- A uuid subject column, NOT NULL: the erase is refused until it has a tombstone of its type.
CREATE TABLE an.devices (id int PRIMARY KEY, tenant text NOT NULL, owner_id uuid NOT NULL, label text);
INSERT INTO an.devices VALUES (1, 'uu', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'phone');
SET client_min_messages = error;
SELECT privacy.register_table('an.devices', 'owner_id', 'tenant', 'anonymize');
RESET client_min_messages;
SELECT privacy.request_erase('uu', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'uuid subject');
SELECT privacy.set_column_rule('an.devices', 'owner_id', 'tombstone');
SELECT tombstone_subject FROM privacy.configure_tenant('uu', tombstone_subject => '00000000-0000-0000-0000-000000000000',
                                                       recovery_window => '0');
SELECT privacy.request_erase('uu', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'uuid subject') AS device \gset
SELECT privacy.approve(:device);
CALL privacy.run_job(:device);
SELECT finalization FROM privacy.jobs WHERE id = :device;
SELECT id, owner_id, label FROM an.devices;

-- The 'hash' rule is HMAC-SHA-256 under the installation secret, in hex (docs/soft-delete.md):
-- pinned against pgcrypto's HMAC, so a change in how the secret is read cannot go unnoticed.
CREATE EXTENSION pgcrypto SCHEMA public;
SELECT privacy._pseudonym('alice@example.com')
       = pg_catalog.encode(public.hmac(pg_catalog.convert_to('alice@example.com', 'UTF8'),
                                       (SELECT s.secret FROM privacy.installation_secret s ORDER BY s.created_at LIMIT 1),
                                       'sha256'), 'hex') AS pseudonym_is_hmac_sha256_of_the_secret;
DROP EXTENSION pgcrypto;

SELECT privacy.unregister_table(relation) FROM privacy.registered_tables ORDER BY relation::text;
DROP SCHEMA an CASCADE;
DROP EXTENSION pg_privacy;
