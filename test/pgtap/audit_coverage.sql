-- Audit coverage (issue 6): every function of schema privacy is either read-only (allow-list
-- below) or mapped to the audit action it writes. A new function in neither list FAILS this test
-- with its name: add it to read_only_functions (if it changes nothing) or to audit_action_map.
-- Where a call is cheap, the calls table runs it and checks that the action really is written.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pg_privacy;

-- The actions of docs/audit.md (plus the trail's own).
CREATE TEMP TABLE known_actions (action text PRIMARY KEY);
INSERT INTO known_actions VALUES
    ('submitted'), ('approved'), ('rejected'), ('cancelled'), ('started'), ('completed'), ('failed'),
    ('retried'), ('items_flagged'), ('finalized'), ('restored'), ('deadline_extended'),
    ('export_created'), ('export_downloaded'), ('export_expired'),
    ('hold_placed'), ('hold_released'), ('hold_blocked'), ('hold_expired'),
    ('table_registered'), ('table_unregistered'), ('settings_changed'),
    ('recipient_added'), ('recipient_removed'), ('audit_purged'), ('audit_exported'),
    ('rows_marked'), ('table_dropped'), ('partition_added'), ('partition_detached'),
    ('items_retried'), ('item_resolved'),
    ('signing_key_set'), ('receipt_issued'), ('erasure_ledger_exported'), ('erasures_replayed'),
    ('erasure_replayed'), ('deadline_warning'), ('deadline_overdue'),
    ('citus_repaired'), ('table_reattached'),
    ('tenant_granted'), ('tenant_revoked'), ('restriction_lifted');

-- State-changing functions and the action each one writes.
CREATE TEMP TABLE audit_action_map (fn name PRIMARY KEY, action text NOT NULL REFERENCES known_actions);
INSERT INTO audit_action_map VALUES
    ('request_export', 'submitted'), ('request_erase', 'submitted'), ('request_purge', 'submitted'),
    ('request_restrict', 'submitted'), ('submit_subject_request', 'submitted'),
    ('lift_restriction', 'restriction_lifted'),
    ('grant_tenant', 'tenant_granted'), ('revoke_tenant', 'tenant_revoked'),
    ('approve', 'approved'), ('reject', 'rejected'), ('cancel', 'cancelled'), ('retry', 'retried'),
    ('restore', 'restored'), ('extend_deadline', 'deadline_extended'),
    ('place_hold', 'hold_placed'), ('release_hold', 'hold_released'),
    ('register_table', 'table_registered'), ('unregister_table', 'table_unregistered'),
    ('set_column_rule', 'settings_changed'), ('configure_tenant', 'settings_changed'),
    ('add_export_recipient', 'recipient_added'), ('remove_export_recipient', 'recipient_removed'),
    ('download_export', 'export_downloaded'), ('export_chunks', 'export_downloaded'),
    ('run_job', 'started'),
    ('set_signing_key', 'signing_key_set'), ('erasure_ledger_export', 'erasure_ledger_exported'),
    ('replay_erasures', 'erasures_replayed'),
    ('audit_export', 'audit_exported'), ('audit_export_json', 'audit_exported'),
    ('_audit_export_begin', 'audit_exported'),
    ('_purge_audit', 'audit_purged'),
    ('retry_items', 'items_retried'), ('resolve_item', 'item_resolved'),
    ('_expire_holds', 'hold_expired'),
    ('citus_verify', 'citus_repaired');

-- Functions that change nothing (or are not callable API), with the reason.
CREATE TEMP TABLE read_only_functions (fn name PRIMARY KEY, why text NOT NULL);
INSERT INTO read_only_functions VALUES
    ('worker_status', 'reads shared memory'),
    ('verify_audit_log', 'reads the trail'),
    ('find_jobs', 'reads jobs'), ('job_detail', 'reads a job'), ('preview', 'counts matching rows'),
    ('tenant_settings', 'reads settings'), ('_tenant_settings', 'reads settings (unchecked, internal)'),
    ('_job_in_tenant_scope', 'answers whether a job is in the caller''s scope (the receipts policy)'),
    ('in_tenant_scope', 'reads tenant grants'), ('tenant_scope', 'reads tenant grants'),
    ('_require_tenant_scope', 'reads tenant grants; raises when out of scope'),
    ('_check_tenant_grant', 'checks the arguments of grant_tenant / revoke_tenant'),
    ('_check_on_behalf_of', 'checks an argument'),
    ('_on_behalf_of_detail', 'builds audit detail'),
    ('suggest_registrations', 'reads the catalogs; returns a script, registers nothing'),
    ('_audit', 'the append path itself: writes exactly the action it is given'),
    ('_inspect_certificate', 'parses a certificate'),
    ('_pseudonym', 'computes an HMAC; changes nothing'),
    ('_random_bytes', 'returns random bytes (used once, at CREATE EXTENSION)'),
    ('_attach_hold_triggers', 'superuser repair hook: hold trigger DDL only, no data change'),
    ('_detach_hold_triggers', 'superuser repair hook: hold trigger DDL only, no data change'),
    ('_sync_hold_triggers', 'hold trigger DDL following the (audited) holds; no data change'),
    ('_hold_drop_guard', 'event trigger function: not callable'),
    ('_tamper_guard', 'event trigger function: not callable (audits table_dropped, partition_added, partition_detached)'),
    ('receipt', 'reads a stored receipt'),
    ('sla_report', 'reads jobs'),
    ('_check_mail_address', 'checks an argument'),
    ('_replicate_hold', 'copies a hold to the Citus nodes as place_hold, release_hold or the expiry (audited) left it'),
    ('_take_blocked_events', 'run on Citus workers: hands the queued refusals to the coordinator, which audits them (hold_blocked)');

-- Cheap calls that must write their action: function, SQL, action, tenant (NULL: platform chain).
CREATE TEMP TABLE calls (fn name, call_sql text, action text, tenant_id text);
INSERT INTO calls VALUES
    ('configure_tenant', $$SELECT privacy.configure_tenant('coverage_t', display_name => 'Coverage')$$,
     'settings_changed', 'coverage_t'),
    ('audit_export', $$SELECT count(*) FROM privacy.audit_export(now() - interval '1 hour', now())$$,
     'audit_exported', NULL),
    ('audit_export_json', $$SELECT count(*) FROM privacy.audit_export_json(now() - interval '1 hour', now())$$,
     'audit_exported', NULL),
    ('erasure_ledger_export', $$SELECT count(*) FROM privacy.erasure_ledger_export()$$,
     'erasure_ledger_exported', NULL),
    ('grant_tenant', $$SELECT privacy.grant_tenant('pg_monitor', 'coverage_g', 'audit')$$, 'tenant_granted', 'coverage_g'),
    ('revoke_tenant', $$SELECT privacy.revoke_tenant('pg_monitor', 'coverage_g', 'audit')$$, 'tenant_revoked', 'coverage_g');

-- Runs call_sql and says whether it wrote `action` on the tenant's chain (as session_user).
CREATE FUNCTION pg_temp.writes_action(call_sql text, wanted text, tenant text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    before bigint := (SELECT coalesce(max(id), 0) FROM privacy.audit_log);
BEGIN
    EXECUTE call_sql;
    RETURN EXISTS (SELECT FROM privacy.audit_log
                   WHERE id > before AND action = wanted AND chain = coalesce(tenant, '')
                     AND tenant_id IS NOT DISTINCT FROM tenant AND actor = session_user);
END
$$;

SELECT plan(4 + (SELECT count(*)::int FROM calls));

SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
    WHERE p.pronamespace = 'privacy'::regnamespace
      AND p.prorettype <> 'trigger'::regtype   -- trigger functions are not callable API
      AND p.proname NOT IN (SELECT fn FROM audit_action_map)
      AND p.proname NOT IN (SELECT fn FROM read_only_functions)
    ORDER BY 1$$,
    'every function in schema privacy is read-only or mapped to its audit action (test/pgtap/audit_coverage.sql)');
SELECT is_empty($$SELECT fn FROM audit_action_map JOIN read_only_functions USING (fn)$$,
                'no function is both read-only and state-changing');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
    WHERE p.pronamespace = 'privacy'::regnamespace AND p.proname IN (SELECT fn FROM audit_action_map)
      AND p.prosecdef AND NOT EXISTS (SELECT FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')$$,
    'every state-changing SECURITY DEFINER function pins its search_path');

SELECT CASE WHEN EXISTS (SELECT FROM pg_proc p WHERE p.pronamespace = 'privacy'::regnamespace AND p.proname = c.fn)
            THEN ok(pg_temp.writes_action(c.call_sql, c.action, c.tenant_id), c.fn || ' writes ' || c.action)
            ELSE skip(c.fn || ' is not in this build', 1) END
FROM calls c ORDER BY c.fn;

SELECT is((SELECT jsonb_build_object('actor', actor, 'target', target, 'outcome', outcome,
                                      'display_name', detail->'after'->>'display_name',
                                      'has_before', detail ? 'before', 'has_role', acting_role IS NOT NULL)
           FROM privacy.audit_log WHERE chain = 'coverage_t' ORDER BY id DESC LIMIT 1),
          jsonb_build_object('actor', session_user, 'target', 'coverage_t', 'outcome', 'ok',
                             'display_name', 'Coverage', 'has_before', true, 'has_role', true),
          'the settings_changed row records who, what and the before/after values');

SELECT * FROM finish();
ROLLBACK;
