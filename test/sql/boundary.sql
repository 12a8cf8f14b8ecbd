-- The C++/PostgreSQL boundary (docs/architecture.md, "The C++ / PostgreSQL boundary"), both
-- directions, through privacy_test.boundary_selftest (test/modules/privacy_test: a test-only
-- extension whose probe runs pg_privacy's own boundary code in pg_privacy.so; test/run-all
-- installs it, pg_privacy never ships it):
--   spi_error      an SPI statement fails inside C++ code with live RAII objects
--   cpp_error      a core::Error (SQLSTATE, detail, hint) leaves a SQL function
--   std_exception  any other C++ exception leaves a SQL function
-- Each must give a clean ERROR with the right SQLSTATE, run every destructor (live_objects = 0)
-- and leave the session usable. A leaked SPI connection or memory context would show up here
-- as a WARNING at the end of the transaction: none may appear in this file's output.
-- Every suite starts from a fresh extension: job ids and chains do not depend on test order.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_privacy CASCADE;
CREATE EXTENSION pg_privacy;
DROP EXTENSION IF EXISTS privacy_test CASCADE;
CREATE EXTENSION privacy_test;
RESET client_min_messages;

-- The happy path: 4 probes are alive while the function runs, none afterwards.
SELECT privacy_test.boundary_selftest('ok') AS probes_alive_during_call;
SELECT privacy_test.boundary_selftest('live_objects') AS probes_alive_after_call;

-- PostgreSQL -> C++ -> PostgreSQL: the division by zero keeps its own SQLSTATE and message.
SELECT privacy_test.boundary_selftest('spi_error');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT privacy_test.boundary_selftest('live_objects') AS probes_alive_after_spi_error;
SELECT 1 + 1 AS next_statement_works;

-- C++ -> PostgreSQL: our SQLSTATE, detail and hint reach the client.
SELECT privacy_test.boundary_selftest('cpp_error');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT privacy_test.boundary_selftest('live_objects') AS probes_alive_after_cpp_error;

-- Any other C++ exception is an internal error (XX000), never a crash.
SELECT privacy_test.boundary_selftest('std_exception');
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT privacy_test.boundary_selftest('live_objects') AS probes_alive_after_std_exception;

-- A bad argument is reported as such.
SELECT privacy_test.boundary_selftest('no_such_mode');
\echo sqlstate :LAST_ERROR_SQLSTATE

-- The same failures inside a transaction, each rolled back to a savepoint: the transaction
-- goes on, and its own work survives.
CREATE TEMP TABLE boundary_work (step text);
BEGIN;
INSERT INTO boundary_work VALUES ('before');
SAVEPOINT s1;
SELECT privacy_test.boundary_selftest('spi_error');
ROLLBACK TO SAVEPOINT s1;
INSERT INTO boundary_work VALUES ('after spi_error');
SAVEPOINT s2;
SELECT privacy_test.boundary_selftest('cpp_error');
ROLLBACK TO SAVEPOINT s2;
SAVEPOINT s3;
SELECT privacy_test.boundary_selftest('std_exception');
ROLLBACK TO SAVEPOINT s3;
INSERT INTO boundary_work VALUES ('after std_exception');
SELECT privacy_test.boundary_selftest('live_objects') AS probes_alive_in_transaction;
COMMIT;
SELECT step FROM boundary_work ORDER BY step;

-- Caught by PL/pgSQL (a subtransaction per BEGIN ... EXCEPTION block): the SQLSTATE, message,
-- detail and hint are all available to the handler.
DO $$
DECLARE
    mode text;
    state text; message text; detail text; hint text;
BEGIN
    FOREACH mode IN ARRAY ARRAY['spi_error', 'cpp_error', 'std_exception'] LOOP
        BEGIN
            PERFORM privacy_test.boundary_selftest(mode);
            RAISE NOTICE '%: no error (wrong)', mode;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                                    detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
            RAISE NOTICE '%: % "%" detail "%" hint "%"', mode, state, message, detail, hint;
        END;
    END LOOP;
    RAISE NOTICE 'live objects: %', privacy_test.boundary_selftest('live_objects');
END
$$;

-- Many failures in a row leak nothing either (memory contexts, SPI, probes).
DO $$
BEGIN
    FOR i IN 1..200 LOOP
        BEGIN
            PERFORM privacy_test.boundary_selftest(CASE i % 3 WHEN 0 THEN 'spi_error'
                                                           WHEN 1 THEN 'cpp_error'
                                                           ELSE 'std_exception' END);
        EXCEPTION WHEN OTHERS THEN NULL;
        END;
    END LOOP;
END
$$;
SELECT privacy_test.boundary_selftest('live_objects') AS probes_alive_after_200_failures;

-- Only superusers may call the self-test, not even privacy_admin.
CREATE ROLE regress_boundary_nobody NOLOGIN IN ROLE privacy_admin;
SET ROLE regress_boundary_nobody;
SELECT privacy_test.boundary_selftest('ok');
\echo sqlstate :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP ROLE regress_boundary_nobody;
DROP EXTENSION privacy_test;
