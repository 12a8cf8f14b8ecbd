-- pg_privacy install script. The Makefile concatenates src/sql/*.sql in file-name order.
\echo Use "CREATE EXTENSION pg_privacy" to load this file. \quit

-- The public vocabulary of DESIGN section 3.
CREATE TYPE privacy.job_kind AS ENUM ('export', 'erase', 'purge');
CREATE TYPE privacy.job_status AS ENUM
    ('pending', 'approved', 'processing', 'completed', 'failed', 'rejected', 'cancelled');
CREATE TYPE privacy.target_type AS ENUM ('subject', 'tenant');
CREATE TYPE privacy.hold_scope AS ENUM ('tenant', 'subject', 'table');
