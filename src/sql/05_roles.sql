-- The three roles of docs/security.md ("Who is trusted with what"), and privacy_intake: what an
-- application's role needs to file self-service requests for its logged-in user
-- (privacy.submit_subject_request) and nothing else. Roles are cluster-wide: they are created
-- only if missing and DROP EXTENSION leaves them (other databases may use them).
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'privacy_admin') THEN
        CREATE ROLE privacy_admin NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'privacy_requester') THEN
        CREATE ROLE privacy_requester NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'privacy_auditor') THEN
        CREATE ROLE privacy_auditor NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'privacy_intake') THEN
        CREATE ROLE privacy_intake NOLOGIN;
    END IF;
END
$roles$;
