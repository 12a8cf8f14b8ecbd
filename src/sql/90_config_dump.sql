-- Every configuration and state table (and its sequence) is dumped by pg_dump with its rows.
SELECT pg_catalog.pg_extension_config_dump('privacy.registered_tables', '');
SELECT pg_catalog.pg_extension_config_dump('privacy.registered_partitions', '');
SELECT pg_catalog.pg_extension_config_dump('privacy.column_rules', '');
SELECT pg_catalog.pg_extension_config_dump('privacy.tenants', '');
SELECT pg_catalog.pg_extension_config_dump('privacy.jobs', '');
SELECT pg_catalog.pg_extension_config_dump('privacy.jobs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('privacy.job_errors', '');
SELECT pg_catalog.pg_extension_config_dump('privacy.job_errors_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('privacy.legal_holds', '');
SELECT pg_catalog.pg_extension_config_dump('privacy.legal_holds_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('privacy.export_recipients', '');
SELECT pg_catalog.pg_extension_config_dump('privacy.export_files', '');
SELECT pg_catalog.pg_extension_config_dump('privacy.export_file_chunks', '');
SELECT pg_catalog.pg_extension_config_dump('privacy.audit_log', '');
SELECT pg_catalog.pg_extension_config_dump('privacy.audit_log_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('privacy.audit_chains', '');
SELECT pg_catalog.pg_extension_config_dump('privacy.notifications', '');
SELECT pg_catalog.pg_extension_config_dump('privacy.notifications_id_seq', '');
-- Compliance evidence (77_compliance.sql). Not privacy.signing_key: like the installation secret
-- it stays out of dumps (docs/compliance.md).
SELECT pg_catalog.pg_extension_config_dump('privacy.installation', '');
SELECT pg_catalog.pg_extension_config_dump('privacy.signing_certificates', '');
SELECT pg_catalog.pg_extension_config_dump('privacy.receipts', '');
SELECT pg_catalog.pg_extension_config_dump('privacy.erasure_ledger', '');
SELECT pg_catalog.pg_extension_config_dump('privacy.tenant_grants', '');
