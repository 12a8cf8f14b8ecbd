-- Objects every figure of bench/run shares: the schema, the application role pgbench connects
-- as (not a superuser, so row-level security applies to it), and helper functions.
CREATE EXTENSION IF NOT EXISTS pg_privacy;
CREATE SCHEMA bench;
CREATE ROLE bench_app LOGIN;
GRANT USAGE ON SCHEMA bench TO bench_app;

-- Request an erase and approve it (the bench cluster sets require_distinct_approver = off).
CREATE FUNCTION bench.erase_job(tenant text, subject text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE job bigint;
BEGIN
    job := privacy.request_erase(tenant, subject, 'bench');
    IF (SELECT status FROM privacy.jobs WHERE id = job) = 'pending' THEN
        PERFORM privacy.approve(job, 'bench');
    END IF;
    RETURN job;
END $$;

-- Waits (polling, each query sees what other sessions committed) until a job has ended.
CREATE FUNCTION bench.wait_job(job bigint, timeout_s float8) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    st text;
    deadline timestamptz := clock_timestamp() + make_interval(secs => timeout_s);
BEGIN
    LOOP
        SELECT status::text INTO st FROM privacy.jobs WHERE id = job;
        IF st IN ('completed', 'failed', 'cancelled', 'rejected') THEN RETURN st; END IF;
        IF clock_timestamp() > deadline THEN RETURN 'timeout:' || st; END IF;
        PERFORM pg_sleep(0.002);
    END LOOP;
END $$;

-- Waits until a job's rows are finalized (B2).
CREATE FUNCTION bench.wait_finalized(job bigint, timeout_s float8) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE deadline timestamptz := clock_timestamp() + make_interval(secs => timeout_s);
BEGIN
    LOOP
        IF (SELECT finalized_at IS NOT NULL FROM privacy.jobs WHERE id = job) THEN RETURN true; END IF;
        IF (SELECT status IN ('failed', 'cancelled') FROM privacy.jobs WHERE id = job) THEN RETURN false; END IF;
        IF clock_timestamp() > deadline THEN RETURN false; END IF;
        PERFORM pg_sleep(0.002);
    END LOOP;
END $$;

-- Waits until a job is processing and has committed at least min_rows.
CREATE FUNCTION bench.wait_progress(job bigint, min_rows bigint, timeout_s float8) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE deadline timestamptz := clock_timestamp() + make_interval(secs => timeout_s);
BEGIN
    LOOP
        IF (SELECT status = 'processing' AND processed_items >= min_rows FROM privacy.jobs WHERE id = job) THEN RETURN true; END IF;
        IF (SELECT status NOT IN ('approved', 'processing') FROM privacy.jobs WHERE id = job) THEN RETURN false; END IF;
        IF clock_timestamp() > deadline THEN RETURN false; END IF;
        PERFORM pg_sleep(0.002);
    END LOOP;
END $$;

-- B8: achieved rows/s of a running job, from its committed progress. After warmup_s (the token
-- bucket starts with a burst) it notes the time and processed_items at the first batch commit it
-- sees, then at the last one within span_s: the rate between two batch commits is exact.
CREATE FUNCTION bench.sample_rate(job bigint, warmup_s float8, span_s float8) RETURNS float8
LANGUAGE plpgsql AS $$
DECLARE
    p bigint; last_p bigint;
    p0 bigint; t0 timestamptz; p1 bigint; t1 timestamptz;
    begin_at timestamptz := clock_timestamp() + make_interval(secs => warmup_s);
BEGIN
    PERFORM pg_sleep(warmup_s);
    SELECT processed_items INTO last_p FROM privacy.jobs WHERE id = job;
    LOOP
        SELECT processed_items INTO p FROM privacy.jobs WHERE id = job;
        IF p <> last_p THEN
            IF p0 IS NULL THEN p0 := p; t0 := clock_timestamp();
            ELSE p1 := p; t1 := clock_timestamp(); END IF;
            last_p := p;
        END IF;
        EXIT WHEN t0 IS NOT NULL AND clock_timestamp() > t0 + make_interval(secs => span_s);
        EXIT WHEN clock_timestamp() > begin_at + make_interval(secs => span_s * 3);
        PERFORM pg_sleep(0.002);
    END LOOP;
    IF p1 IS NULL THEN RETURN NULL; END IF;
    RETURN (p1 - p0) / extract(epoch FROM t1 - t0);
END $$;

-- B1 baseline: what a DBA would write instead of pg_privacy, a loop of
-- UPDATE ... WHERE key IN (SELECT ... LIMIT n); COMMIT. Returns nothing; timed from psql.
CREATE PROCEDURE bench.mark_loop(rel regclass, tenant text, subject text, n integer)
LANGUAGE plpgsql AS $$
DECLARE c bigint;
BEGIN
    LOOP
        EXECUTE format('UPDATE %s SET privacy_erased_by = -2 WHERE id IN (SELECT id FROM %s'
                       ' WHERE tenant = $1 AND subject = $2 AND privacy_erased_by IS NULL LIMIT $3)', rel, rel)
            USING tenant, subject, n;
        GET DIAGNOSTICS c = ROW_COUNT;
        COMMIT;
        EXIT WHEN c < n;
    END LOOP;
END $$;

-- B5 baseline: the legal-hold check of docs/legal-holds.md as a PL/pgSQL row trigger.
CREATE FUNCTION bench.plpgsql_hold_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM privacy.legal_holds h
                WHERE h.active AND (h.expires_at IS NULL OR h.expires_at > now())
                  AND (TG_OP = 'DELETE' OR h.block_updates)
                  AND ((h.scope = 'tenant' AND h.scope_id = OLD.tenant)
                    OR (h.scope = 'subject' AND h.tenant_id = OLD.tenant AND h.scope_id = OLD.subject)
                    OR (h.scope = 'table' AND h.relation = TG_RELID))) THEN
        RAISE EXCEPTION 'row of subject % of tenant % is under a legal hold', OLD.subject, OLD.tenant
            USING ERRCODE = 'PV001';
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END $$;

-- B9 baseline: privacy.configure_tenant itself, less its audit append. The copy is made from the
-- installed function's own definition (the PERFORM privacy._audit(...) statement cut out), so the
-- baseline does exactly the validation, locking and upsert the audited call does, in this build.
-- Same name in schema bench: the body qualifies its arguments with the function's name.
DO $$
DECLARE
    audited text := pg_get_functiondef('privacy.configure_tenant'::regproc);
    unaudited text;
BEGIN
    unaudited := regexp_replace(audited, 'PERFORM privacy\._audit\(.*?\);\n', '', 's');
    unaudited := replace(unaudited, 'CREATE OR REPLACE FUNCTION privacy.configure_tenant(',
                         'CREATE FUNCTION bench.configure_tenant(');
    IF unaudited LIKE '%privacy._audit%' OR unaudited NOT LIKE 'CREATE FUNCTION bench.configure_tenant(%' THEN
        RAISE EXCEPTION 'bench: cannot derive an unaudited copy of privacy.configure_tenant from its definition';
    END IF;
    EXECUTE unaudited;
END $$;

-- B9 runs as an administrator that is not a superuser, like a DBA's tool would.
CREATE ROLE bench_admin LOGIN IN ROLE privacy_admin;
GRANT USAGE ON SCHEMA bench TO bench_admin;
GRANT EXECUTE ON FUNCTION bench.configure_tenant TO bench_admin;
