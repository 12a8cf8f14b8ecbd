-- Test-only probes of pg_privacy (see Makefile). Superuser only. pg_privacy.so must be loaded.
\echo Use "CREATE EXTENSION privacy_test" to load this file. \quit

-- Proves the C++/PostgreSQL boundary in both directions (test/sql/boundary.sql, boundary_selftest.cpp).
CREATE FUNCTION boundary_selftest(mode text) RETURNS integer
AS 'MODULE_PATHNAME', 'privacy_test_boundary_selftest' LANGUAGE C STRICT VOLATILE;
REVOKE EXECUTE ON FUNCTION boundary_selftest(text) FROM PUBLIC;

-- Sends the event of job_id's current row as a change from old_status to new_status (pg_notify
-- and the e-mail rules) and returns the JSON payload (notify_job_event.cpp).
CREATE FUNCTION notify_job_event(job_id bigint, old_status text, new_status text) RETURNS text
AS 'MODULE_PATHNAME', 'privacy_test_notify_job_event' LANGUAGE C VOLATILE;
REVOKE EXECUTE ON FUNCTION notify_job_event(bigint, text, text) FROM PUBLIC;

-- The audit retention purge, every batch, as if it ran at as_of (purge_audit_as_of.cpp): the
-- retention tests purge rows the floor keeps for a year.
CREATE FUNCTION purge_audit_as_of(as_of timestamptz) RETURNS bigint
AS 'MODULE_PATHNAME', 'privacy_test_purge_audit_as_of' LANGUAGE C VOLATILE;
REVOKE EXECUTE ON FUNCTION purge_audit_as_of(timestamptz) FROM PUBLIC;
