-- pg_privacy 0.1.0 -> 0.2.0 (docs/upgrading.md). Every schema change since 0.1.0, in the order
-- the install script (src/sql/) makes it; test/t/097_upgrade.pl checks that an updated 0.1.0
-- installation has the same catalog as a fresh 0.2.0 one.
\echo Use "ALTER EXTENSION pg_privacy UPDATE TO '0.2.0'" to load this file. \quit

-- The boundary probe is a test entry point: it moved to the test-only extension privacy_test.
DROP FUNCTION privacy._boundary_selftest(text);
-- So is the hook that sent a job's event: privacy_test.notify_job_event.
DROP FUNCTION privacy._notify_job_event(bigint, text, text);
