-- Partitioned tables (issue 12, docs/soft-delete.md "Partitioned tables"): registration protects
-- the partitioned table and every partition at every level (policies, ENABLE + FORCE ROW LEVEL
-- SECURITY, hold triggers); partitions created, attached or detached later follow; jobs work
-- through the parent. The attacks read or destroy through a partition directly, as an
-- application role or the owner would.
-- Every suite starts from a fresh extension: job ids and chains do not depend on test order.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_privacy CASCADE;
CREATE EXTENSION pg_privacy;
DROP SCHEMA IF EXISTS pt CASCADE;
DROP SERVER IF EXISTS pt_server;
DROP FOREIGN DATA WRAPPER IF EXISTS pt_fdw;
RESET client_min_messages;
SET privacy.require_distinct_approver = off;
CREATE SCHEMA pt;
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pt_owner') THEN CREATE ROLE pt_owner; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pt_app') THEN CREATE ROLE pt_app; END IF;
END $$;
GRANT USAGE, CREATE ON SCHEMA pt TO pt_owner;
GRANT USAGE ON SCHEMA pt TO pt_app;
-- Runs a statement and shows its SQLSTATE and message instead of failing.
CREATE FUNCTION pt.try(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE statement;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
-- What protects each relation of schema pt: RLS enabled/forced, policies, hold triggers.
CREATE FUNCTION pt.protection() RETURNS TABLE (relation text, rls text, policies text, hold_triggers text)
LANGUAGE sql AS $$
  SELECT c.oid::regclass::text, c.relrowsecurity || '/' || c.relforcerowsecurity,
         coalesce((SELECT string_agg(polname, ',' ORDER BY polname) FROM pg_policy WHERE polrelid = c.oid), ''),
         coalesce((SELECT string_agg(tgname || ':' || tgenabled::text, ',' ORDER BY tgname) FROM pg_trigger
                    WHERE tgrelid = c.oid AND tgname LIKE 'privacy%'), '')
    FROM pg_class c WHERE c.relnamespace = 'pt'::regnamespace AND c.relkind IN ('r', 'p', 'f')
   ORDER BY 1
$$;

-- events: partitioned by tenant; globex's partition is itself partitioned by id.
SET ROLE pt_owner;
CREATE TABLE pt.events (tenant text NOT NULL, id int NOT NULL, subject text NOT NULL, body text,
                        PRIMARY KEY (tenant, id)) PARTITION BY LIST (tenant);
CREATE TABLE pt.events_acme PARTITION OF pt.events FOR VALUES IN ('acme');
CREATE TABLE pt.events_globex PARTITION OF pt.events FOR VALUES IN ('globex') PARTITION BY RANGE (id);
CREATE TABLE pt.events_globex_low PARTITION OF pt.events_globex FOR VALUES FROM (0) TO (100);
CREATE TABLE pt.events_globex_high PARTITION OF pt.events_globex FOR VALUES FROM (100) TO (1000);
CREATE INDEX ON pt.events (tenant, subject, id);
INSERT INTO pt.events SELECT 'acme', g, 's' || (g % 4), 'acme ' || g FROM generate_series(1, 20) g;
INSERT INTO pt.events SELECT 'globex', g * 10, 's' || (g % 4), 'globex ' || g FROM generate_series(1, 20) g;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA pt TO pt_app;
RESET ROLE;

-- Registration protects the table and every partition, at every level.
SELECT privacy.register_table('pt.events', 'subject', 'tenant');
SELECT * FROM pt.protection();
SELECT relation, registered_table, had_rls, had_force_rls FROM privacy.registered_partitions ORDER BY relation::text;
SELECT detail->'partitions' AS partitions FROM privacy.audit_log WHERE action = 'table_registered';

-- Erasures through the parent: request, approve, run (the job loop in this session).
SELECT privacy.request_erase('acme', 's1', 'ticket 1') AS acme_job \gset
SELECT privacy.approve(:acme_job);
CALL privacy.run_job(:acme_job);
SELECT privacy.request_erase('globex', 's2', 'ticket 2') AS globex_job \gset
SELECT privacy.approve(:globex_job);
CALL privacy.run_job(:globex_job);
SELECT id, status, processed_items FROM privacy.jobs ORDER BY id;
SELECT tableoid::regclass AS partition, count(*) AS marked
  FROM pt.events WHERE privacy_erased_by IS NOT NULL GROUP BY 1 ORDER BY 1;

-- An application role reading or changing a partition directly does not reach erased rows.
SET ROLE pt_app;
SELECT count(*) AS acme_s1_in_partition FROM pt.events_acme WHERE subject = 's1';
SELECT count(*) AS globex_s2_in_subpartition FROM pt.events_globex_low WHERE subject = 's2';
SELECT count(*) AS globex_s2_in_middle FROM pt.events_globex WHERE subject = 's2';
SELECT count(*) AS acme_s1_in_parent FROM pt.events WHERE tenant = 'acme' AND subject = 's1';
WITH changed AS (UPDATE pt.events_acme SET body = 'changed' WHERE subject = 's1' RETURNING 1)
SELECT count(*) AS acme_s1_updated FROM changed;
WITH deleted AS (DELETE FROM pt.events_globex_high WHERE subject = 's2' RETURNING 1)
SELECT count(*) AS globex_s2_deleted FROM deleted;
-- Nor does the owner (FORCE ROW LEVEL SECURITY on each partition).
SET ROLE pt_owner;
SELECT count(*) AS owner_sees_acme_s1 FROM pt.events_acme WHERE subject = 's1';
RESET ROLE;

-- Restore through the parent: chosen keys, then a whole job.
SELECT privacy.restore(:acme_job, 'pt.events', '[{"tenant": "acme", "id": 5}]') AS restored_one;
SELECT privacy.restore(:globex_job) AS restored_all;
SELECT tableoid::regclass AS partition, count(*) AS still_marked
  FROM pt.events WHERE privacy_erased_by IS NOT NULL GROUP BY 1 ORDER BY 1;
-- Finalization through the parent: the recovery window closes, the rows go from the partition.
UPDATE privacy.jobs SET recoverable_until = now() WHERE id = :acme_job;
CALL privacy.run_job(:acme_job);
SELECT finalized_at IS NOT NULL AS finalized FROM privacy.jobs WHERE id = :acme_job;
SELECT count(*) AS acme_s1_left, count(*) FILTER (WHERE id = 5) AS restored_row_kept
  FROM pt.events WHERE tenant = 'acme' AND subject = 's1';
-- An erasure with a zero recovery window finalizes across sub-partitions in the same run.
SELECT tenant_id FROM privacy.configure_tenant('globex', recovery_window => '0');
SELECT privacy.request_erase('globex', 's3', 'ticket 3') AS final_job \gset
SELECT privacy.approve(:final_job);
CALL privacy.run_job(:final_job);
SELECT status, finalized_at IS NOT NULL AS finalized FROM privacy.jobs WHERE id = :final_job;
SELECT count(*) AS globex_s3_left FROM pt.events WHERE tenant = 'globex' AND subject = 's3';
-- A purge through the parent deletes the subject's rows in the partitions.
SELECT privacy.request_purge('acme', 'subject', 's2', 'ticket 5') AS purge_job \gset
SELECT privacy.approve(:purge_job);
CALL privacy.run_job(:purge_job);
SELECT status, processed_items FROM privacy.jobs WHERE id = :purge_job;
SELECT count(*) AS acme_s2_left FROM pt.events WHERE tenant = 'acme' AND subject = 's2';

-- Legal holds reach every partition: the triggers are on each of them.
SELECT privacy.place_hold('subject', 's0', 'acme', 'case 1') AS subject_hold \gset
SELECT * FROM pt.protection();
SELECT pt.try($$DELETE FROM pt.events_acme WHERE subject = 's0'$$) AS delete_held_rows_of_partition;
SELECT pt.try($$DELETE FROM pt.events WHERE tenant = 'acme' AND subject = 's0'$$) AS delete_held_rows_through_parent;
SELECT pt.try($$UPDATE pt.events SET tenant = 'globex', id = 500 WHERE tenant = 'acme' AND subject = 's0' AND id = 4$$)
    AS move_held_row_to_other_partition;
SELECT pt.try($$UPDATE pt.events SET body = 'changed' WHERE tenant = 'acme'$$) AS update_through_parent;
SELECT pt.try($$TRUNCATE pt.events_acme$$) AS truncate_partition_with_held_rows;
SELECT pt.try($$TRUNCATE pt.events$$) AS truncate_parent;
SELECT pt.try($$DROP TABLE pt.events_acme$$) AS drop_partition;
SELECT pt.try($$ALTER TABLE pt.events DETACH PARTITION pt.events_acme$$) AS detach_partition;
BEGIN;
SELECT pt.try($$TRUNCATE pt.events_globex_low$$) AS truncate_partition_without_held_rows;
ROLLBACK;
-- The owner cannot disarm them on a partition.
SET ROLE pt_owner;
SELECT pt.try($$ALTER TABLE pt.events_acme DISABLE TRIGGER privacy_hold_guard_delete$$) AS disable_delete_trigger;
SELECT pt.try($$ALTER TABLE pt.events DISABLE TRIGGER privacy_hold_guard_truncate$$) AS disable_truncate_trigger_of_parent;
SELECT pt.try($$ALTER TABLE pt.events_acme DISABLE TRIGGER privacy_hold_guard_truncate$$) AS disable_truncate_trigger;
RESET ROLE;
SELECT privacy.release_hold(:subject_hold, 'settled');
-- A table hold on the partitioned table covers its partitions at every level.
SELECT privacy.place_hold('table', 'pt.events', NULL, 'regulator') AS table_hold \gset
SELECT pt.try($$DELETE FROM pt.events_globex_low WHERE id = 10$$) AS delete_in_subpartition;
SELECT pt.try($$DELETE FROM pt.events_globex WHERE id = 10$$) AS delete_through_middle;
SELECT pt.try($$DELETE FROM pt.events WHERE id = 10$$) AS delete_through_parent;
SELECT pt.try($$TRUNCATE pt.events_globex_high$$) AS truncate_subpartition;
SELECT privacy.release_hold(:table_hold, 'done');
SELECT relation, hold_triggers FROM pt.protection();

-- Tampering with a partition is refused like tampering with the table.
SET ROLE pt_owner;
SELECT pt.try($$ALTER TABLE pt.events_acme NO FORCE ROW LEVEL SECURITY$$) AS no_force_on_partition;
SELECT pt.try($$DROP POLICY privacy_hide_erased ON pt.events_globex_low$$) AS drop_policy_of_subpartition;
SELECT pt.try($$ALTER TABLE pt.events_globex DISABLE ROW LEVEL SECURITY$$) AS disable_rls_of_middle;
RESET ROLE;

-- A partition created later is protected at once; an attached table too, its RLS state kept.
SET ROLE pt_owner;
CREATE TABLE pt.events_initech PARTITION OF pt.events FOR VALUES IN ('initech');
CREATE TABLE pt.events_umbrella (tenant text NOT NULL, id int NOT NULL, subject text NOT NULL, body text,
                                 privacy_erased_by bigint);
ALTER TABLE pt.events_umbrella ENABLE ROW LEVEL SECURITY;
CREATE POLICY umbrella_only ON pt.events_umbrella USING (tenant = 'umbrella');
INSERT INTO pt.events_umbrella VALUES ('umbrella', 1, 's1', 'u1'), ('umbrella', 2, 's2', 'u2');
ALTER TABLE pt.events ATTACH PARTITION pt.events_umbrella FOR VALUES IN ('umbrella');
GRANT SELECT ON pt.events_initech, pt.events_umbrella TO pt_app;
RESET ROLE;
SELECT * FROM pt.protection() WHERE relation IN ('pt.events_initech', 'pt.events_umbrella');
SELECT relation, had_rls, had_force_rls FROM privacy.registered_partitions
 WHERE relation IN ('pt.events_initech'::regclass, 'pt.events_umbrella'::regclass) ORDER BY relation::text;
SELECT action, target, detail FROM privacy.audit_log WHERE action LIKE 'partition%' ORDER BY id;
-- Erasures reach the new partitions; their erased rows stay hidden when read directly.
INSERT INTO pt.events VALUES ('initech', 1, 's1', 'i1'), ('initech', 2, 's2', 'i2');
SELECT privacy.request_erase('umbrella', 's1', 'ticket 4') AS umbrella_job \gset
SELECT privacy.approve(:umbrella_job);
CALL privacy.run_job(:umbrella_job);
SET ROLE pt_app;
SELECT id, subject FROM pt.events_umbrella ORDER BY id;
RESET ROLE;
-- A partition created while a hold is active carries the hold triggers at once.
SELECT privacy.place_hold('tenant', 'initech', NULL, 'audit') AS tenant_hold \gset
SELECT pt.try($$TRUNCATE pt.events_initech$$) AS truncate_new_partition;
SET ROLE pt_owner;
CREATE TABLE pt.events_hooli PARTITION OF pt.events FOR VALUES IN ('hooli');
RESET ROLE;
SELECT relation, hold_triggers FROM pt.protection() WHERE relation = 'pt.events_hooli';
SELECT pt.try($$ALTER TABLE pt.events DETACH PARTITION pt.events_hooli$$) AS detach_while_a_hold_is_active;
SELECT privacy.release_hold(:tenant_hold, 'done');

-- DETACH is refused while the partition holds erased rows awaiting finalization, and
-- DETACH ... CONCURRENTLY is refused outright.
SELECT pt.try($$ALTER TABLE pt.events DETACH PARTITION pt.events_umbrella$$) AS detach_with_erased_rows;
SELECT privacy.restore(:umbrella_job) AS restored;
ALTER TABLE pt.events DETACH PARTITION pt.events_umbrella CONCURRENTLY;
SET search_path = pt, public;
ALTER TABLE events DETACH PARTITION events_umbrella CONCURRENTLY;
RESET search_path;
-- A plain DETACH gives the partition back its previous RLS state, without hold triggers.
ALTER TABLE pt.events DETACH PARTITION pt.events_umbrella;
ALTER TABLE pt.events DETACH PARTITION pt.events_initech;
SELECT * FROM pt.protection() WHERE relation IN ('pt.events_initech', 'pt.events_umbrella');
SELECT count(*) AS still_registered FROM privacy.registered_partitions
 WHERE relation IN ('pt.events_initech'::regclass, 'pt.events_umbrella'::regclass);
SET ROLE pt_app;
SELECT id, subject FROM pt.events_umbrella ORDER BY id;
RESET ROLE;
SET ROLE pt_owner;
SELECT pt.try($$ALTER TABLE pt.events_umbrella NO FORCE ROW LEVEL SECURITY$$) AS detached_is_the_owners_again;
-- Attached again, it is protected again.
ALTER TABLE pt.events ATTACH PARTITION pt.events_initech FOR VALUES IN ('initech');
RESET ROLE;
SELECT * FROM pt.protection() WHERE relation = 'pt.events_initech';

-- What pg_privacy cannot protect is refused: a foreign-table partition, a registered table
-- becoming a partition of another table, table inheritance.
CREATE FOREIGN DATA WRAPPER pt_fdw;
CREATE SERVER pt_server FOREIGN DATA WRAPPER pt_fdw;
SELECT pt.try($$CREATE FOREIGN TABLE pt.events_remote PARTITION OF pt.events FOR VALUES IN ('remote') SERVER pt_server$$)
    AS foreign_partition;
CREATE TABLE pt.standalone (tenant text NOT NULL, id int NOT NULL, subject text NOT NULL, body text,
                            PRIMARY KEY (tenant, id));
CREATE INDEX ON pt.standalone (tenant, subject, id);
SELECT privacy.register_table('pt.standalone', 'subject', 'tenant');
CREATE TABLE pt.other (tenant text NOT NULL, id int NOT NULL, subject text NOT NULL, body text,
                       privacy_erased_by bigint) PARTITION BY LIST (tenant);
SELECT pt.try($$ALTER TABLE pt.other ATTACH PARTITION pt.standalone FOR VALUES IN ('x')$$) AS attach_registered_table;
SELECT pt.try($$CREATE TABLE pt.child (extra text) INHERITS (pt.standalone)$$) AS inherit_from_registered_table;
SELECT to_regclass('pt.events_remote') IS NULL AS no_foreign_partition, to_regclass('pt.child') IS NULL AS no_child;

-- DROP of a partition without a hold: its registration goes with it, audited.
DROP TABLE pt.events_hooli;
SELECT action, target, detail FROM privacy.audit_log WHERE action = 'table_dropped' ORDER BY id;
SELECT count(*) AS hooli_registered FROM privacy.registered_partitions WHERE relation::text LIKE '%hooli%';

-- Unregistering gives every partition back its previous state.
SELECT privacy.unregister_table('pt.events');
SELECT privacy.unregister_table('pt.standalone');
SELECT * FROM pt.protection();
SELECT count(*) AS partitions_registered FROM privacy.registered_partitions;
SELECT action, target, detail FROM privacy.audit_log WHERE action = 'table_unregistered' ORDER BY id;

SET client_min_messages = warning;
DROP SCHEMA pt CASCADE;
DROP SERVER pt_server;
DROP FOREIGN DATA WRAPPER pt_fdw;
DROP EXTENSION pg_privacy;
