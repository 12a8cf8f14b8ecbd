-- Cost of legal-hold enforcement on bulk UPDATE / DELETE (issue 5 targets).
-- Run on a scratch database of a preloaded server (not privacy.database: the launcher must not
-- touch the bench holds), as superuser:
--   psql -X -d bench -v rows=100000 -v rounds=3 -f bench/holds_trigger.sql
-- Variants, measured in alternating rounds (each round runs every variant once), median per
-- variant; each statement is rolled back:
--   no trigger                   the table unregistered
--   registered, 0 holds          registered; no hold, so no trigger (what holds::sync_triggers does)
--   C++ trigger, 0 holds         the trigger attached anyway (the old behaviour; fast path only)
--   C++ trigger, 1000 holds      1,000 active subject holds (none covering the rows: the usual
--                                case); the trigger attached by sync, every row looked up
--   PL/pgSQL trigger, 1000 holds the same check as one query per row
-- Targets: "registered, 0 holds" <= 1.05 x no trigger; "C++ trigger, 1000 holds" <= 1.15;
-- PL/pgSQL / C++ (1000 holds) >= 3.
\set ON_ERROR_STOP 1
\if :{?rows} \else \set rows 100000 \endif
\if :{?rounds} \else \set rounds 3 \endif
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_privacy;
DROP SCHEMA IF EXISTS holds_bench CASCADE;
DELETE FROM privacy.registered_tables WHERE relation::text LIKE 'holds_bench.%';
DELETE FROM privacy.legal_holds WHERE reason = 'holds_bench';
CREATE SCHEMA holds_bench;
CREATE TABLE holds_bench.t (id int PRIMARY KEY, tenant text, subject text, amount int);
INSERT INTO holds_bench.t SELECT g, 't' || (g % 10), 's' || (g % 5000), g FROM generate_series(1, :rows) g;
VACUUM ANALYZE holds_bench.t;

-- The same check in PL/pgSQL: one query per row against privacy.legal_holds.
CREATE FUNCTION holds_bench.plpgsql_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM privacy.legal_holds h
              WHERE h.active AND (h.expires_at IS NULL OR h.expires_at > now())
                AND ((h.scope = 'tenant' AND h.scope_id = OLD.tenant)
                  OR (h.scope = 'subject' AND h.tenant_id = OLD.tenant AND h.scope_id = OLD.subject)
                  OR (h.scope = 'table' AND h.relation = TG_RELID))) THEN
    RAISE EXCEPTION 'held' USING ERRCODE = 'PV001';
  END IF;
  RETURN CASE WHEN TG_OP = 'UPDATE' THEN NEW ELSE OLD END;
END $$;

-- Puts the table in the state of a variant (its own transaction, so the holds are committed and
-- the cached copy is read once, as in production).
CREATE FUNCTION holds_bench.setup(variant text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM privacy.legal_holds WHERE reason = 'holds_bench';
  DELETE FROM privacy.registered_tables WHERE relation = 'holds_bench.t'::regclass;
  PERFORM privacy._detach_hold_triggers('holds_bench.t');
  DROP TRIGGER IF EXISTS plpgsql_guard ON holds_bench.t;
  IF variant = 'no trigger' THEN RETURN; END IF;
  INSERT INTO privacy.registered_tables (relation, subject_column, tenant_column, key_columns)
  VALUES ('holds_bench.t', 'subject', 'tenant', '{id}');
  IF variant LIKE '%1000 holds' THEN
    INSERT INTO privacy.legal_holds (scope, scope_id, tenant_id, reason)
    SELECT 'subject', 'other-' || g, 'other-tenant', 'holds_bench' FROM generate_series(1, 1000) g;
  END IF;
  IF variant LIKE 'PL/pgSQL%' THEN
    CREATE TRIGGER plpgsql_guard BEFORE UPDATE OR DELETE ON holds_bench.t
        FOR EACH ROW EXECUTE FUNCTION holds_bench.plpgsql_guard();
  ELSIF variant = 'C++ trigger, 0 holds' THEN
    PERFORM privacy._attach_hold_triggers('holds_bench.t', 'subject', 'tenant');
  ELSE
    PERFORM privacy._sync_hold_triggers('holds_bench.t', true);
  END IF;
END $$;

-- Milliseconds of one run of a statement, rolled back.
CREATE FUNCTION holds_bench.run_ms(statement text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE started timestamptz; elapsed float8;
BEGIN
  started := clock_timestamp();
  EXECUTE statement;
  elapsed := extract(epoch FROM clock_timestamp() - started) * 1000;
  RAISE EXCEPTION USING ERRCODE = 'P0004', MESSAGE = elapsed::text;  -- roll the changes back
EXCEPTION WHEN assert_failure THEN
  RETURN SQLERRM::float8;
END $$;

CREATE TABLE holds_bench.results (variant text, operation text, round int, ms float8,
                                  hold_triggers int);
CREATE FUNCTION holds_bench.measure(variant text, round int) RETURNS void LANGUAGE sql AS $$
  INSERT INTO holds_bench.results
  SELECT variant, op, round, holds_bench.run_ms(sql),
         (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'holds_bench.t'::regclass AND NOT tgisinternal)
    FROM (VALUES ('UPDATE', 'UPDATE holds_bench.t SET amount = amount + 1'),
                 ('DELETE', 'DELETE FROM holds_bench.t')) s(op, sql);
$$;

CREATE TABLE holds_bench.variants (ord int, variant text);
INSERT INTO holds_bench.variants VALUES (1, 'no trigger'), (2, 'registered, 0 holds'),
  (3, 'C++ trigger, 0 holds'), (4, 'C++ trigger, 1000 holds'), (5, 'PL/pgSQL trigger, 1000 holds');

-- One statement (transaction) per setup and per measurement, alternating the variants per round.
SELECT step FROM (
  SELECT format('SELECT holds_bench.setup(%L)', v.variant) AS step, r, v.ord, 1 AS k
    FROM holds_bench.variants v, generate_series(1, :rounds) r
  UNION ALL
  SELECT format('SELECT holds_bench.measure(%L, %s)', v.variant, r), r, v.ord, 2
    FROM holds_bench.variants v, generate_series(1, :rounds) r) steps
ORDER BY r, ord, k \gexec

WITH med AS (
  SELECT variant, operation, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS ms, max(hold_triggers) AS triggers
    FROM holds_bench.results GROUP BY 1, 2)
SELECT m.operation, m.variant, m.triggers AS "triggers", round(m.ms::numeric, 1) AS median_ms,
       round((m.ms / base.ms)::numeric, 3) AS vs_no_trigger,
       CASE WHEN m.variant LIKE 'PL/pgSQL%' THEN round((m.ms / cpp.ms)::numeric, 1) END AS vs_cpp_1000
  FROM med m
  JOIN med base ON base.operation = m.operation AND base.variant = 'no trigger'
  LEFT JOIN med cpp ON cpp.operation = m.operation AND cpp.variant = 'C++ trigger, 1000 holds'
  JOIN holds_bench.variants v ON v.variant = m.variant
 ORDER BY m.operation DESC, v.ord;

-- Clean up (the bench holds are deleted outright: they were never real holds).
SELECT holds_bench.setup('no trigger');
DROP SCHEMA holds_bench CASCADE;
