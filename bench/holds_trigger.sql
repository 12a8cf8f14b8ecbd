-- Cost of the legal-hold trigger (issue 5 targets, for the benchmark issue to integrate).
-- Run on a scratch database of a preloaded server, as superuser:
--   psql -X -d bench -v rows=100000 -v reps=5 -f bench/holds_trigger.sql
-- Prints, for a bulk UPDATE and a bulk DELETE of every row (each rolled back), the best time
-- of `reps` runs for: no trigger; the C++ trigger with 0 active holds; with 1,000 active holds
-- (none covering the rows: the usual case); and the same check as a PL/pgSQL trigger with 1,000
-- holds. Ratios against "no trigger" are measured in the same run. Targets: 0 holds <= 1.05,
-- 1,000 holds <= 1.15, PL/pgSQL / C++ >= 3.
\set ON_ERROR_STOP 1
\if :{?rows} \else \set rows 100000 \endif
\if :{?reps} \else \set reps 5 \endif
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_privacy;
DROP SCHEMA IF EXISTS holds_bench CASCADE;
DELETE FROM privacy.registered_tables WHERE relation::text LIKE 'holds_bench.%';
CREATE SCHEMA holds_bench;
CREATE TABLE holds_bench.t (id int PRIMARY KEY, tenant text, subject text, amount int);
INSERT INTO holds_bench.t SELECT g, 't' || (g % 10), 's' || (g % 5000), g FROM generate_series(1, :rows) g;
VACUUM ANALYZE holds_bench.t;
INSERT INTO privacy.registered_tables (relation, subject_column, tenant_column, key_columns)
VALUES ('holds_bench.t', 'subject', 'tenant', '{id}');

-- The same check in PL/pgSQL: one query per row against privacy.legal_holds.
CREATE FUNCTION holds_bench.plpgsql_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM privacy.legal_holds h
              WHERE h.active AND (h.expires_at IS NULL OR h.expires_at > now())
                AND ((h.scope = 'tenant' AND h.scope_id = OLD.tenant)
                  OR (h.scope = 'subject' AND h.tenant_id = OLD.tenant AND h.scope_id = OLD.subject)
                  OR (h.scope = 'table' AND h.scope_id = TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME))) THEN
    RAISE EXCEPTION 'held' USING ERRCODE = 'PV001';
  END IF;
  RETURN CASE WHEN TG_OP = 'UPDATE' THEN NEW ELSE OLD END;
END $$;

-- Best of reps runs of a statement, each rolled back; milliseconds.
CREATE FUNCTION holds_bench.best_ms(statement text, reps int) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE best float8 := 'Infinity'; started timestamptz; elapsed float8;
BEGIN
  FOR i IN 1..reps LOOP
    BEGIN
      started := clock_timestamp();
      EXECUTE statement;
      elapsed := extract(epoch FROM clock_timestamp() - started) * 1000;
      best := least(best, elapsed);
      RAISE EXCEPTION USING ERRCODE = 'P0004';  -- roll the changes back
    EXCEPTION WHEN assert_failure THEN NULL;
    END;
  END LOOP;
  RETURN best;
END $$;

CREATE TABLE holds_bench.results (variant text, operation text, ms float8);
CREATE FUNCTION holds_bench.measure(variant text, reps int) RETURNS void LANGUAGE sql AS $$
  INSERT INTO holds_bench.results VALUES
    (variant, 'UPDATE', holds_bench.best_ms('UPDATE holds_bench.t SET amount = amount + 1', reps)),
    (variant, 'DELETE', holds_bench.best_ms('DELETE FROM holds_bench.t', reps));
$$;

SELECT holds_bench.measure('no trigger', :reps);
-- The floor of any BEFORE ROW trigger: PostgreSQL's own near-empty C trigger (UPDATE only).
CREATE TRIGGER floor BEFORE UPDATE ON holds_bench.t
    FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger();
INSERT INTO holds_bench.results
VALUES ('builtin C trigger (floor)', 'UPDATE', holds_bench.best_ms('UPDATE holds_bench.t SET amount = amount + 1', :reps));
DROP TRIGGER floor ON holds_bench.t;
SELECT privacy._attach_hold_triggers('holds_bench.t', 'subject', 'tenant');
SELECT holds_bench.measure('C++ trigger, 0 holds', :reps);
INSERT INTO privacy.legal_holds (scope, scope_id, tenant_id, reason)
SELECT 'subject', 'other-' || g, 'other-tenant', 'holds_bench' FROM generate_series(1, 1000) g;
SELECT holds_bench.measure('C++ trigger, 1000 holds', :reps);
SELECT privacy._detach_hold_triggers('holds_bench.t');
CREATE TRIGGER plpgsql_guard BEFORE UPDATE OR DELETE ON holds_bench.t
    FOR EACH ROW EXECUTE FUNCTION holds_bench.plpgsql_guard();
SELECT holds_bench.measure('PL/pgSQL trigger, 1000 holds', least(:reps, 2));

SELECT r.operation, r.variant, round(r.ms::numeric, 1) AS ms,
       round((r.ms / base.ms)::numeric, 3) AS vs_no_trigger,
       CASE WHEN r.variant LIKE 'PL/pgSQL%' THEN round((r.ms / cpp.ms)::numeric, 1) END AS vs_cpp_1000
  FROM holds_bench.results r
  JOIN holds_bench.results base ON base.operation = r.operation AND base.variant = 'no trigger'
  LEFT JOIN holds_bench.results cpp ON cpp.operation = r.operation AND cpp.variant = 'C++ trigger, 1000 holds'
 ORDER BY r.operation DESC, r.ms;

-- Clean up (the bench holds are deleted outright: they were never real holds).
DELETE FROM privacy.legal_holds WHERE reason = 'holds_bench';
DELETE FROM privacy.registered_tables WHERE relation = 'holds_bench.t'::regclass;
DROP SCHEMA holds_bench CASCADE;
