-- pg_privacy install script. The Makefile concatenates src/sql/*.sql in file-name order.
\echo Use "CREATE EXTENSION pg_privacy" to load this file. \quit

-- Created here, not by the control file, so that it is a member of the extension.
CREATE SCHEMA privacy;
COMMENT ON SCHEMA privacy IS 'pg_privacy: data-subject requests, legal holds and the audit trail';

-- The public vocabulary (docs/architecture.md, "Data model").
-- 'restrict': restriction of processing (GDPR Art. 18, docs/jobs.md "Restriction of processing").
CREATE TYPE privacy.job_kind AS ENUM ('export', 'erase', 'purge', 'restrict');
CREATE TYPE privacy.job_status AS ENUM
    ('pending', 'approved', 'processing', 'completed', 'failed', 'rejected', 'cancelled');
CREATE TYPE privacy.target_type AS ENUM ('subject', 'tenant');
-- What happens to the rows an erase job marked (docs/jobs.md, "Lifecycle"); NULL for other jobs.
CREATE TYPE privacy.finalization_state AS ENUM
    ('awaiting_window', 'finalizing', 'held', 'finalized', 'finalized_with_errors');

-- The law a request is answered under: it decides the deadline and how far it may be extended
-- (src/core/deadline.hpp, docs/compliance.md).
CREATE TYPE privacy.regulation AS ENUM ('gdpr', 'ccpa', 'other');
CREATE TYPE privacy.hold_scope AS ENUM ('tenant', 'subject', 'table');
