-- Functions of the foundation: worker status, the audit append path, the boundary self-test.

-- What the launcher and job workers are doing (one row each); says plainly when the library
-- was not preloaded or the launcher serves another database.
CREATE FUNCTION privacy.worker_status(
    OUT process text, OUT pid integer, OUT job_id bigint, OUT tenant_id text,
    OUT state text, OUT since timestamptz, OUT detail text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'privacy_worker_status' LANGUAGE C VOLATILE;

-- The one audit append path (src/audit/audit.cpp), for the parts of the API written in SQL.
-- Internal: no role but the extension's own SECURITY DEFINER functions may call it.
CREATE FUNCTION privacy._audit(action text, tenant_id text, job_id bigint, target text,
                               outcome text DEFAULT 'ok', detail jsonb DEFAULT '{}')
RETURNS bigint
AS 'MODULE_PATHNAME', 'privacy_audit_append' LANGUAGE C VOLATILE;

