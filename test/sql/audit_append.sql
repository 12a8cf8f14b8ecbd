-- The audit append path (src/audit/audit.cpp) through privacy.configure_tenant: every settings change
-- writes one settings_changed row whose actor is the session user, chained by hash per tenant.
-- Every suite starts from a fresh extension: job ids and chains do not depend on test order.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_privacy CASCADE;
CREATE EXTENSION pg_privacy;
RESET client_min_messages;

CREATE ROLE regress_audit_dba NOLOGIN IN ROLE privacy_admin;
CREATE ROLE regress_audit_outsider NOLOGIN;

-- A session authorized as regress_audit_dba, acting through SET ROLE privacy_admin: the actor
-- is the session user, not the role in effect nor the function's owner.
SET SESSION AUTHORIZATION regress_audit_dba;
SET ROLE privacy_admin;
SELECT tenant_id, display_name, rows_per_second
FROM privacy.configure_tenant('regress_audit_acme', display_name => 'Acme Corp');
SELECT tenant_id, display_name, rows_per_second
FROM privacy.configure_tenant('regress_audit_acme', rows_per_second => 500);
RESET ROLE;
-- Without SET ROLE, membership in privacy_admin is enough.
SELECT tenant_id, display_name, rows_per_second, recovery_window
FROM privacy.configure_tenant('regress_audit_acme', recovery_window => '7 days', reset => true);
SELECT tenant_id FROM privacy.configure_tenant('regress_audit_globex');
RESET SESSION AUTHORIZATION;

-- Someone outside privacy_admin may not configure tenants, and nothing is written.
SET SESSION AUTHORIZATION regress_audit_outsider;
SELECT privacy.configure_tenant('regress_audit_acme', rows_per_second => 1);
\echo sqlstate :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;

-- Bad input is refused with 22023 and nothing is written.
SELECT privacy.configure_tenant('regress_audit_acme', rows_per_second => -1);
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT privacy.configure_tenant('  ');
\echo sqlstate :LAST_ERROR_SQLSTATE

-- One row per successful call, actor = session user, "before" is JSON null for a new tenant.
SELECT chain, actor, action, tenant_id, target, outcome,
       jsonb_typeof(detail -> 'before') AS before_type,
       detail -> 'before' ->> 'rows_per_second' AS before_rows_per_second,
       detail -> 'after' ->> 'display_name' AS after_display_name,
       detail -> 'after' ->> 'rows_per_second' AS after_rows_per_second
FROM privacy.audit_log
WHERE chain LIKE 'regress_audit_%'
ORDER BY id;

-- The chains: the first row of each starts from 64 zeros, every next row's prev_hash is the
-- previous row's hash, hashes are 64 hex digits and all different, and the chain head
-- (privacy.audit_chains) points at the last row.
SELECT chain,
       count(*) AS rows,
       count(*) FILTER (WHERE previous IS NULL AND prev_hash = repeat('0', 64)) AS starts_at_genesis,
       count(*) FILTER (WHERE previous IS NOT NULL AND prev_hash = previous) AS linked,
       count(*) FILTER (WHERE hash ~ '^[0-9a-f]{64}$') AS well_formed,
       count(DISTINCT hash) AS distinct_hashes
FROM (SELECT chain, prev_hash, hash, lag(hash) OVER (PARTITION BY chain ORDER BY id) AS previous
      FROM privacy.audit_log WHERE chain LIKE 'regress_audit_%') AS rows
GROUP BY chain ORDER BY chain;

SELECT h.chain, h.last_id = max(a.id) AS head_is_last_row,
       h.last_hash = (array_agg(a.hash ORDER BY a.id DESC))[1] AS head_hash_is_last_hash
FROM privacy.audit_chains h JOIN privacy.audit_log a USING (chain)
WHERE h.chain LIKE 'regress_audit_%'
GROUP BY h.chain, h.last_id, h.last_hash ORDER BY h.chain;

-- privacy._audit is internal: not even privacy_admin may call it directly.
SET ROLE regress_audit_dba;
SELECT privacy._audit('settings_changed', 'regress_audit_acme', NULL, NULL);
\echo sqlstate :LAST_ERROR_SQLSTATE
RESET ROLE;

DROP ROLE regress_audit_dba;
DROP ROLE regress_audit_outsider;
