-- The audit trail (docs/audit.md, issue 6): append-only guard, verification, retention, export.
-- The append path itself is privacy._audit (20_core_functions.sql, src/audit/audit.cpp).

-- Append-only guard (src/audit/audit.cpp). Refuses UPDATE, DELETE and TRUNCATE of the trail for every
-- role, superusers included; only the extension's own C++ code (append, the retention purge) gets
-- through. INSERT outside the append path is refused too, except for superusers (pg_restore). ENABLE ALWAYS: session_replication_role = replica does not skip it.
CREATE FUNCTION privacy._audit_guard() RETURNS trigger
AS 'MODULE_PATHNAME', 'privacy_audit_guard' LANGUAGE C;

CREATE TRIGGER audit_log_append_only BEFORE INSERT OR UPDATE OR DELETE ON privacy.audit_log
    FOR EACH ROW EXECUTE FUNCTION privacy._audit_guard('log');
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON privacy.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION privacy._audit_guard('log');
CREATE TRIGGER audit_chains_guard BEFORE INSERT OR UPDATE OR DELETE ON privacy.audit_chains
    FOR EACH ROW EXECUTE FUNCTION privacy._audit_guard('chains');
CREATE TRIGGER audit_chains_no_truncate BEFORE TRUNCATE ON privacy.audit_chains
    FOR EACH STATEMENT EXECUTE FUNCTION privacy._audit_guard('chains');
ALTER TABLE privacy.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;
ALTER TABLE privacy.audit_log ENABLE ALWAYS TRIGGER audit_log_no_truncate;
ALTER TABLE privacy.audit_chains ENABLE ALWAYS TRIGGER audit_chains_guard;
ALTER TABLE privacy.audit_chains ENABLE ALWAYS TRIGGER audit_chains_no_truncate;

-- Re-checks every chain from its anchor (src/audit/verify.cpp). ok is false when any row was
-- changed, deleted, inserted or reordered; first_bad_id is the smallest id where a chain breaks
-- (for a deleted newest row: the chain head's last_id, which no longer exists).
CREATE FUNCTION privacy.verify_audit_log()
RETURNS TABLE (ok boolean, checked bigint, first_bad_id bigint)
AS 'MODULE_PATHNAME', 'privacy_verify_audit_log'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- The retention purge as of now, all batches at once (src/audit/retention.cpp). The launcher runs
-- the same purge by itself (step "audit retention"). Superuser only. There is no "as of" another
-- time: that would purge rows before their retention ends (docs/audit.md, "Retention").
CREATE FUNCTION privacy._purge_audit() RETURNS bigint
AS 'MODULE_PATHNAME', 'privacy_purge_audit' LANGUAGE C VOLATILE;

-- The rows of [from_ts, to_ts) in chain order (a tenant-scoped role gets its tenants' chains), for
--   \copy (SELECT * FROM privacy.audit_export('2024-01-01', '2025-01-01')) TO 'audit.csv' CSV HEADER
-- The export itself is audited ('audit_exported', platform chain).
CREATE FUNCTION privacy.audit_export(from_ts timestamptz, to_ts timestamptz)
RETURNS SETOF privacy.audit_log
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    PERFORM privacy._audit_export_begin(from_ts, to_ts, 'csv');
    RETURN QUERY
        SELECT l.* FROM privacy.audit_log l, privacy.tenant_scope() s
        WHERE l.at >= from_ts AND l.at < to_ts AND (s.platform_wide OR l.tenant_id = ANY (s.tenants))
        ORDER BY l.chain, l.id;
END
$fn$;

-- The same rows as JSON, one object per row, with "at" already in the canonical form the hash
-- covers (core/hash_chain.hpp), so a reviewer needs no time-zone conversion. Audited too.
CREATE FUNCTION privacy.audit_export_json(from_ts timestamptz, to_ts timestamptz)
RETURNS SETOF jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    PERFORM privacy._audit_export_begin(from_ts, to_ts, 'json');
    RETURN QUERY
        SELECT jsonb_build_object(
                   'id', l.id, 'chain', l.chain,
                   'at', to_char(l.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                   'session_user', l.actor, 'current_user', l.acting_role,
                   'client_addr', l.client_addr, 'application_name', l.application_name,
                   'action', l.action, 'tenant_id', l.tenant_id, 'job_id', l.job_id,
                   'target', l.target, 'outcome', l.outcome,
                   'detail', l.detail, 'detail_text', l.detail::text,
                   'prev_hash', l.prev_hash, 'hash', l.hash)
        FROM privacy.audit_log l, privacy.tenant_scope() s
        WHERE l.at >= from_ts AND l.at < to_ts AND (s.platform_wide OR l.tenant_id = ANY (s.tenants))
        ORDER BY l.chain, l.id;
END
$fn$;

-- One place for what both export forms do first: check the period and audit the export.
CREATE FUNCTION privacy._audit_export_begin(from_ts timestamptz, to_ts timestamptz, format text)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL OR from_ts >= to_ts THEN
        RAISE EXCEPTION 'audit export needs from_ts < to_ts, got [%, %)', from_ts, to_ts
            USING ERRCODE = '22023',
                  HINT = 'Pass the start (inclusive) and end (exclusive) of the period, e.g. ''2024-01-01'', now().';
    END IF;
    PERFORM privacy._audit('audit_exported', NULL, NULL, 'privacy.audit_log', 'ok',
        jsonb_build_object('format', format, 'from', from_ts, 'to', to_ts,
                           'rows', (SELECT count(*) FROM privacy.audit_log l, privacy.tenant_scope() s
                                    WHERE l.at >= from_ts AND l.at < to_ts
                                      AND (s.platform_wide OR l.tenant_id = ANY (s.tenants)))));
END
$fn$;

-- Auditors (and administrators) read, verify and export the trail. Nobody gets INSERT, UPDATE or
-- DELETE on it, nor EXECUTE on privacy._audit / privacy._purge_audit: only the extension writes.
REVOKE ALL ON privacy.audit_log, privacy.audit_chains FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy._audit(text, text, bigint, text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy._purge_audit() FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy._audit_export_begin(timestamptz, timestamptz, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy.verify_audit_log() FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy.audit_export(timestamptz, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy.audit_export_json(timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.verify_audit_log() TO privacy_auditor, privacy_admin;
GRANT EXECUTE ON FUNCTION privacy.audit_export(timestamptz, timestamptz) TO privacy_auditor, privacy_admin;
GRANT EXECUTE ON FUNCTION privacy.audit_export_json(timestamptz, timestamptz) TO privacy_auditor, privacy_admin;
