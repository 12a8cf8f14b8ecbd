-- CREATE EXTENSION builds the whole catalog schema (docs/architecture.md, "Data model"); DROP
-- EXTENSION removes all of it but the (cluster-wide) roles. Runs in a database of its own, so the
-- DROP cannot disturb what other suites left in the regression database.
\set regress_db :DBNAME
CREATE DATABASE privacy_regress_schema;
\c privacy_regress_schema
CREATE EXTENSION pg_privacy;

-- The four enum types with their exact labels, in order.
SELECT t.typname, string_agg(e.enumlabel, ', ' ORDER BY e.enumsortorder) AS labels
FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
WHERE t.typnamespace = 'privacy'::regnamespace
GROUP BY t.typname ORDER BY t.typname;

-- Every table of section 3 exists.
SELECT name, to_regclass('privacy.' || name) IS NOT NULL AS present
FROM unnest(ARRAY['registered_tables', 'column_rules', 'tenants', 'jobs', 'job_errors',
                  'legal_holds', 'export_recipients', 'export_files', 'audit_log',
                  'notifications']) AS name
ORDER BY name;

-- The roles exist and cannot log in.
SELECT rolname, rolcanlogin, rolsuper, rolbypassrls
FROM pg_roles WHERE rolname IN ('privacy_admin', 'privacy_requester', 'privacy_auditor')
ORDER BY rolname;

-- The CHECKs refuse what makes no sense (terse: the failing row holds timestamps).
\set VERBOSITY terse
INSERT INTO privacy.jobs (kind, target_type, target_id, tenant_id, reason, requires_approval,
                          status, due_at)
VALUES ('erase', 'tenant', 'acme', 'acme', 'only purge addresses a whole tenant', true,
        'pending', now());
INSERT INTO privacy.tenants (tenant_id, rows_per_second) VALUES ('acme', -5);
\set VERBOSITY default

-- DROP EXTENSION leaves no schema, relation, type or function behind; the roles stay.
DROP EXTENSION pg_privacy;
SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = 'privacy') AS schemas,
       (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'privacy') AS relations,
       (SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE n.nspname = 'privacy') AS types,
       (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'privacy') AS functions,
       (SELECT count(*) FROM pg_roles
         WHERE rolname IN ('privacy_admin', 'privacy_requester', 'privacy_auditor')) AS roles_kept;

-- And it can be created again over the roles left behind.
CREATE EXTENSION pg_privacy;
SELECT count(*) > 0 AS recreated FROM pg_class WHERE relnamespace = 'privacy'::regnamespace;

\c :regress_db
DROP DATABASE privacy_regress_schema;
