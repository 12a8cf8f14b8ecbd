-- Privileges (docs/security.md, "What each role can do"). Nothing is executable by PUBLIC; each
-- role gets exactly its functions. Tables are read-only to the roles: every write goes through the
-- extension.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA privacy FROM PUBLIC;
REVOKE ALL ON ALL PROCEDURES IN SCHEMA privacy FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA privacy FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA privacy FROM PUBLIC;

GRANT USAGE ON SCHEMA privacy TO privacy_admin, privacy_requester, privacy_auditor;
GRANT privacy_requester TO privacy_admin;

-- Administrators read every table and view except the audit chain heads and export bytes.
GRANT SELECT ON ALL TABLES IN SCHEMA privacy TO privacy_admin;
REVOKE SELECT ON privacy.export_file_chunks FROM privacy_admin;
-- privacy.hold_replica is pg_privacy's copy of the holds for Citus nodes (74_citus.sql): admins
-- read privacy.legal_holds, whose rows a tenant-scoped admin sees for its tenants only.
REVOKE SELECT ON privacy.hold_replica FROM privacy_admin;
-- The 'hash' rule's secret (40_registry.sql) and the receipt signing key (77_compliance.sql) are
-- readable by no role at all.
REVOKE ALL ON privacy.installation_secret, privacy.signing_key FROM privacy_admin;
-- Auditors read the trail.
GRANT SELECT ON privacy.audit_log, privacy.audit_chains TO privacy_auditor;

GRANT EXECUTE ON FUNCTION privacy.worker_status() TO privacy_admin, privacy_auditor;
GRANT EXECUTE ON FUNCTION privacy.configure_tenant(text, text, integer, integer, interval, interval,
                                                   interval, interval, privacy.job_kind[], boolean, text,
                                                   privacy.regulation, text, text, text, integer, interval)
    TO privacy_admin;
GRANT EXECUTE ON FUNCTION privacy.tenant_settings(text) TO privacy_admin;
