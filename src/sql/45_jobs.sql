-- Requests, decisions and running jobs (docs/jobs.md, "Requesting and deciding"). The bodies are
-- C++ (src/jobs/requests.cpp, src/jobs/run_job.cpp); status changes all go through the state machine in
-- src/core.

-- regulation: the law the request is answered under (docs/compliance.md); NULL: the tenant's.
-- on_behalf_of (here and in approve, reject, cancel, place_hold, release_hold, lift_restriction):
-- the human behind the database role, recorded in the job and the audit trail and compared by
-- four-eyes approval (docs/security.md, "Acting for a person"). Tenant-scoped roles act only on
-- their tenants (docs/security.md, "Tenant scopes").
CREATE FUNCTION privacy.request_export(tenant_id text, subject_id text, reason text, notify_email text DEFAULT NULL,
                                       regulation privacy.regulation DEFAULT NULL, on_behalf_of text DEFAULT NULL)
RETURNS bigint AS 'MODULE_PATHNAME', 'privacy_request_export'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION privacy.request_erase(tenant_id text, subject_id text, reason text, notify_email text DEFAULT NULL,
                                      regulation privacy.regulation DEFAULT NULL, on_behalf_of text DEFAULT NULL)
RETURNS bigint AS 'MODULE_PATHNAME', 'privacy_request_erase'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- Restriction of processing (GDPR Art. 18): hides the subject's rows from applications, through
-- the policy that hides erased rows, without erasing them, until privacy.lift_restriction(job)
-- (docs/jobs.md, "Restriction of processing").
CREATE FUNCTION privacy.request_restrict(tenant_id text, subject_id text, reason text, notify_email text DEFAULT NULL,
                                         regulation privacy.regulation DEFAULT NULL, on_behalf_of text DEFAULT NULL)
RETURNS bigint AS 'MODULE_PATHNAME', 'privacy_request_restrict'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION privacy.lift_restriction(job bigint, on_behalf_of text DEFAULT NULL) RETURNS bigint
AS 'MODULE_PATHNAME', 'privacy_lift_restriction'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION privacy.request_purge(tenant_id text, target_type privacy.target_type, target_id text,
                                      reason text, notify_email text DEFAULT NULL,
                                      regulation privacy.regulation DEFAULT NULL, on_behalf_of text DEFAULT NULL)
RETURNS bigint AS 'MODULE_PATHNAME', 'privacy_request_purge'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION privacy.approve(job_id bigint, note text DEFAULT NULL, on_behalf_of text DEFAULT NULL) RETURNS void
AS 'MODULE_PATHNAME', 'privacy_approve'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION privacy.reject(job_id bigint, reason text, on_behalf_of text DEFAULT NULL) RETURNS void
AS 'MODULE_PATHNAME', 'privacy_reject'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION privacy.cancel(job_id bigint, reason text, on_behalf_of text DEFAULT NULL) RETURNS void
AS 'MODULE_PATHNAME', 'privacy_cancel'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION privacy.retry(job_id bigint) RETURNS void
AS 'MODULE_PATHNAME', 'privacy_retry'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- Moves due_at later, as far as the job's regulation allows (docs/compliance.md), and tells the
-- requester (notify_email) with the reason.
CREATE FUNCTION privacy.extend_deadline(job_id bigint, by interval, reason text) RETURNS void
AS 'MODULE_PATHNAME', 'privacy_extend_deadline'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION privacy.preview(job_id bigint)
RETURNS TABLE (relation regclass, matching_rows bigint, held boolean)
AS 'MODULE_PATHNAME', 'privacy_preview'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- Flagged items (privacy.job_errors, docs/jobs.md "Flagged items"). retry_items re-runs the action
-- of the job's open items, now, in this session; resolve_item records a person's decision on one.
CREATE FUNCTION privacy.retry_items(job_id bigint, OUT items bigint, OUT succeeded bigint, OUT failed_again bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'privacy_retry_items'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION privacy.resolve_item(error_id bigint, note text) RETURNS void
AS 'MODULE_PATHNAME', 'privacy_resolve_item'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- SECURITY INVOKER on purpose: a procedure that commits cannot be SECURITY DEFINER. It checks
-- membership in privacy_admin itself and runs each batch as the extension owner.
CREATE PROCEDURE privacy.run_job(job_id bigint)
AS 'MODULE_PATHNAME', 'privacy_run_job' LANGUAGE C;

GRANT EXECUTE ON FUNCTION privacy.request_export(text, text, text, text, privacy.regulation, text),
                          privacy.request_erase(text, text, text, text, privacy.regulation, text),
                          privacy.request_restrict(text, text, text, text, privacy.regulation, text),
                          privacy.request_purge(text, privacy.target_type, text, text, text, privacy.regulation, text)
    TO privacy_requester, privacy_admin;
GRANT EXECUTE ON FUNCTION privacy.approve(bigint, text, text), privacy.reject(bigint, text, text),
                          privacy.cancel(bigint, text, text), privacy.retry(bigint),
                          privacy.lift_restriction(bigint, text),
                          privacy.extend_deadline(bigint, interval, text), privacy.preview(bigint),
                          privacy.retry_items(bigint), privacy.resolve_item(bigint, text)
    TO privacy_admin;
GRANT EXECUTE ON PROCEDURE privacy.run_job(bigint) TO privacy_admin;
