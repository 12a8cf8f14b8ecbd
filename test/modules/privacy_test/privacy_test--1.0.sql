-- Test-only probes of pg_privacy (see Makefile). Superuser only.
\echo Use "CREATE EXTENSION privacy_test" to load this file. \quit

-- Proves the C++/PostgreSQL boundary in both directions (test/sql/boundary.sql, boundary_selftest.cpp).
CREATE FUNCTION boundary_selftest(mode text) RETURNS integer
AS 'MODULE_PATHNAME', 'privacy_boundary_selftest' LANGUAGE C STRICT VOLATILE;
REVOKE EXECUTE ON FUNCTION boundary_selftest(text) FROM PUBLIC;
