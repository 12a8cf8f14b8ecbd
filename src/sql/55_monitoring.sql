-- Monitoring from psql (docs/jobs.md, "Watching from psql"): one row per job, search, detail.

CREATE VIEW privacy.job_overview AS
SELECT j.id,
       j.kind,
       j.target_type,
       j.target_id,
       j.tenant_id,
       t.display_name AS tenant_name,
       j.requested_by,
       j.status,
       j.requires_approval,
       j.requested_at AS created_at,
       j.updated_at,
       CASE WHEN j.status = 'completed' THEN 100.0
            WHEN coalesce(j.total_items, 0) = 0 THEN 0.0
            ELSE round(100.0 * least(j.processed_items + j.failed_items, j.total_items) / j.total_items, 1)
       END AS progress_pct,
       j.processed_items,
       j.total_items,
       j.eta,
       j.failed_items,
       j.due_at,
       (j.status IN ('pending', 'approved', 'processing', 'failed') AND j.due_at < now()) AS overdue,
       j.finalization,
       j.recoverable_until,
       (SELECT count(*) FROM privacy.job_errors e WHERE e.job_id = j.id AND e.resolution IS NULL) AS open_items,
       j.attempts,
       j.last_error,
       j.cost_naps,      -- load-aware pacing (docs/jobs.md, "Sizing throttles")
       j.cost_napped
FROM privacy.jobs j
LEFT JOIN privacy.tenants t ON t.tenant_id = j.tenant_id;

-- Search by tenant id or name, job id or target id; requesters see only their own jobs, and
-- tenant-scoped roles only the jobs of their tenants (docs/security.md, "Tenant scopes").
CREATE FUNCTION privacy.find_jobs(search text DEFAULT NULL, status privacy.job_status DEFAULT NULL,
                                  kind privacy.job_kind DEFAULT NULL)
RETURNS SETOF privacy.job_overview
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT o.*
      FROM privacy.job_overview o, privacy.tenant_scope() s
     WHERE (find_jobs.status IS NULL OR o.status = find_jobs.status)
       AND (find_jobs.kind IS NULL OR o.kind = find_jobs.kind)
       AND (find_jobs.search IS NULL
            OR o.tenant_id ILIKE '%' || find_jobs.search || '%'
            OR o.tenant_name ILIKE '%' || find_jobs.search || '%'
            OR o.target_id ILIKE '%' || find_jobs.search || '%'
            OR o.id::text = btrim(find_jobs.search))
       AND (pg_has_role(session_user, 'privacy_admin', 'USAGE') OR o.requested_by = session_user)
       AND (s.platform_wide OR o.tenant_id = ANY (s.tenants))
     ORDER BY o.id DESC
$fn$;

-- Everything about one job: the row, its tenant settings, error items, audit trail, export file.
CREATE FUNCTION privacy.job_detail(job_id bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    detail jsonb;
BEGIN
    SELECT jsonb_build_object(
               'job', to_jsonb(j) - 'cursor',
               'progress', (SELECT to_jsonb(o) FROM privacy.job_overview o WHERE o.id = j.id),
               'tenant_settings', (SELECT to_jsonb(s) FROM privacy._tenant_settings(j.tenant_id) s),
               'errors', (SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY e.id), '[]')
                            FROM (SELECT id, relation::text, row_key, phase, attempt, sqlstate, message, at,
                                         resolution, resolved_by, resolved_at, note
                                    FROM privacy.job_errors WHERE job_errors.job_id = j.id
                                   ORDER BY id LIMIT 100) e),
               'error_count', (SELECT count(*) FROM privacy.job_errors e WHERE e.job_id = j.id),
               'open_items', (SELECT count(*) FROM privacy.job_errors e
                               WHERE e.job_id = j.id AND e.resolution IS NULL),
               'history', (SELECT coalesce(jsonb_agg(jsonb_build_object('at', a.at, 'action', a.action,
                                                                       'actor', a.actor, 'detail', a.detail)
                                                     ORDER BY a.id), '[]')
                             FROM privacy.audit_log a WHERE a.job_id = j.id),
               'export_file', (SELECT to_jsonb(f) FROM privacy.export_files f WHERE f.job_id = j.id))
      INTO detail
      FROM privacy.jobs j
     WHERE j.id = job_detail.job_id
       AND (pg_has_role(session_user, 'privacy_admin', 'USAGE') OR j.requested_by = session_user)
       AND privacy.in_tenant_scope(j.tenant_id);
    IF detail IS NULL THEN
        RAISE EXCEPTION 'job % does not exist', job_id
            USING ERRCODE = '22023', HINT = 'See privacy.find_jobs() for the jobs you can see.';
    END IF;
    RETURN detail;
END
$fn$;

GRANT SELECT ON privacy.job_overview TO privacy_admin;
GRANT EXECUTE ON FUNCTION privacy.find_jobs(text, privacy.job_status, privacy.job_kind),
                          privacy.job_detail(bigint)
    TO privacy_admin, privacy_requester;
