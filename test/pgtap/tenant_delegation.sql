-- Multi-tenant delegation (issue 18; docs/security.md, "Tenant scopes" and "Acting for a
-- person"; docs/jobs.md, "Self-service requests"; docs/soft-delete.md, "Finding the tables to
-- register"): tenant-scoped roles see and act on their tenants only, in every function and view;
-- four-eyes compares the humans behind the roles; the self-service call takes tenant and subject
-- from the application's settings and is rate-limited; discovery proposes the tables that
-- reference the subject table. The restriction of processing runs jobs: test/t/110_restriction.pl.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pg_privacy;
SELECT plan(72);

\ir ../../scripts/sample_schema.sql
SELECT privacy.register_table('app.' || t, 'user_id', 'tenant_id')
  FROM unnest(ARRAY['users', 'profiles', 'orders', 'order_items', 'comments']) t;

CREATE ROLE td_platform LOGIN IN ROLE privacy_admin;         -- platform-wide DPO
CREATE ROLE td_alice LOGIN IN ROLE privacy_admin;            -- acme's DPO
CREATE ROLE td_bob LOGIN IN ROLE privacy_admin;              -- acme's second DPO
CREATE ROLE td_support LOGIN IN ROLE privacy_requester;      -- acme's support desk
CREATE ROLE td_auditor LOGIN IN ROLE privacy_auditor;        -- acme's auditor
CREATE ROLE td_portal LOGIN IN ROLE privacy_admin;           -- a portal that acts for people
CREATE ROLE td_app LOGIN IN ROLE privacy_intake, demo_app;   -- the application
SET LOCAL privacy.require_distinct_approver = on;

-- ---- grants: only a platform-wide admin hands them out; every grant and revoke is audited ----
SET SESSION AUTHORIZATION td_platform;
SELECT lives_ok($$SELECT privacy.grant_tenant('td_alice', 'acme', 'decide'),
                         privacy.grant_tenant('td_alice', 'acme', 'request'),
                         privacy.grant_tenant('td_bob', 'acme', 'decide'),
                         privacy.grant_tenant('td_support', 'acme', 'request'),
                         privacy.grant_tenant('td_auditor', 'acme', 'audit')$$,
                'a platform-wide admin grants tenant scopes');
RESET SESSION AUTHORIZATION;
SELECT is((SELECT count(*) FROM privacy.audit_log WHERE action = 'tenant_granted' AND actor = 'td_platform'
            AND tenant_id = 'acme'), 5::bigint, 'each grant is audited on the tenant''s chain, actor = session user');
SELECT throws_ok($$SELECT privacy.grant_tenant('td_alice', 'acme', 'approve')$$, '22023',
                 'privacy.grant_tenant: capability must be ''request'', ''decide'' or ''audit'', not ''approve''',
                 'an unknown capability is refused');
SELECT throws_ok($$SELECT privacy.grant_tenant('privacy_admin', 'acme', 'decide')$$, '22023', NULL,
                 'pg_privacy''s own roles stay platform-wide');
SELECT throws_ok($$SELECT privacy.grant_tenant('postgres', 'acme', 'decide')$$, '22023', NULL,
                 'a superuser cannot be scoped');
SELECT throws_ok($$SELECT privacy.grant_tenant('td_alice', ' ', 'decide')$$, '22023', NULL, 'a blank tenant is refused');
SELECT throws_ok($$SELECT privacy.revoke_tenant('td_alice', 'globex', 'decide')$$, '42704', NULL,
                 'revoking a grant that does not exist says so');
SET SESSION AUTHORIZATION td_alice;
SELECT throws_ok($$SELECT privacy.grant_tenant('td_alice', 'globex', 'decide')$$, '42501',
                 'permission denied for privacy.grant_tenant: role "td_alice" is limited to the tenants granted to it',
                 'a tenant-scoped admin cannot widen its own scope');
RESET SESSION AUTHORIZATION;
SELECT is((SELECT count(*) FROM privacy.tenant_grants WHERE role = 'td_alice'::regrole), 2::bigint,
          'refused grants changed nothing');

-- ---- requests: a scoped requester files for its tenants only ---------------------------------
SELECT privacy.request_erase('globex', '3', 'globex ticket') AS globex_job \gset
SELECT privacy.place_hold('subject', '4', 'globex', 'globex case') AS globex_hold \gset
SELECT privacy.place_hold('table', 'app.comments', NULL, 'platform case') AS table_hold \gset
SET SESSION AUTHORIZATION td_support;
SELECT throws_ok($$SELECT privacy.request_erase('globex', '5', 'x')$$, '42501',
                 'permission denied for privacy.request_erase of tenant "globex": role "td_support" has no request grant for that tenant',
                 'a scoped requester cannot file for another tenant');
SELECT privacy.request_erase('acme', '5', 'acme ticket') AS acme_job \gset
SELECT is((SELECT count(*) FROM privacy.find_jobs()), 1::bigint, 'the requester finds its own acme job only');
RESET SESSION AUTHORIZATION;

-- ---- the matrix: a scoped admin sees and acts on its tenant only ------------------------------
INSERT INTO privacy.job_errors (job_id, relation, phase, sqlstate, message)
VALUES (:globex_job, 'app.users', 'mark', '23503', 'a globex item'), (:acme_job, 'app.users', 'mark', '23503', 'an acme item');
SET SESSION AUTHORIZATION td_alice;
SELECT is((SELECT array_agg(DISTINCT tenant_id) FROM privacy.jobs), ARRAY['acme'], 'privacy.jobs: acme rows only');
SELECT is((SELECT array_agg(DISTINCT tenant_id) FROM privacy.job_overview), ARRAY['acme'], 'job_overview: acme rows only');
SELECT is((SELECT total FROM privacy.dashboard), 1::bigint, 'the dashboard counts acme''s jobs only');
SELECT is((SELECT array_agg(message) FROM privacy.job_errors), ARRAY['an acme item'],
          'job_errors: the items of acme''s jobs only');
SELECT is((SELECT array_agg(DISTINCT tenant_id) FROM privacy.tenant_grants), ARRAY['acme'],
          'tenant_grants: acme''s grants only');
SELECT is((SELECT count(*) FROM privacy.find_jobs()), 1::bigint, 'find_jobs: acme''s jobs only');
SELECT is((SELECT count(*) FROM privacy.find_jobs('globex')), 0::bigint, 'find_jobs does not find globex''s jobs by name');
SELECT throws_ok(format('SELECT privacy.job_detail(%s)', :globex_job), '22023', NULL,
                 'job_detail of a globex job: as if it did not exist');
SELECT throws_ok(format('SELECT privacy.approve(%s)', :globex_job), '42501', NULL, 'approve of a globex job is refused');
SELECT throws_ok(format('SELECT privacy.reject(%s, %L)', :globex_job, 'no'), '42501', NULL, 'reject of a globex job is refused');
SELECT throws_ok(format('SELECT privacy.cancel(%s, %L)', :globex_job, 'no'), '42501', NULL, 'cancel of a globex job is refused');
SELECT throws_ok(format('SELECT * FROM privacy.preview(%s)', :globex_job), '42501', NULL, 'preview of a globex job is refused');
SELECT throws_ok(format('SELECT privacy.extend_deadline(%s, %L, %L)', :globex_job, '1 day', 'x'), '42501', NULL,
                 'extend_deadline of a globex job is refused');
SELECT throws_ok(format('SELECT privacy.restore(%s)', :globex_job), '42501', NULL, 'restore of a globex job is refused');
SELECT is((SELECT array_agg(DISTINCT tenant_id) FROM privacy.legal_holds), NULL::text[],
          'legal_holds: neither globex''s nor the platform''s holds');
SELECT throws_ok(format('SELECT privacy.release_hold(%s, %L)', :globex_hold, 'x'), '42501', NULL,
                 'release of a globex hold is refused');
SELECT throws_ok(format('SELECT privacy.release_hold(%s, %L)', :table_hold, 'x'), '42501', NULL,
                 'release of a table hold (the whole platform) is refused');
SELECT throws_ok($$SELECT privacy.place_hold('subject', '6', 'globex', 'x')$$, '42501', NULL,
                 'a hold on a globex subject is refused');
SELECT throws_ok($$SELECT privacy.place_hold('table', 'app.orders', NULL, 'x')$$, '42501', NULL,
                 'a table hold is for platform-wide admins');
SELECT lives_ok($$SELECT privacy.place_hold('subject', '6', 'acme', 'acme case')$$, 'a hold on an acme subject works');
SELECT is((SELECT array_agg(DISTINCT coalesce(tenant_id, '(platform)')) FROM privacy.audit_log), ARRAY['acme'],
          'audit_log: acme''s chain only');
SELECT is((SELECT array_agg(DISTINCT coalesce(tenant_id, '(platform)')) FROM privacy.audit_export('-infinity', 'infinity')),
          ARRAY['acme'], 'audit_export: acme''s rows only');
SELECT throws_ok($$SELECT privacy.configure_tenant('globex', display_name => 'mine')$$, '42501', NULL,
                 'configuring another tenant is refused');
SELECT throws_ok($$SELECT privacy.register_table('app.tenants', 'tenant_id')$$, '42501', NULL,
                 'registering tables is for platform-wide admins');
SELECT throws_ok($$SELECT count(*) FROM privacy.erasure_ledger_export()$$, '42501', NULL,
                 'the erasure ledger of every tenant is for platform-wide admins');
SELECT throws_ok($$SELECT * FROM privacy.add_export_recipient('mine', 'not a certificate')$$, '42501', NULL,
                 'export recipients (of every tenant''s exports) are for platform-wide admins');
SELECT throws_ok($$SELECT * FROM privacy.set_signing_key('x', 'y')$$, '42501', NULL,
                 'the receipt signing key is for platform-wide admins');
SELECT is((SELECT array_agg(DISTINCT tenant_id) FROM privacy.sla_report('-infinity', 'infinity')), ARRAY['acme'],
          'sla_report: acme only');
RESET SESSION AUTHORIZATION;
SELECT is((SELECT status::text FROM privacy.jobs WHERE id = :globex_job), 'pending', 'the globex job is untouched');
SELECT is((SELECT active FROM privacy.legal_holds WHERE id = :globex_hold), true, 'the globex hold is untouched');

-- A scoped auditor reads the trail of its tenant only.
SET SESSION AUTHORIZATION td_auditor;
SELECT is((SELECT array_agg(DISTINCT coalesce(tenant_id, '(platform)')) FROM privacy.audit_export_json('-infinity', 'infinity') j(r)
             CROSS JOIN LATERAL (SELECT r ->> 'tenant_id' AS tenant_id) x), ARRAY['acme'], 'a scoped auditor exports acme''s rows only');
RESET SESSION AUTHORIZATION;

-- ---- four-eyes within the tenant, and across roles for one human -------------------------------
SET SESSION AUTHORIZATION td_alice;
SELECT privacy.request_erase('acme', '8', 'ticket 8', on_behalf_of => 'jane@acme.example') AS jane_job \gset
SELECT throws_ok(format('SELECT privacy.approve(%s)', :jane_job), '42501', NULL, 'alice does not approve her own request');
RESET SESSION AUTHORIZATION;
SELECT is((SELECT requested_on_behalf_of FROM privacy.jobs WHERE id = :jane_job), 'jane@acme.example',
          'the job records the human behind the role');
SELECT is((SELECT detail ->> 'on_behalf_of' FROM privacy.audit_log WHERE job_id = :jane_job AND action = 'submitted'),
          'jane@acme.example', 'the audit row records her next to the database role');
SET SESSION AUTHORIZATION td_portal;
SELECT throws_ok(format('SELECT privacy.approve(%s, NULL, %L)', :jane_job, 'jane@acme.example'), '42501',
                 format('job %s was requested by td_alice on behalf of jane@acme.example, who may not approve it', :jane_job),
                 'the same human cannot approve through another role');
SELECT throws_ok(format('SELECT privacy.approve(%s, NULL, %L)', :jane_job, '  '), '22023', NULL,
                 'a blank on_behalf_of is refused');
SELECT lives_ok(format('SELECT privacy.approve(%s, %L, %L)', :jane_job, 'checked', 'max@acme.example'),
                'another human approves through the portal');
RESET SESSION AUTHORIZATION;
SELECT is((SELECT decided_by || ' / ' || decided_on_behalf_of FROM privacy.jobs WHERE id = :jane_job),
          'td_portal / max@acme.example', 'the decision records role and human');
SELECT is((SELECT detail ->> 'on_behalf_of' FROM privacy.audit_log WHERE job_id = :jane_job AND action = 'approved'),
          'max@acme.example', 'so does its audit row');
-- Existing calls without on_behalf_of keep working (regulation stays before it).
SELECT lives_ok($$SELECT privacy.request_erase('acme', '9', 'ticket 9', NULL, 'gdpr')$$, 'calls without on_behalf_of work');

-- ---- self-service intake -----------------------------------------------------------------------
SET SESSION AUTHORIZATION td_app;
SELECT throws_ok($$SELECT privacy.submit_subject_request('export')$$, '55000', NULL,
                 'without the application''s tenant setting nothing is filed');
SET app.tenant = 'acme';
SELECT throws_ok($$SELECT privacy.submit_subject_request('export')$$, '55000', NULL,
                 'without the logged-in user''s setting nothing is filed');
SET app.user_id = '12';
SELECT privacy.submit_subject_request('erase', 'from the account page') AS self_job \gset
SELECT throws_ok($$SELECT privacy.submit_subject_request('export', 'x', NULL, '13')$$, '42883', NULL,
                 'no argument can name another subject');
SELECT throws_ok($$SELECT privacy.submit_subject_request('purge')$$, '22023', NULL, 'only export, erase and restrict');
SELECT throws_ok($$SELECT privacy.request_erase('acme', '13', 'x')$$, '42501', NULL,
                 'the application role cannot file requests for anyone else');
SELECT throws_ok($$SELECT count(*) FROM privacy.jobs$$, '42501', NULL, 'nor read the jobs');
RESET SESSION AUTHORIZATION;
SELECT is((SELECT tenant_id || '/' || target_id || ' by ' || requested_by || ' for ' || requested_on_behalf_of
             FROM privacy.jobs WHERE id = :self_job), 'acme/12 by td_app for subject:12',
          'the job is about the logged-in user, from the settings');
SET LOCAL privacy.intake_max_requests = 2;
SET SESSION AUTHORIZATION td_app;
SELECT lives_ok($$SELECT privacy.submit_subject_request('erase')$$, 'a second request within 24 hours is accepted');
SELECT throws_ok($$SELECT privacy.submit_subject_request('erase')$$, 'PV002', NULL,
                 'the third is refused: rate limit per subject');
SET app.user_id = '14';
SELECT lives_ok($$SELECT privacy.submit_subject_request('restrict')$$, 'another subject has its own budget');
RESET SESSION AUTHORIZATION;
-- A tenant may name its own setting for the subject.
SELECT lives_ok($$SELECT privacy.configure_tenant('globex', intake_subject_setting => 'app.account')$$,
                'a platform-wide admin sets globex''s subject setting');
SELECT throws_ok($$SELECT privacy.configure_tenant('globex', intake_subject_setting => 'no dot')$$, '22023', NULL,
                 'a setting name without a dot is refused');
SET SESSION AUTHORIZATION td_app;
SET app.tenant = 'globex'; SET app.account = '21';
SELECT privacy.submit_subject_request('erase') AS globex_self \gset
RESET SESSION AUTHORIZATION;
SELECT is((SELECT target_id FROM privacy.jobs WHERE id = :globex_self), '21', 'globex''s subject comes from app.account');

-- ---- revoking ----------------------------------------------------------------------------------
SET SESSION AUTHORIZATION td_platform;
SELECT lives_ok($$SELECT privacy.revoke_tenant('td_bob', 'acme', 'decide')$$, 'revoking the last grant works (with a warning)');
RESET SESSION AUTHORIZATION;
SELECT is((SELECT count(*) FROM privacy.audit_log WHERE action = 'tenant_revoked'), 1::bigint, 'the revoke is audited');

-- ---- discovery on the demo schema --------------------------------------------------------------
SELECT set_eq($$SELECT substring(s FROM 'register_table\(''([^'']+)''') FROM privacy.suggest_registrations('app.users', 'tenant_id') s
                 WHERE s LIKE 'SELECT privacy.register_table(%'$$,
              ARRAY['app.users', 'app.profiles', 'app.orders', 'app.order_items', 'app.comments'],
              'suggest_registrations proposes exactly the tables that reference users');
SELECT ok(EXISTS (SELECT FROM privacy.suggest_registrations('app.users', 'tenant_id') s WHERE s ~ 'app\.users\.email.*e-mail'),
          'it points at the e-mail column');
CREATE TABLE app."Odd Accounts" ("Account Id" text PRIMARY KEY, "E-Mail" text, "Birth Date" date);
CREATE TABLE app."Odd Events" (id bigint PRIMARY KEY, "Account Id" text REFERENCES app."Odd Accounts", client_ip inet);
SELECT is(array_agg(s ORDER BY s), ARRAY[
    $s$-- Suggested by privacy.suggest_registrations('app."Odd Accounts"', NULL): review, then run.$s$,
    $s$-- app."Odd Accounts"."Birth Date" holds personal data (birth date): deleted with the row (with on_erase 'anonymize': SELECT privacy.set_column_rule('app."Odd Accounts"', 'Birth Date', 'null');)$s$,
    $s$-- app."Odd Accounts"."E-Mail" holds personal data (e-mail address): deleted with the row (with on_erase 'anonymize': SELECT privacy.set_column_rule('app."Odd Accounts"', 'E-Mail', 'hash');)$s$,
    $s$SELECT privacy.register_table('app."Odd Accounts"', 'Account Id', NULL, 'delete');$s$,
    $s$SELECT privacy.register_table('app."Odd Events"', 'Account Id', NULL, 'anonymize');$s$,
    $s$SELECT privacy.set_column_rule('app."Odd Events"', 'client_ip', 'null');  -- IP address$s$],
    'quoted names, rules by name and type') FROM privacy.suggest_registrations('app."Odd Accounts"', NULL) s;
SELECT throws_ok($$SELECT * FROM privacy.suggest_registrations('app.users', 'no_such_column')$$, '42703', NULL,
                 'an unknown tenant column is named');
SELECT throws_ok($$SELECT * FROM privacy.suggest_registrations('app.order_items', 'tenant_id')$$, '55000', NULL,
                 'a subject table whose key has two columns besides the tenant is refused');
SELECT is((SELECT count(*) FROM privacy.registered_tables WHERE relation::text LIKE 'app."Odd%'), 0::bigint,
          'discovery registered nothing');

SELECT * FROM finish();
ROLLBACK;
