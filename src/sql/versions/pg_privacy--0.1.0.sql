-- pg_privacy install script. The Makefile concatenates src/sql/*.sql in file-name order.
\echo Use "CREATE EXTENSION pg_privacy" to load this file. \quit

-- Created here, not by the control file, so that it is a member of the extension.
CREATE SCHEMA privacy;
COMMENT ON SCHEMA privacy IS 'pg_privacy: data-subject requests, legal holds and the audit trail';

-- The public vocabulary of DESIGN section 3.
CREATE TYPE privacy.job_kind AS ENUM ('export', 'erase', 'purge');
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
-- The three roles of DESIGN section 4. Roles are cluster-wide: they are created only if missing
-- and DROP EXTENSION leaves them (other databases may use them).
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
END
$roles$;
-- Configuration and state tables (DESIGN section 3). Every one of them is an extension
-- configuration table (see 90_config_dump.sql), so pg_dump keeps its rows.

-- Tables whose rows belong to data subjects. The relation is stored as regclass so renames
-- follow it; the previous RLS state is kept so unregister_table can restore it exactly.
CREATE TABLE privacy.registered_tables (
    relation        regclass PRIMARY KEY,
    subject_column  name NOT NULL,
    tenant_column   name,
    key_columns     name[] NOT NULL CHECK (cardinality(key_columns) > 0),
    on_erase        text NOT NULL DEFAULT 'delete' CHECK (on_erase IN ('delete', 'anonymize')),
    had_rls         boolean NOT NULL DEFAULT false,
    had_force_rls   boolean NOT NULL DEFAULT false,
    registered_by   text NOT NULL DEFAULT session_user,
    registered_at   timestamptz NOT NULL DEFAULT now()
);

-- The partitions of registered partitioned tables (recursively), each protected like its table:
-- its own policies and ENABLE + FORCE ROW LEVEL SECURITY, since a query that names a partition
-- directly applies that partition's policies only. Its previous RLS state is kept so that a
-- detached partition gets it back. Rows come and go with CREATE TABLE ... PARTITION OF, ATTACH and
-- DETACH PARTITION (the DDL guard, src/ddl_guard.cpp) and with the table's registration.
CREATE TABLE privacy.registered_partitions (
    relation          regclass PRIMARY KEY,
    registered_table  regclass NOT NULL REFERENCES privacy.registered_tables ON DELETE CASCADE,
    had_rls           boolean NOT NULL,
    had_force_rls     boolean NOT NULL,
    added_by          text NOT NULL DEFAULT session_user,
    added_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX registered_partitions_table_idx ON privacy.registered_partitions (registered_table);

-- Anonymization rule per column of an 'anonymize' table. Columns without a rule keep their value;
-- the subject column without a rule is hashed where it can hold the pseudonym, else set NULL
-- (see docs/soft-delete.md). 'tombstone' is for the subject column only.
CREATE TABLE privacy.column_rules (
    relation     regclass NOT NULL REFERENCES privacy.registered_tables ON DELETE CASCADE,
    column_name  name NOT NULL,
    rule         text NOT NULL CHECK (rule IN ('null', 'redact', 'hash', 'keep', 'tombstone')),
    set_by       text NOT NULL DEFAULT session_user,
    set_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (relation, column_name)
);

-- Per-tenant settings; NULL means "use the GUC default".
CREATE TABLE privacy.tenants (
    tenant_id            text PRIMARY KEY CHECK (btrim(tenant_id) <> ''),
    display_name         text,
    rows_per_second      integer CHECK (rows_per_second >= 0),
    max_concurrent_jobs  integer CHECK (max_concurrent_jobs > 0),
    recovery_window      interval CHECK (recovery_window >= interval '0'),
    export_ttl           interval CHECK (export_ttl > interval '0'),
    deadline             interval CHECK (deadline > interval '0'),
    audit_retention      interval CHECK (audit_retention > interval '0'),
    approval_required    privacy.job_kind[],
    tombstone_subject    text CHECK (btrim(tombstone_subject) <> ''),
    regulation           privacy.regulation,   -- of requests that name none (NULL: 'other')
    privacy_contact      text CHECK (btrim(privacy_contact) <> ''),  -- gets the deadline notices
    time_zone            text,                 -- where the tenant's calendar months end (NULL: UTC)
    updated_by           text NOT NULL DEFAULT session_user,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- One row per request. The batch loop keeps its position (cursor) here, committed with each
-- batch, so a resumed job continues exactly where the last committed batch ended. status is the
-- outcome of the request; finalization what happens to the rows an erase marked (NULL for other
-- jobs and for erasures that never reached processing). attempts counts the runs of the request,
-- finalization_attempts those of the finalization; last_error is the last thing that stopped a run.
CREATE TABLE privacy.jobs (
    id                 bigserial PRIMARY KEY,
    kind               privacy.job_kind NOT NULL,
    target_type        privacy.target_type NOT NULL,
    target_id          text NOT NULL CHECK (btrim(target_id) <> ''),
    tenant_id          text NOT NULL CHECK (btrim(tenant_id) <> ''),
    reason             text NOT NULL CHECK (btrim(reason) <> ''),
    requested_by       text NOT NULL DEFAULT session_user,
    requested_at       timestamptz NOT NULL DEFAULT now(),
    notify_email       text,
    requires_approval  boolean NOT NULL,
    status             privacy.job_status NOT NULL,
    decided_by         text,
    decided_at         timestamptz,
    decision_note      text,
    queued_at          timestamptz,
    started_at         timestamptz,
    finished_at        timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    heartbeat_at       timestamptz,
    worker_pid         integer,
    total_items        bigint,
    processed_items    bigint NOT NULL DEFAULT 0,
    failed_items       bigint NOT NULL DEFAULT 0,
    throughput         double precision,
    eta                interval,
    cancel_requested   boolean NOT NULL DEFAULT false,
    attempts           integer NOT NULL DEFAULT 0,
    error              text,
    result             jsonb,
    cursor             jsonb,
    due_at             timestamptz NOT NULL,
    recoverable_until  timestamptz,
    finalization       privacy.finalization_state,
    finalization_attempts integer NOT NULL DEFAULT 0,
    last_error         text,
    finalized_at       timestamptz,
    -- Deadlines (docs/compliance.md): the regulation decides due_at and its extensions; each
    -- notice goes out once per due date (an extension sends them again for the new one).
    regulation           privacy.regulation NOT NULL DEFAULT 'other',
    deadline_extensions  integer NOT NULL DEFAULT 0 CHECK (deadline_extensions >= 0),
    deadline_warned_at   timestamptz,
    overdue_notified_at  timestamptz,
    -- The erasure ledger entry (its hash) this job applies again after a restore, if any.
    replay_of          text,
    CHECK (target_type = 'subject' OR kind = 'purge'),
    CHECK (finalization IS NULL OR kind = 'erase'),
    CHECK (processed_items >= 0 AND failed_items >= 0)
);
CREATE INDEX jobs_status_idx ON privacy.jobs (status, queued_at);
CREATE INDEX jobs_tenant_idx ON privacy.jobs (tenant_id, requested_at);
CREATE INDEX jobs_finalization_idx ON privacy.jobs (finalization, recoverable_until)
    WHERE finalization IN ('awaiting_window', 'finalizing', 'held');
-- Open requests by due date, for the deadline notices; one replay job per ledger entry.
CREATE INDEX jobs_open_due_idx ON privacy.jobs (due_at)
    WHERE status IN ('pending', 'approved', 'processing', 'failed');
CREATE UNIQUE INDEX jobs_replay_of_idx ON privacy.jobs (replay_of) WHERE replay_of IS NOT NULL;

-- Items a job could not process, kept for review (docs/jobs.md, "Flagged items"). A row that
-- fails is recorded once per attempt and passed over: the walk never comes back to it, only
-- privacy.retry_items does (attempt 2, 3, ...). row_key NULL: a whole table that finalization
-- passed over after privacy.max_attempts failed runs. An item is open until resolved: 'retried'
-- (it succeeded on retry), 'superseded' (it failed again: see the next attempt's row) or
-- 'resolved' (a person's decision, with a note).
CREATE TABLE privacy.job_errors (
    id           bigserial PRIMARY KEY,
    job_id       bigint NOT NULL REFERENCES privacy.jobs ON DELETE CASCADE,
    relation     regclass,
    row_key      jsonb,
    phase        text NOT NULL CHECK (phase IN ('mark', 'purge', 'finalize')),
    attempt      integer NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    sqlstate     text NOT NULL,
    message      text NOT NULL,
    at           timestamptz NOT NULL DEFAULT now(),
    resolution   text CHECK (resolution IN ('retried', 'superseded', 'resolved')),
    resolved_by  text,
    resolved_at  timestamptz,
    note         text,
    CHECK ((resolution IS NULL) = (resolved_at IS NULL)),
    UNIQUE NULLS NOT DISTINCT (job_id, relation, phase, row_key, attempt)
);
CREATE INDEX job_errors_open_idx ON privacy.job_errors (job_id) WHERE resolution IS NULL;

-- Legal holds (DESIGN section 7). scope_id is the tenant id, the subject id, or the table's name
-- when the hold was placed (for display). A table hold covers `relation`, which follows renames
-- (and survives pg_dump as a name): every lookup of table holds uses it, never scope_id.
CREATE TABLE privacy.legal_holds (
    id              bigserial PRIMARY KEY,
    scope           privacy.hold_scope NOT NULL,
    scope_id        text NOT NULL CHECK (btrim(scope_id) <> ''),
    relation        regclass,
    tenant_id       text,
    reason          text NOT NULL CHECK (btrim(reason) <> ''),
    created_by      text NOT NULL DEFAULT session_user,
    created_at      timestamptz NOT NULL DEFAULT now(),
    active          boolean NOT NULL DEFAULT true,
    expires_at      timestamptz,
    block_updates   boolean NOT NULL DEFAULT true,
    released_by     text,
    released_at     timestamptz,
    release_reason  text,
    CHECK (scope <> 'subject' OR tenant_id IS NOT NULL),
    CHECK ((scope = 'table') = (relation IS NOT NULL)),
    CHECK (active OR released_at IS NOT NULL OR expires_at IS NOT NULL)
);
CREATE INDEX legal_holds_active_idx ON privacy.legal_holds (scope, scope_id) WHERE active;

-- Certificates whose keys can open export files.
CREATE TABLE privacy.export_recipients (
    name          text PRIMARY KEY CHECK (btrim(name) <> ''),
    certificate   text NOT NULL,
    fingerprint   text,
    added_by      text NOT NULL DEFAULT session_user,
    added_at      timestamptz NOT NULL DEFAULT now(),
    active        boolean NOT NULL DEFAULT true,
    removed_by    text,
    removed_at    timestamptz
);

-- One finished, encrypted export per job; the bytes live in export_file_chunks. A file row is
-- written only when the whole file is, so a half-written export is never offered.
CREATE TABLE privacy.export_files (
    job_id      bigint PRIMARY KEY REFERENCES privacy.jobs ON DELETE CASCADE,
    size_bytes  bigint NOT NULL,
    sha256      text NOT NULL,
    chunks      integer NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE TABLE privacy.export_file_chunks (
    job_id  bigint NOT NULL REFERENCES privacy.jobs ON DELETE CASCADE,
    seq     integer NOT NULL,
    data    bytea NOT NULL,
    PRIMARY KEY (job_id, seq)
);

-- The audit trail (DESIGN section 8): one hash chain per tenant, '' is the platform chain.
CREATE TABLE privacy.audit_log (
    id                bigserial PRIMARY KEY,
    chain             text NOT NULL,
    at                timestamptz NOT NULL,
    actor             text NOT NULL,          -- session_user
    acting_role       text NOT NULL,          -- current_user
    client_addr       text,
    application_name  text,
    action            text NOT NULL,
    tenant_id         text,
    job_id            bigint,
    target            text,
    outcome           text NOT NULL,
    detail            jsonb NOT NULL DEFAULT '{}',
    prev_hash         text NOT NULL,
    hash              text NOT NULL
);
CREATE INDEX audit_log_chain_idx ON privacy.audit_log (chain, id);
CREATE INDEX audit_log_at_idx ON privacy.audit_log (at);
CREATE INDEX audit_log_job_idx ON privacy.audit_log (job_id) WHERE job_id IS NOT NULL;

-- The head of every chain. Appending locks the chain's row, which makes each chain linear.
-- anchor_hash is the prev_hash of the first retained row after a retention purge.
CREATE TABLE privacy.audit_chains (
    chain        text PRIMARY KEY,
    last_id      bigint NOT NULL,
    last_hash    text NOT NULL,
    anchor_id    bigint,
    anchor_hash  text
);

-- Outbox of e-mails (DESIGN section 9).
CREATE TABLE privacy.notifications (
    id               bigserial PRIMARY KEY,
    job_id           bigint REFERENCES privacy.jobs ON DELETE SET NULL,
    recipient        text NOT NULL,
    subject          text NOT NULL,
    body             text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    sent_at          timestamptz
);
CREATE INDEX notifications_unsent_idx ON privacy.notifications (next_attempt_at) WHERE sent_at IS NULL;
-- Functions of the foundation: worker status, the audit append path, the boundary self-test.

-- What the launcher and job workers are doing (one row each); says plainly when the library
-- was not preloaded or the launcher serves another database.
CREATE FUNCTION privacy.worker_status(
    OUT process text, OUT pid integer, OUT job_id bigint, OUT tenant_id text,
    OUT state text, OUT since timestamptz, OUT detail text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'privacy_worker_status' LANGUAGE C VOLATILE;

-- The one audit append path (src/audit.cpp), for the parts of the API written in SQL.
-- Internal: no role but the extension's own SECURITY DEFINER functions may call it.
CREATE FUNCTION privacy._audit(action text, tenant_id text, job_id bigint, target text,
                               outcome text DEFAULT 'ok', detail jsonb DEFAULT '{}')
RETURNS bigint
AS 'MODULE_PATHNAME', 'privacy_audit_append' LANGUAGE C VOLATILE;

-- Proves the C++/PostgreSQL boundary in both directions (sql/boundary.sql). Superuser only.
CREATE FUNCTION privacy._boundary_selftest(mode text) RETURNS integer
AS 'MODULE_PATHNAME', 'privacy_boundary_selftest' LANGUAGE C STRICT VOLATILE;
-- Per-tenant settings (DESIGN section 3). NULL arguments leave a setting unchanged; pass
-- reset => true to put every setting not given back to its GUC default.
CREATE FUNCTION privacy.configure_tenant(
    tenant_id            text,
    display_name         text DEFAULT NULL,
    rows_per_second      integer DEFAULT NULL,
    max_concurrent_jobs  integer DEFAULT NULL,
    recovery_window      interval DEFAULT NULL,
    export_ttl           interval DEFAULT NULL,
    deadline             interval DEFAULT NULL,
    audit_retention      interval DEFAULT NULL,
    approval_required    privacy.job_kind[] DEFAULT NULL,
    reset                boolean DEFAULT false,
    tombstone_subject    text DEFAULT NULL,
    regulation           privacy.regulation DEFAULT NULL,
    privacy_contact      text DEFAULT NULL,
    time_zone            text DEFAULT NULL)
RETURNS privacy.tenants
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    before   privacy.tenants;
    after    privacy.tenants;
    created  boolean;
BEGIN
    IF tenant_id IS NULL OR btrim(tenant_id) = '' THEN
        RAISE EXCEPTION 'tenant_id must not be empty'
            USING ERRCODE = '22023', HINT = 'Pass the tenant''s identifier as used in your tables.';
    END IF;
    IF rows_per_second < 0 THEN
        RAISE EXCEPTION 'rows_per_second for tenant "%" must be 0 (unlimited) or more, not %', tenant_id, rows_per_second
            USING ERRCODE = '22023';
    END IF;
    IF max_concurrent_jobs < 1 THEN
        RAISE EXCEPTION 'max_concurrent_jobs for tenant "%" must be at least 1, not %', tenant_id, max_concurrent_jobs
            USING ERRCODE = '22023';
    END IF;
    IF recovery_window < interval '0' THEN
        RAISE EXCEPTION 'recovery_window for tenant "%" must not be negative', tenant_id
            USING ERRCODE = '22023', HINT = 'Use interval ''0'' to finalize erasures at once.';
    END IF;
    IF tombstone_subject IS NOT NULL AND btrim(tombstone_subject) = '' THEN
        RAISE EXCEPTION 'tombstone_subject for tenant "%" must not be blank', tenant_id
            USING ERRCODE = '22023',
                  HINT = 'Pass the subject id anonymized rows should point to, e.g. ''0'' for an integer key.';
    END IF;
    IF privacy_contact IS NOT NULL THEN
        PERFORM privacy._check_mail_address(privacy_contact, format('privacy_contact for tenant "%s"', tenant_id));
    END IF;
    IF time_zone IS NOT NULL AND NOT EXISTS (SELECT FROM pg_timezone_names z WHERE z.name = time_zone) THEN
        RAISE EXCEPTION 'time_zone for tenant "%" is not a time zone PostgreSQL knows: "%"', tenant_id, time_zone
            USING ERRCODE = '22023',
                  HINT = 'Pass a name from pg_timezone_names, such as ''Europe/Berlin'' or ''America/Los_Angeles''.';
    END IF;
    IF export_ttl <= interval '0' OR deadline <= interval '0' OR audit_retention <= interval '0' THEN
        RAISE EXCEPTION 'export_ttl, deadline and audit_retention for tenant "%" must be positive', tenant_id
            USING ERRCODE = '22023';
    END IF;
    -- The trail is evidence about the admins who call this function: none of them may shorten
    -- it below the floor only a superuser can set (docs/audit.md, "Retention"). Compared as
    -- timestamps: interval comparison would count '1 year' as 360 days, below a 365-day floor.
    IF now() - audit_retention > now() - current_setting('privacy.audit_retention_floor')::interval THEN
        RAISE EXCEPTION 'audit_retention for tenant "%" must be at least privacy.audit_retention_floor (%), not %',
                tenant_id, current_setting('privacy.audit_retention_floor')::interval, audit_retention
            USING ERRCODE = '22023',
                  HINT = 'Audit rows are kept at least as long as privacy.audit_retention_floor, which only '
                         || 'a superuser can lower (postgresql.conf). Pass a longer audit_retention, e.g. ''1 year''.';
    END IF;

    -- Create the row if missing, else lock it before reading it: "before" in the audit row is
    -- then exactly what this call changed, even when sessions configure one tenant concurrently
    -- (a second creator waits for the first, then updates the row the first one committed).
    INSERT INTO privacy.tenants AS t (tenant_id) VALUES (configure_tenant.tenant_id)
    ON CONFLICT ON CONSTRAINT tenants_pkey DO NOTHING;
    created := FOUND;
    IF NOT created THEN
        SELECT * INTO before FROM privacy.tenants t
        WHERE t.tenant_id = configure_tenant.tenant_id FOR UPDATE;
    END IF;

    UPDATE privacy.tenants AS t SET
        display_name        = CASE WHEN reset THEN configure_tenant.display_name        ELSE coalesce(configure_tenant.display_name, t.display_name) END,
        rows_per_second     = CASE WHEN reset THEN configure_tenant.rows_per_second     ELSE coalesce(configure_tenant.rows_per_second, t.rows_per_second) END,
        max_concurrent_jobs = CASE WHEN reset THEN configure_tenant.max_concurrent_jobs ELSE coalesce(configure_tenant.max_concurrent_jobs, t.max_concurrent_jobs) END,
        recovery_window     = CASE WHEN reset THEN configure_tenant.recovery_window     ELSE coalesce(configure_tenant.recovery_window, t.recovery_window) END,
        export_ttl          = CASE WHEN reset THEN configure_tenant.export_ttl          ELSE coalesce(configure_tenant.export_ttl, t.export_ttl) END,
        deadline            = CASE WHEN reset THEN configure_tenant.deadline            ELSE coalesce(configure_tenant.deadline, t.deadline) END,
        audit_retention     = CASE WHEN reset THEN configure_tenant.audit_retention     ELSE coalesce(configure_tenant.audit_retention, t.audit_retention) END,
        approval_required   = CASE WHEN reset THEN configure_tenant.approval_required   ELSE coalesce(configure_tenant.approval_required, t.approval_required) END,
        tombstone_subject   = CASE WHEN reset THEN configure_tenant.tombstone_subject   ELSE coalesce(configure_tenant.tombstone_subject, t.tombstone_subject) END,
        regulation          = CASE WHEN reset THEN configure_tenant.regulation          ELSE coalesce(configure_tenant.regulation, t.regulation) END,
        privacy_contact     = CASE WHEN reset THEN configure_tenant.privacy_contact     ELSE coalesce(configure_tenant.privacy_contact, t.privacy_contact) END,
        time_zone           = CASE WHEN reset THEN configure_tenant.time_zone           ELSE coalesce(configure_tenant.time_zone, t.time_zone) END,
        updated_by = session_user,
        updated_at = now()
    WHERE t.tenant_id = configure_tenant.tenant_id
    RETURNING * INTO after;

    -- A new tenant had no settings before: "before" is JSON null, not an object of nulls.
    PERFORM privacy._audit('settings_changed', after.tenant_id, NULL, after.tenant_id, 'ok',
        jsonb_build_object('before', CASE WHEN created THEN 'null'::jsonb
                                          ELSE to_jsonb(before) - 'updated_at' - 'updated_by' END,
                           'after', to_jsonb(after) - 'updated_at' - 'updated_by'));
    RETURN after;
END
$fn$;

-- Effective settings of a tenant: its own values, else the GUC defaults. One place for the
-- "NULL means the GUC default" rule; every feature reads settings through it.
CREATE FUNCTION privacy.tenant_settings(tenant_id text)
RETURNS TABLE (tenant_id text, display_name text, rows_per_second integer, max_concurrent_jobs integer,
               recovery_window interval, export_ttl interval, deadline interval,
               audit_retention interval, approval_required privacy.job_kind[], tombstone_subject text,
               regulation privacy.regulation, privacy_contact text, time_zone text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT a.tenant_id, t.display_name,
           coalesce(t.rows_per_second, current_setting('privacy.default_rows_per_second')::integer),
           t.max_concurrent_jobs,
           coalesce(t.recovery_window, current_setting('privacy.recovery_window')::interval),
           coalesce(t.export_ttl, current_setting('privacy.export_ttl')::interval),
           coalesce(t.deadline, current_setting('privacy.deadline')::interval),
           coalesce(t.audit_retention, current_setting('privacy.audit_retention')::interval),
           coalesce(t.approval_required, ARRAY['erase', 'purge']::privacy.job_kind[]),
           t.tombstone_subject,
           coalesce(t.regulation, 'other'), t.privacy_contact, coalesce(t.time_zone, 'UTC')
    FROM (SELECT tenant_settings.tenant_id) AS a
    LEFT JOIN privacy.tenants t ON t.tenant_id = a.tenant_id
$fn$;
-- Registration, soft-delete through row-level security, restore (DESIGN sections 4 and 5).
-- docs/soft-delete.md explains the model; src/registry.cpp, softdelete.cpp and batch.cpp do it.

-- The per-installation secret of the 'hash' anonymization rule, generated here from OpenSSL's
-- CSPRNG. No role may read it (see the REVOKE below and in 99_grants.sql); the extension reads
-- it as its owner. It is deliberately NOT an extension config table: pg_dump leaves it
-- out, so a restored database gets a new secret (see docs/soft-delete.md).
CREATE TABLE privacy.installation_secret (
    secret      bytea NOT NULL CHECK (length(secret) >= 32),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION privacy._random_bytes(n integer) RETURNS bytea
AS 'MODULE_PATHNAME', 'privacy_random_bytes' LANGUAGE C STRICT VOLATILE;

INSERT INTO privacy.installation_secret (secret) SELECT privacy._random_bytes(32);

-- HMAC-SHA-256 of value under the installation secret, in hex. STABLE, not IMMUTABLE: the
-- secret is data. Superuser only (no grants): shows the pseudonym of a known value. The
-- anonymizing finalization hashes in C++ and writes the values as the table's owner, who must
-- not get this oracle (docs/security.md).
CREATE FUNCTION privacy._pseudonym(value text) RETURNS text
AS 'MODULE_PATHNAME', 'privacy_pseudonym'
LANGUAGE C STRICT STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION privacy.register_table(rel regclass, subject_column name, tenant_column name DEFAULT NULL,
                                       on_erase text DEFAULT 'delete')
RETURNS void
AS 'MODULE_PATHNAME', 'privacy_register_table'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION privacy.unregister_table(rel regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'privacy_unregister_table'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION privacy.set_column_rule(rel regclass, column_name name, rule text)
RETURNS void
AS 'MODULE_PATHNAME', 'privacy_set_column_rule'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- Brings back rows an erase job marked (completed, cancelled or failed) within its recovery window,
-- and afterwards rows a legal hold kept from finalization: all of them, those of one relation, or
-- the rows whose keys are listed (a JSON array of objects {"key_column": value}).
CREATE FUNCTION privacy.restore(job_id bigint, relation regclass DEFAULT NULL, keys jsonb DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'privacy_restore'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

REVOKE ALL ON privacy.installation_secret FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy._random_bytes(integer), privacy._pseudonym(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy.register_table(regclass, name, name, text), privacy.unregister_table(regclass),
                       privacy.set_column_rule(regclass, name, text),
                       privacy.restore(bigint, regclass, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.register_table(regclass, name, name, text), privacy.unregister_table(regclass),
                          privacy.set_column_rule(regclass, name, text),
                          privacy.restore(bigint, regclass, jsonb) TO privacy_admin;
-- Requests, decisions and running jobs (DESIGN section 4). The bodies are C++ (src/requests.cpp,
-- src/run_job.cpp); status changes all go through the state machine in src/core.

-- regulation: the law the request is answered under (docs/compliance.md); NULL: the tenant's.
CREATE FUNCTION privacy.request_export(tenant_id text, subject_id text, reason text, notify_email text DEFAULT NULL,
                                       regulation privacy.regulation DEFAULT NULL)
RETURNS bigint AS 'MODULE_PATHNAME', 'privacy_request_export'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION privacy.request_erase(tenant_id text, subject_id text, reason text, notify_email text DEFAULT NULL,
                                      regulation privacy.regulation DEFAULT NULL)
RETURNS bigint AS 'MODULE_PATHNAME', 'privacy_request_erase'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION privacy.request_purge(tenant_id text, target_type privacy.target_type, target_id text,
                                      reason text, notify_email text DEFAULT NULL,
                                      regulation privacy.regulation DEFAULT NULL)
RETURNS bigint AS 'MODULE_PATHNAME', 'privacy_request_purge'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION privacy.approve(job_id bigint, note text DEFAULT NULL) RETURNS void
AS 'MODULE_PATHNAME', 'privacy_approve'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION privacy.reject(job_id bigint, reason text) RETURNS void
AS 'MODULE_PATHNAME', 'privacy_reject'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION privacy.cancel(job_id bigint, reason text) RETURNS void
AS 'MODULE_PATHNAME', 'privacy_cancel'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION privacy.retry(job_id bigint) RETURNS void
AS 'MODULE_PATHNAME', 'privacy_retry'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- Moves due_at later, as far as the job's regulation allows (docs/compliance.md), and tells the
-- requester (notify_email) with the reason.
CREATE FUNCTION privacy.extend_deadline(job_id bigint, by interval, reason text) RETURNS void
AS 'MODULE_PATHNAME', 'privacy_extend_deadline'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION privacy.preview(job_id bigint)
RETURNS TABLE (relation regclass, matching_rows bigint, held boolean)
AS 'MODULE_PATHNAME', 'privacy_preview'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- Flagged items (privacy.job_errors, docs/jobs.md "Flagged items"). retry_items re-runs the action
-- of the job's open items, now, in this session; resolve_item records a person's decision on one.
CREATE FUNCTION privacy.retry_items(job_id bigint, OUT items bigint, OUT succeeded bigint, OUT failed_again bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'privacy_retry_items'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION privacy.resolve_item(error_id bigint, note text) RETURNS void
AS 'MODULE_PATHNAME', 'privacy_resolve_item'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- SECURITY INVOKER on purpose: a procedure that commits cannot be SECURITY DEFINER. It checks
-- membership in privacy_admin itself and runs each batch as the extension owner.
CREATE PROCEDURE privacy.run_job(job_id bigint)
AS 'MODULE_PATHNAME', 'privacy_run_job' LANGUAGE C;

GRANT EXECUTE ON FUNCTION privacy.request_export(text, text, text, text, privacy.regulation),
                          privacy.request_erase(text, text, text, text, privacy.regulation),
                          privacy.request_purge(text, privacy.target_type, text, text, text, privacy.regulation)
    TO privacy_requester, privacy_admin;
GRANT EXECUTE ON FUNCTION privacy.approve(bigint, text), privacy.reject(bigint, text),
                          privacy.cancel(bigint, text), privacy.retry(bigint),
                          privacy.extend_deadline(bigint, interval, text), privacy.preview(bigint),
                          privacy.retry_items(bigint), privacy.resolve_item(bigint, text)
    TO privacy_admin;
GRANT EXECUTE ON PROCEDURE privacy.run_job(bigint) TO privacy_admin;
-- psql is the dashboard (DESIGN section 4): the stat cards. with_open_items counts the jobs with
-- flagged items nobody has resolved or retried yet (privacy.job_errors).
CREATE VIEW privacy.dashboard AS
SELECT count(*) FILTER (WHERE status = 'pending')                           AS pending,
       count(*) FILTER (WHERE status = 'approved')                          AS approved,
       count(*) FILTER (WHERE status = 'processing')                        AS processing,
       count(*) FILTER (WHERE status = 'completed')                         AS completed,
       count(*) FILTER (WHERE status = 'failed')                            AS failed,
       count(*) FILTER (WHERE status = 'rejected')                          AS rejected,
       count(*) FILTER (WHERE status = 'cancelled')                         AS cancelled,
       count(*)                                                             AS total,
       count(*) FILTER (WHERE status IN ('pending', 'approved', 'processing', 'failed')
                          AND due_at < now())                               AS overdue,
       count(*) FILTER (WHERE finalization = 'awaiting_window')             AS awaiting_window,
       count(*) FILTER (WHERE finalization = 'finalizing')                  AS finalizing,
       count(*) FILTER (WHERE finalization = 'held')                        AS finalization_held,
       count(*) FILTER (WHERE EXISTS (SELECT FROM privacy.job_errors e
                                       WHERE e.job_id = jobs.id AND e.resolution IS NULL))
                                                                            AS with_open_items
FROM privacy.jobs;
-- Monitoring from psql (DESIGN section 4): one row per job, search, detail.

CREATE VIEW privacy.job_overview AS
SELECT j.id,
       j.kind,
       j.target_type,
       j.target_id,
       j.tenant_id,
       t.display_name AS tenant_name,
       j.requested_by,
       j.status,
       j.requires_approval,
       j.requested_at AS created_at,
       j.updated_at,
       CASE WHEN j.status = 'completed' THEN 100.0
            WHEN coalesce(j.total_items, 0) = 0 THEN 0.0
            ELSE round(100.0 * least(j.processed_items + j.failed_items, j.total_items) / j.total_items, 1)
       END AS progress_pct,
       j.processed_items,
       j.total_items,
       j.eta,
       j.failed_items,
       j.due_at,
       (j.status IN ('pending', 'approved', 'processing', 'failed') AND j.due_at < now()) AS overdue,
       j.finalization,
       j.recoverable_until,
       (SELECT count(*) FROM privacy.job_errors e WHERE e.job_id = j.id AND e.resolution IS NULL) AS open_items,
       j.attempts,
       j.last_error
FROM privacy.jobs j
LEFT JOIN privacy.tenants t ON t.tenant_id = j.tenant_id;

-- Search by tenant id or name, job id or target id; requesters see only their own jobs.
CREATE FUNCTION privacy.find_jobs(search text DEFAULT NULL, status privacy.job_status DEFAULT NULL,
                                  kind privacy.job_kind DEFAULT NULL)
RETURNS SETOF privacy.job_overview
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT o.*
      FROM privacy.job_overview o
     WHERE (find_jobs.status IS NULL OR o.status = find_jobs.status)
       AND (find_jobs.kind IS NULL OR o.kind = find_jobs.kind)
       AND (find_jobs.search IS NULL
            OR o.tenant_id ILIKE '%' || find_jobs.search || '%'
            OR o.tenant_name ILIKE '%' || find_jobs.search || '%'
            OR o.target_id ILIKE '%' || find_jobs.search || '%'
            OR o.id::text = btrim(find_jobs.search))
       AND (pg_has_role(session_user, 'privacy_admin', 'USAGE') OR o.requested_by = session_user)
     ORDER BY o.id DESC
$fn$;

-- Everything about one job: the row, its tenant settings, error items, audit trail, export file.
CREATE FUNCTION privacy.job_detail(job_id bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    detail jsonb;
BEGIN
    SELECT jsonb_build_object(
               'job', to_jsonb(j) - 'cursor',
               'progress', (SELECT to_jsonb(o) FROM privacy.job_overview o WHERE o.id = j.id),
               'tenant_settings', (SELECT to_jsonb(s) FROM privacy.tenant_settings(j.tenant_id) s),
               'errors', (SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY e.id), '[]')
                            FROM (SELECT id, relation::text, row_key, phase, attempt, sqlstate, message, at,
                                         resolution, resolved_by, resolved_at, note
                                    FROM privacy.job_errors WHERE job_errors.job_id = j.id
                                   ORDER BY id LIMIT 100) e),
               'error_count', (SELECT count(*) FROM privacy.job_errors e WHERE e.job_id = j.id),
               'open_items', (SELECT count(*) FROM privacy.job_errors e
                               WHERE e.job_id = j.id AND e.resolution IS NULL),
               'history', (SELECT coalesce(jsonb_agg(jsonb_build_object('at', a.at, 'action', a.action,
                                                                       'actor', a.actor, 'detail', a.detail)
                                                     ORDER BY a.id), '[]')
                             FROM privacy.audit_log a WHERE a.job_id = j.id),
               'export_file', (SELECT to_jsonb(f) FROM privacy.export_files f WHERE f.job_id = j.id))
      INTO detail
      FROM privacy.jobs j
     WHERE j.id = job_detail.job_id
       AND (pg_has_role(session_user, 'privacy_admin', 'USAGE') OR j.requested_by = session_user);
    IF detail IS NULL THEN
        RAISE EXCEPTION 'job % does not exist', job_id
            USING ERRCODE = '22023', HINT = 'See privacy.find_jobs() for the jobs you can see.';
    END IF;
    RETURN detail;
END
$fn$;

GRANT SELECT ON privacy.job_overview TO privacy_admin;
GRANT EXECUTE ON FUNCTION privacy.find_jobs(text, privacy.job_status, privacy.job_kind),
                          privacy.job_detail(bigint)
    TO privacy_admin, privacy_requester;
-- The audit trail (DESIGN section 8, issue 6): append-only guard, verification, retention, export.
-- The append path itself is privacy._audit (20_core_functions.sql, src/audit.cpp).

-- Append-only guard (src/audit.cpp). Refuses UPDATE, DELETE and TRUNCATE of the trail for every
-- role, superusers included; only the extension's own C++ code (append, the retention purge) gets
-- through. INSERT outside the append path is refused too, except for superusers (pg_restore). ENABLE ALWAYS: session_replication_role = replica does not skip it.
CREATE FUNCTION privacy._audit_guard() RETURNS trigger
AS 'MODULE_PATHNAME', 'privacy_audit_guard' LANGUAGE C;

CREATE TRIGGER audit_log_append_only BEFORE INSERT OR UPDATE OR DELETE ON privacy.audit_log
    FOR EACH ROW EXECUTE FUNCTION privacy._audit_guard('log');
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON privacy.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION privacy._audit_guard('log');
CREATE TRIGGER audit_chains_guard BEFORE INSERT OR UPDATE OR DELETE ON privacy.audit_chains
    FOR EACH ROW EXECUTE FUNCTION privacy._audit_guard('chains');
CREATE TRIGGER audit_chains_no_truncate BEFORE TRUNCATE ON privacy.audit_chains
    FOR EACH STATEMENT EXECUTE FUNCTION privacy._audit_guard('chains');
ALTER TABLE privacy.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;
ALTER TABLE privacy.audit_log ENABLE ALWAYS TRIGGER audit_log_no_truncate;
ALTER TABLE privacy.audit_chains ENABLE ALWAYS TRIGGER audit_chains_guard;
ALTER TABLE privacy.audit_chains ENABLE ALWAYS TRIGGER audit_chains_no_truncate;

-- Re-checks every chain from its anchor (src/audit_verify.cpp). ok is false when any row was
-- changed, deleted, inserted or reordered; first_bad_id is the smallest id where a chain breaks
-- (for a deleted newest row: the chain head's last_id, which no longer exists).
CREATE FUNCTION privacy.verify_audit_log()
RETURNS TABLE (ok boolean, checked bigint, first_bad_id bigint)
AS 'MODULE_PATHNAME', 'privacy_verify_audit_log'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- The retention purge "as of" now_override, all batches at once (src/audit_retention.cpp). The
-- launcher runs the same purge by itself (step "audit retention"). Superuser only.
CREATE FUNCTION privacy._purge_audit(now_override timestamptz DEFAULT now()) RETURNS bigint
AS 'MODULE_PATHNAME', 'privacy_purge_audit' LANGUAGE C VOLATILE;

-- The rows of [from_ts, to_ts) in chain order, for
--   \copy (SELECT * FROM privacy.audit_export('2024-01-01', '2025-01-01')) TO 'audit.csv' CSV HEADER
-- The export itself is audited ('audit_exported', platform chain).
CREATE FUNCTION privacy.audit_export(from_ts timestamptz, to_ts timestamptz)
RETURNS SETOF privacy.audit_log
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    PERFORM privacy._audit_export_begin(from_ts, to_ts, 'csv');
    RETURN QUERY
        SELECT l.* FROM privacy.audit_log l
        WHERE l.at >= from_ts AND l.at < to_ts
        ORDER BY l.chain, l.id;
END
$fn$;

-- The same rows as JSON, one object per row, with "at" already in the canonical form the hash
-- covers (core/hash_chain.hpp), so a reviewer needs no time-zone conversion. Audited too.
CREATE FUNCTION privacy.audit_export_json(from_ts timestamptz, to_ts timestamptz)
RETURNS SETOF jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    PERFORM privacy._audit_export_begin(from_ts, to_ts, 'json');
    RETURN QUERY
        SELECT jsonb_build_object(
                   'id', l.id, 'chain', l.chain,
                   'at', to_char(l.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                   'session_user', l.actor, 'current_user', l.acting_role,
                   'client_addr', l.client_addr, 'application_name', l.application_name,
                   'action', l.action, 'tenant_id', l.tenant_id, 'job_id', l.job_id,
                   'target', l.target, 'outcome', l.outcome,
                   'detail', l.detail, 'detail_text', l.detail::text,
                   'prev_hash', l.prev_hash, 'hash', l.hash)
        FROM privacy.audit_log l
        WHERE l.at >= from_ts AND l.at < to_ts
        ORDER BY l.chain, l.id;
END
$fn$;

-- One place for what both export forms do first: check the period and audit the export.
CREATE FUNCTION privacy._audit_export_begin(from_ts timestamptz, to_ts timestamptz, format text)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL OR from_ts >= to_ts THEN
        RAISE EXCEPTION 'audit export needs from_ts < to_ts, got [%, %)', from_ts, to_ts
            USING ERRCODE = '22023',
                  HINT = 'Pass the start (inclusive) and end (exclusive) of the period, e.g. ''2024-01-01'', now().';
    END IF;
    PERFORM privacy._audit('audit_exported', NULL, NULL, 'privacy.audit_log', 'ok',
        jsonb_build_object('format', format, 'from', from_ts, 'to', to_ts,
                           'rows', (SELECT count(*) FROM privacy.audit_log l
                                    WHERE l.at >= from_ts AND l.at < to_ts)));
END
$fn$;

-- Auditors (and administrators) read, verify and export the trail. Nobody gets INSERT, UPDATE or
-- DELETE on it, nor EXECUTE on privacy._audit / privacy._purge_audit: only the extension writes.
REVOKE ALL ON privacy.audit_log, privacy.audit_chains FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy._audit(text, text, bigint, text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy._purge_audit(timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy._audit_export_begin(timestamptz, timestamptz, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy.verify_audit_log() FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy.audit_export(timestamptz, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy.audit_export_json(timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.verify_audit_log() TO privacy_auditor, privacy_admin;
GRANT EXECUTE ON FUNCTION privacy.audit_export(timestamptz, timestamptz) TO privacy_auditor, privacy_admin;
GRANT EXECUTE ON FUNCTION privacy.audit_export_json(timestamptz, timestamptz) TO privacy_auditor, privacy_admin;
-- Legal holds (DESIGN section 7, docs/legal-holds.md): placing and releasing holds, the
-- enforcement triggers (C++, src/holds_trigger.cpp) and the DROP TABLE guard.

-- Enforcement triggers attached to every registered table by holds::attach_triggers.
CREATE FUNCTION privacy._hold_guard() RETURNS trigger
AS 'MODULE_PATHNAME', 'privacy_hold_guard' LANGUAGE C;
CREATE FUNCTION privacy._hold_guard_truncate() RETURNS trigger
AS 'MODULE_PATHNAME', 'privacy_hold_guard_truncate' LANGUAGE C;

-- Announces every change of privacy.legal_holds: the shared generation moves at commit, so
-- every backend re-reads its cached holds. ALWAYS: replica-mode changes count too.
CREATE FUNCTION privacy._holds_changed() RETURNS trigger
AS 'MODULE_PATHNAME', 'privacy_holds_changed' LANGUAGE C;
CREATE TRIGGER legal_holds_changed
    AFTER INSERT OR UPDATE OR DELETE ON privacy.legal_holds
    FOR EACH STATEMENT EXECUTE FUNCTION privacy._holds_changed();
CREATE TRIGGER legal_holds_truncated
    AFTER TRUNCATE ON privacy.legal_holds
    FOR EACH STATEMENT EXECUTE FUNCTION privacy._holds_changed();
ALTER TABLE privacy.legal_holds ENABLE ALWAYS TRIGGER legal_holds_changed;
ALTER TABLE privacy.legal_holds ENABLE ALWAYS TRIGGER legal_holds_truncated;

-- Internal (superuser only): attach or remove the enforcement triggers by hand (tests, repairs).
-- Normally holds::sync_triggers does it: see privacy._sync_hold_triggers below.
CREATE FUNCTION privacy._attach_hold_triggers(rel regclass, subject_column name, tenant_column name DEFAULT NULL)
RETURNS void AS 'MODULE_PATHNAME', 'privacy_attach_hold_triggers' LANGUAGE C VOLATILE;
CREATE FUNCTION privacy._detach_hold_triggers(rel regclass)
RETURNS void AS 'MODULE_PATHNAME', 'privacy_detach_hold_triggers' LANGUAGE C VOLATILE;

-- Internal (superuser only): bring the enforcement triggers of one registered table (NULL: all)
-- in line with the active holds (holds::sync_triggers); returns how many tables were left as they
-- were because their lock was not free. wait => true waits for the lock before attaching.
CREATE FUNCTION privacy._sync_hold_triggers(rel regclass DEFAULT NULL, wait boolean DEFAULT false)
RETURNS integer AS 'MODULE_PATHNAME', 'privacy_sync_hold_triggers' LANGUAGE C VOLATILE;
-- Internal (superuser only): the launcher's expiry step, run now.
CREATE FUNCTION privacy._expire_holds()
RETURNS void AS 'MODULE_PATHNAME', 'privacy_expire_holds' LANGUAGE C VOLATILE;

-- Places a legal hold and returns its id. A hold protects from its commit on: place_hold takes
-- a SHARE ROW EXCLUSIVE lock on every registered table it could cover, which waits for writers
-- already in flight (their changes came before the hold) and keeps new writers out until the
-- hold commits; then it attaches the enforcement triggers where they are missing (the lock is
-- the one CREATE TRIGGER needs, so two place_hold calls cannot deadlock upgrading it).
CREATE FUNCTION privacy.place_hold(
    scope          privacy.hold_scope,
    scope_id       text,
    tenant_id      text,
    reason         text,
    expires_at     timestamptz DEFAULT NULL,
    block_updates  boolean DEFAULT true)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    hold_tenant  text := place_hold.tenant_id;
    held_id      text := place_hold.scope_id;
    table_oid    regclass;
    locked       regclass;
    new_id       bigint;
BEGIN
    IF scope IS NULL THEN
        RAISE EXCEPTION 'hold scope must not be NULL'
            USING ERRCODE = '22023', HINT = 'Use ''tenant'', ''subject'' or ''table''.';
    END IF;
    IF held_id IS NULL OR btrim(held_id) = '' THEN
        RAISE EXCEPTION 'scope_id of a % hold must not be empty', scope
            USING ERRCODE = '22023',
                  HINT = 'Pass the tenant id, the subject id or the registered table to hold.';
    END IF;
    IF reason IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'a legal hold needs a reason'
            USING ERRCODE = '22023', HINT = 'Say why the data must be kept, e.g. the case reference.';
    END IF;
    IF hold_tenant IS NOT NULL AND btrim(hold_tenant) = '' THEN
        RAISE EXCEPTION 'tenant_id must be NULL or a tenant id, not blank'
            USING ERRCODE = '22023';
    END IF;
    IF expires_at IS NOT NULL AND expires_at <= now() THEN
        RAISE EXCEPTION 'expires_at % of the hold on % % is not in the future', expires_at, scope, held_id
            USING ERRCODE = '22023', HINT = 'Pass a later time, or NULL for a hold until released.';
    END IF;
    IF block_updates IS NULL THEN
        RAISE EXCEPTION 'block_updates must be true or false'
            USING ERRCODE = '22023';
    END IF;

    IF scope = 'tenant' THEN
        IF hold_tenant IS NOT NULL AND hold_tenant <> held_id THEN
            RAISE EXCEPTION 'tenant hold on "%" names another tenant_id "%"', held_id, hold_tenant
                USING ERRCODE = '22023', HINT = 'Pass tenant_id NULL (or the same tenant) for a tenant hold.';
        END IF;
        hold_tenant := held_id;
    ELSIF scope = 'subject' THEN
        IF hold_tenant IS NULL THEN
            RAISE EXCEPTION 'a subject hold on "%" needs the tenant the subject belongs to', held_id
                USING ERRCODE = '22023', HINT = 'Pass tenant_id.';
        END IF;
    ELSE
        -- search_path is pinned here, so an unqualified name is looked up among the
        -- registered tables; it must be unambiguous.
        table_oid := pg_catalog.to_regclass(held_id);
        IF table_oid IS NULL AND strpos(held_id, '.') = 0 THEN
            SELECT r.relation INTO table_oid FROM privacy.registered_tables r
              JOIN pg_catalog.pg_class c ON c.oid = r.relation
             WHERE c.relname = held_id;
            IF (SELECT count(*) FROM privacy.registered_tables r JOIN pg_catalog.pg_class c ON c.oid = r.relation
                 WHERE c.relname = held_id) > 1 THEN
                RAISE EXCEPTION 'table name "%" is ambiguous: several registered tables have it', held_id
                    USING ERRCODE = '22023', HINT = 'Qualify it with its schema, e.g. ''public.orders''.';
            END IF;
        END IF;
        IF table_oid IS NULL THEN
            RAISE EXCEPTION 'table "%" does not exist', held_id
                USING ERRCODE = '42P01',
                      HINT = 'Name a registered table, schema-qualified (e.g. ''public.orders'').';
        END IF;
        IF NOT EXISTS (SELECT FROM privacy.registered_tables r WHERE r.relation = table_oid) THEN
            RAISE EXCEPTION 'table % is not registered with pg_privacy', table_oid
                USING ERRCODE = '22023', HINT = 'Register it first with privacy.register_table.';
        END IF;
        held_id := table_oid::text;  -- schema-qualified: search_path is pinned to pg_catalog
    END IF;

    -- Wait out writers in flight on the tables the hold could cover and keep new ones out
    -- until commit (in OID order, so concurrent place_hold calls agree).
    FOR locked IN
        SELECT r.relation FROM privacy.registered_tables r
          JOIN pg_catalog.pg_class c ON c.oid = r.relation   -- skip tables dropped meanwhile
         WHERE table_oid IS NULL OR r.relation = table_oid
         ORDER BY r.relation::oid
    LOOP
        EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', locked);
    END LOOP;

    INSERT INTO privacy.legal_holds (scope, scope_id, relation, tenant_id, reason, created_by, created_at,
                                     expires_at, block_updates)
    VALUES (scope, held_id, table_oid, hold_tenant, reason, session_user, now(), expires_at, block_updates)
    RETURNING id INTO new_id;
    -- On Citus, to every worker node in this transaction (docs/citus.md, "Legal holds").
    PERFORM privacy._replicate_hold(new_id);

    -- Enforcement commits with the hold: the triggers on every table it covers (also tables
    -- registered since the loop above: the registered tables are listed again, latest snapshot).
    PERFORM privacy._sync_hold_triggers(table_oid, true);

    PERFORM privacy._audit('hold_placed', hold_tenant, NULL, 'hold ' || new_id, 'ok',
        jsonb_build_object('hold_id', new_id, 'scope', scope, 'scope_id', held_id,
                           'reason', reason, 'expires_at', expires_at, 'block_updates', block_updates));
    RETURN new_id;
END
$fn$;

-- Releases an active hold; the data it protected may then be erased again.
CREATE FUNCTION privacy.release_hold(hold_id bigint, reason text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    hold  privacy.legal_holds;
BEGIN
    IF reason IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'releasing legal hold % needs a reason', hold_id
            USING ERRCODE = '22023', HINT = 'Say why the data no longer has to be kept.';
    END IF;
    SELECT * INTO hold FROM privacy.legal_holds h WHERE h.id = release_hold.hold_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'legal hold % does not exist', hold_id
            USING ERRCODE = '22023', HINT = 'See privacy.legal_holds for the holds placed.';
    END IF;
    IF NOT hold.active THEN
        RAISE EXCEPTION 'legal hold % is no longer active', hold_id
            USING ERRCODE = '55000',
                  DETAIL = CASE WHEN hold.released_at IS NOT NULL
                                THEN format('It was released by %s at %s.', hold.released_by, hold.released_at)
                                ELSE format('It expired at %s.', hold.expires_at) END,
                  HINT = 'Nothing to release.';
    END IF;

    UPDATE privacy.legal_holds h
       SET active = false, released_by = session_user, released_at = now(),
           release_reason = release_hold.reason
     WHERE h.id = release_hold.hold_id;
    PERFORM privacy._replicate_hold(hold.id);

    -- Tables no longer covered by any hold lose their triggers (those whose lock is free now;
    -- the launcher catches up with the others).
    IF hold.scope <> 'table' THEN
        PERFORM privacy._sync_hold_triggers(NULL);
    ELSIF EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid = hold.relation) THEN
        PERFORM privacy._sync_hold_triggers(hold.relation);
    END IF;

    PERFORM privacy._audit('hold_released', hold.tenant_id, NULL, 'hold ' || hold.id, 'ok',
        jsonb_build_object('hold_id', hold.id, 'scope', hold.scope, 'scope_id', hold.scope_id,
                           'reason', reason));
END
$fn$;

-- What a hold cannot stop by trigger: dropping the table. This event trigger refuses to drop a
-- registered table, or a partition of one, while a hold could cover its rows (a table hold on the
-- registered table, by OID, or any tenant or subject hold); DROP SCHEMA ... CASCADE and DROP
-- OWNED are caught too (sql_drop sees every dropped table). ALWAYS, so replica mode does not skip
-- it. It must run before privacy_tamper_guard_drop (event triggers of one event fire in name
-- order), which removes the registration of a dropped table (72_ddl_guard.sql).
CREATE FUNCTION privacy._hold_drop_guard() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    dropped  record;
    hold     privacy.legal_holds;
BEGIN
    FOR dropped IN
        SELECT d.object_identity, coalesce(r.relation, p.registered_table)::oid AS registered_table
          FROM pg_catalog.pg_event_trigger_dropped_objects() d
          LEFT JOIN privacy.registered_tables r ON r.relation::oid = d.objid
          LEFT JOIN privacy.registered_partitions p ON p.relation::oid = d.objid
         WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0
           AND (r.relation IS NOT NULL OR p.relation IS NOT NULL)
    LOOP
        SELECT * INTO hold FROM privacy.legal_holds h
         WHERE h.active AND (h.expires_at IS NULL OR h.expires_at > now())
           AND (h.scope <> 'table' OR h.relation::oid = dropped.registered_table)
         ORDER BY h.id LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'DROP of registered table % is blocked by legal hold % (% %)',
                    dropped.object_identity, hold.id, hold.scope, hold.scope_id
                USING ERRCODE = 'PV001',
                      DETAIL = format('Hold %s was placed by %s at %s: %s', hold.id, hold.created_by,
                                      hold.created_at, hold.reason),
                      HINT = 'Wait until the hold is released (privacy.release_hold) or expires; held data must not be deleted or changed.';
        END IF;
    END LOOP;
END
$fn$;
CREATE EVENT TRIGGER privacy_hold_drop_guard ON sql_drop
    EXECUTE FUNCTION privacy._hold_drop_guard();
ALTER EVENT TRIGGER privacy_hold_drop_guard ENABLE ALWAYS;

REVOKE ALL ON FUNCTION privacy.place_hold(privacy.hold_scope, text, text, text, timestamptz, boolean),
                       privacy.release_hold(bigint, text),
                       privacy._attach_hold_triggers(regclass, name, name),
                       privacy._detach_hold_triggers(regclass),
                       privacy._sync_hold_triggers(regclass, boolean), privacy._expire_holds(),
                       privacy._hold_guard(), privacy._hold_guard_truncate(), privacy._holds_changed(),
                       privacy._hold_drop_guard()
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.place_hold(privacy.hold_scope, text, text, text, timestamptz, boolean),
                          privacy.release_hold(bigint, text)
    TO privacy_admin;
-- The DDL guard of registered tables (docs/soft-delete.md, "Registration and the tamper guard";
-- src/ddl_guard.cpp): one function behind three event triggers.
--  * ddl_command_start and ddl_command_end: a command that takes away what hides a registered
--    table's erased rows or enforces its legal holds is refused; partitions created, attached or
--    detached follow their registered table.
--  * sql_drop: a dropped registered table (or partition of one) loses its registration (audited
--    'table_dropped'). Its name sorts after privacy_hold_drop_guard, and event triggers of one
--    event fire in name order: a drop that a hold forbids is refused before anything is removed.
-- ENABLE ALWAYS, so session_replication_role = replica does not skip them. Superusers can still
-- disable them (ALTER EVENT TRIGGER ... DISABLE): see "What the guard cannot stop" in the docs.
CREATE FUNCTION privacy._tamper_guard() RETURNS event_trigger
AS 'MODULE_PATHNAME', 'privacy_tamper_guard'
LANGUAGE C SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE EVENT TRIGGER privacy_tamper_guard_start ON ddl_command_start
    EXECUTE FUNCTION privacy._tamper_guard();
CREATE EVENT TRIGGER privacy_tamper_guard_drop ON sql_drop
    EXECUTE FUNCTION privacy._tamper_guard();
CREATE EVENT TRIGGER privacy_tamper_guard_end ON ddl_command_end
    EXECUTE FUNCTION privacy._tamper_guard();
ALTER EVENT TRIGGER privacy_tamper_guard_start ENABLE ALWAYS;
ALTER EVENT TRIGGER privacy_tamper_guard_drop ENABLE ALWAYS;
ALTER EVENT TRIGGER privacy_tamper_guard_end ENABLE ALWAYS;

REVOKE ALL ON FUNCTION privacy._tamper_guard() FROM PUBLIC;
-- Citus (docs/citus.md): verifies every placement of every registered distributed or reference
-- table from the coordinator and repairs what it can (the hide policy RESTRICTIVE, row level
-- security enabled and forced; rows create_distributed_table left in the coordinator's shell
-- table). The launcher runs the same check after every change of placements. Returns NULL when
-- everything is safe, otherwise what is left wrong; each repair is audited (citus_repaired).
CREATE FUNCTION privacy.citus_verify() RETURNS text
AS 'MODULE_PATHNAME', 'privacy_citus_verify'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

REVOKE ALL ON FUNCTION privacy.citus_verify() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.citus_verify() TO privacy_admin;

-- The legal holds as the Citus worker nodes see them (docs/citus.md, "Legal holds"): a copy of
-- privacy.legal_holds, made a Citus reference table by the coordinator before its first hold,
-- so that every write reaches every node in the coordinator's distributed transaction (two-phase
-- commit). The hold triggers on the shards read their node's placement of it. Table holds are not
-- copied (relation NULL): they are refused on Citus tables. Written only by pg_privacy.
CREATE TABLE privacy.hold_replica (
    id              bigint PRIMARY KEY,
    scope           privacy.hold_scope NOT NULL,
    scope_id        text NOT NULL,
    relation        regclass,
    tenant_id       text,
    reason          text NOT NULL,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL,
    active          boolean NOT NULL,
    expires_at      timestamptz,
    block_updates   boolean NOT NULL
);
REVOKE ALL ON privacy.hold_replica FROM PUBLIC;

-- Internal (called by place_hold, release_hold and the expiry step): copies hold `hold_id` as it
-- is now to every Citus node, in the caller's transaction. Does nothing without Citus.
CREATE FUNCTION privacy._replicate_hold(hold_id bigint) RETURNS void
AS 'MODULE_PATHNAME', 'privacy_replicate_hold' LANGUAGE C STRICT VOLATILE;

-- Internal (run on worker nodes by the coordinator's launcher): takes the queued hold_blocked
-- events of this node, as a JSON array, each naming the distributed table rather than its shard.
CREATE FUNCTION privacy._take_blocked_events() RETURNS text
AS 'MODULE_PATHNAME', 'privacy_take_blocked_events' LANGUAGE C VOLATILE;

REVOKE ALL ON FUNCTION privacy._replicate_hold(bigint), privacy._take_blocked_events() FROM PUBLIC;
-- Compliance evidence (docs/compliance.md): the installation's identity, the receipt signing key,
-- receipts, the erasure ledger and its replay, the SLA report and the records of processing.
-- The C++ lives in src/evidence.cpp (receipts, signing key), src/erasure_ledger.cpp and
-- src/deadlines.cpp (deadlines, their notices).

-- Who issued a receipt or a ledger: a random id made at CREATE EXTENSION and kept by pg_dump. A
-- database restored from a dump gets a second row from its own CREATE EXTENSION and the dumped one
-- from the dump; the oldest row is the identity, so a restore keeps it.
CREATE TABLE privacy.installation (
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO privacy.installation DEFAULT VALUES;

-- The private keys that sign receipts and ledger heads and seal the ledger's subject ids: one row
-- per key ever set (the active certificate in privacy.signing_certificates says which one signs;
-- earlier ones still open the ledger entries they sealed). Readable by no role (see the REVOKE
-- below and in 99_grants.sql), read by the extension as its owner, never returned by any
-- function. Like privacy.installation_secret it is NOT an extension config table: pg_dump leaves
-- it out, and a restored database signs nothing until privacy.set_signing_key is called again.
CREATE TABLE privacy.signing_key (
    fingerprint  text PRIMARY KEY,   -- of its certificate in privacy.signing_certificates
    private_key  text NOT NULL,
    set_at       timestamptz NOT NULL DEFAULT now()
);

-- Every certificate whose key signed receipts; the current one is active. Kept (and dumped) so
-- that evidence signed with an earlier key still verifies after the key is replaced.
CREATE TABLE privacy.signing_certificates (
    fingerprint  text PRIMARY KEY,   -- SHA-256 of the DER certificate, hex
    certificate  text NOT NULL,
    subject      text NOT NULL,
    key_type     text NOT NULL,
    not_after    timestamptz NOT NULL,
    set_by       text NOT NULL DEFAULT session_user,
    set_at       timestamptz NOT NULL DEFAULT now(),
    active       boolean NOT NULL DEFAULT true,
    replaced_at  timestamptz
);
CREATE UNIQUE INDEX signing_certificates_active_idx ON privacy.signing_certificates ((true)) WHERE active;

-- One receipt per finished request (an export or purge completed, an erase finalized): the JSON
-- document exactly as signed, and its CMS SignedData. signature is NULL while no signing key is
-- set; privacy.set_signing_key signs those receipts.
CREATE TABLE privacy.receipts (
    job_id      bigint PRIMARY KEY REFERENCES privacy.jobs,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    document    text NOT NULL,
    sha256      text NOT NULL,
    signature   bytea,
    signed_by   text,
    signed_at   timestamptz,
    CHECK ((signature IS NULL) = (signed_by IS NULL))
);

-- The erasure ledger: one entry per finished erasure, hash-chained (src/core/erasure_ledger.hpp).
-- The copy that matters lives outside the database (privacy.erasure_ledger_export); this table is
-- what the database knows, so that privacy.replay_erasures can tell which entries of a ledger a
-- restored database has not seen. Times are kept as the exact text that was hashed; target_id is
-- the subject id sealed under the key of the certificate sealed_by names (src/core/sealed_subject.hpp),
-- or in clear when sealed_by is NULL (a tenant purge, or no signing key was set).
CREATE TABLE privacy.erasure_ledger (
    seq           bigint PRIMARY KEY CHECK (seq > 0),
    kind          privacy.job_kind NOT NULL CHECK (kind IN ('erase', 'purge')),
    tenant_id     text NOT NULL,
    target_type   privacy.target_type NOT NULL,
    target_id     text NOT NULL,
    sealed_by     text,
    job_id        bigint NOT NULL,
    regulation    privacy.regulation NOT NULL,
    tables        text[] NOT NULL,
    requested_at  text NOT NULL,
    erased_at     text NOT NULL,
    replay_of     text,
    prev_hash     text NOT NULL,
    hash          text NOT NULL UNIQUE,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);

-- Evidence is never changed or deleted, by any role, superusers included (ENABLE ALWAYS, so
-- session_replication_role = replica does not skip it). The one change allowed is signing a
-- receipt that was issued while no signing key was set.
CREATE FUNCTION privacy._evidence_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'receipts' THEN
        IF to_jsonb(OLD)->'signature' = 'null'
           AND to_jsonb(NEW) - ARRAY['signature', 'signed_by', 'signed_at']
             = to_jsonb(OLD) - ARRAY['signature', 'signed_by', 'signed_at'] THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION '% on privacy.% is not allowed: compliance evidence is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = '42501',
              HINT = 'Receipts and the erasure ledger are never changed or deleted (docs/compliance.md).';
END
$fn$;

CREATE TRIGGER receipts_append_only BEFORE UPDATE OR DELETE ON privacy.receipts
    FOR EACH ROW EXECUTE FUNCTION privacy._evidence_guard();
CREATE TRIGGER receipts_no_truncate BEFORE TRUNCATE ON privacy.receipts
    FOR EACH STATEMENT EXECUTE FUNCTION privacy._evidence_guard();
CREATE TRIGGER erasure_ledger_append_only BEFORE UPDATE OR DELETE ON privacy.erasure_ledger
    FOR EACH ROW EXECUTE FUNCTION privacy._evidence_guard();
CREATE TRIGGER erasure_ledger_no_truncate BEFORE TRUNCATE ON privacy.erasure_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION privacy._evidence_guard();
ALTER TABLE privacy.receipts ENABLE ALWAYS TRIGGER receipts_append_only;
ALTER TABLE privacy.receipts ENABLE ALWAYS TRIGGER receipts_no_truncate;
ALTER TABLE privacy.erasure_ledger ENABLE ALWAYS TRIGGER erasure_ledger_append_only;
ALTER TABLE privacy.erasure_ledger ENABLE ALWAYS TRIGGER erasure_ledger_no_truncate;

-- Raises 22023 naming `what` unless `address` is one plain e-mail address (the rule the mailer
-- applies, src/core/smtp_message.hpp). Internal: configure_tenant checks privacy_contact with it.
CREATE FUNCTION privacy._check_mail_address(address text, what text) RETURNS void
AS 'MODULE_PATHNAME', 'privacy_check_mail_address' LANGUAGE C STRICT IMMUTABLE;

-- Sets the key that signs receipts and ledger heads (src/evidence.cpp). The key is stored where no
-- role can read it and is never returned; the certificate is kept in privacy.signing_certificates.
-- Receipts issued while no key was set are signed now.
CREATE FUNCTION privacy.set_signing_key(certificate text, private_key text,
    OUT subject text, OUT key_type text, OUT not_after timestamptz, OUT fingerprint text,
    OUT receipts_signed bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'privacy_set_signing_key'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- The signed receipt of a job, as PEM ("-----BEGIN CMS-----"):
--   psql -Atc "select privacy.receipt(42)" > receipt-42.pem
--   openssl cms -verify -inform PEM -in receipt-42.pem -CAfile signing.crt -out receipt-42.json
CREATE FUNCTION privacy.receipt(job_id bigint) RETURNS text
AS 'MODULE_PATHNAME', 'privacy_receipt'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- The erasure ledger as JSON lines, ending with a signed head line (src/core/erasure_ledger.hpp):
--   psql -Atc "select privacy.erasure_ledger_export()" > ledger-$(date +%F).jsonl
-- Audited.
CREATE FUNCTION privacy.erasure_ledger_export() RETURNS SETOF text
AS 'MODULE_PATHNAME', 'privacy_erasure_ledger_export'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- Applies again every erasure of `ledger` this database does not know (after a backup older than
-- them was restored), each as a new request, approved by the tenant's policy like any other
-- (docs/compliance.md). One row per entry it did not know: 'replayed' with the new job, or 'held'
-- when a legal hold covers it.
CREATE FUNCTION privacy.replay_erasures(ledger text, allow_unsigned boolean DEFAULT false)
RETURNS TABLE (seq bigint, entry_hash text, kind privacy.job_kind, tenant_id text, original_job bigint,
               outcome text, job_id bigint)
AS 'MODULE_PATHNAME', 'privacy_replay_erasures'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- Service levels per tenant, regulation, month of receipt (in the tenant's time zone) and kind,
-- for the requests received in [from_ts, to_ts) (docs/compliance.md, "SLA report"):
--   answered          completed or rejected: the requester got the final answer at finished_at
--   answered_on_time  answered by due_at (after extensions)
--   late              answered after due_at, or still open (pending, approved, processing,
--                     failed) past due_at
--   on_time_share     answered_on_time / (answered_on_time + late); cancelled requests and open
--                     ones not yet due count in neither
--   median_time, max_time  finished_at - requested_at of the answered requests
CREATE FUNCTION privacy.sla_report(from_ts timestamptz, to_ts timestamptz)
RETURNS TABLE (tenant_id text, regulation privacy.regulation, month date, kind privacy.job_kind,
               requests bigint, completed bigint, rejected bigint, cancelled bigint, open bigint,
               answered_on_time bigint, late bigint, on_time_share numeric,
               median_time interval, max_time interval, extensions bigint,
               items_flagged bigint, items_resolved bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL OR from_ts >= to_ts THEN
        RAISE EXCEPTION 'sla_report needs from_ts < to_ts, got [%, %)', from_ts, to_ts
            USING ERRCODE = '22023',
                  HINT = 'Pass the start (inclusive) and end (exclusive) of the period, e.g. ''2024-01-01'', ''2025-01-01''.';
    END IF;
    RETURN QUERY
    WITH received AS (
        SELECT j.*,
               date_trunc('month', j.requested_at AT TIME ZONE s.time_zone)::date AS month_of_receipt,
               j.status IN ('completed', 'rejected') AS answered,
               j.status IN ('pending', 'approved', 'processing', 'failed') AS still_open,
               CASE WHEN j.status IN ('completed', 'rejected') THEN j.finished_at - j.requested_at END AS time_taken,
               items.flagged, items.resolved
          FROM privacy.jobs j
         CROSS JOIN LATERAL privacy.tenant_settings(j.tenant_id) s
         -- An item is a row (or table) a phase flagged, however many attempts it took; it is
         -- resolved when its latest attempt is (resolved by hand, or retried and not flagged
         -- again): docs/jobs.md, "Flagged items".
         CROSS JOIN LATERAL (
             SELECT count(*) AS flagged, count(*) FILTER (WHERE latest.resolved_at IS NOT NULL) AS resolved
               FROM (SELECT DISTINCT ON (e.relation, e.phase, e.row_key) e.resolved_at
                       FROM privacy.job_errors e
                      WHERE e.job_id = j.id
                      ORDER BY e.relation, e.phase, e.row_key, e.attempt DESC) latest) items
         WHERE j.requested_at >= from_ts AND j.requested_at < to_ts),
    counted AS (
        SELECT r.tenant_id, r.regulation, r.month_of_receipt, r.kind,
               count(*) AS requests,
               count(*) FILTER (WHERE r.status = 'completed') AS completed,
               count(*) FILTER (WHERE r.status = 'rejected') AS rejected,
               count(*) FILTER (WHERE r.status = 'cancelled') AS cancelled,
               count(*) FILTER (WHERE r.still_open) AS open,
               count(*) FILTER (WHERE r.answered AND r.finished_at <= r.due_at) AS answered_on_time,
               count(*) FILTER (WHERE (r.answered AND r.finished_at > r.due_at)
                                   OR (r.still_open AND r.due_at < now())) AS late,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY r.time_taken) AS median_time,
               max(r.time_taken) AS max_time,
               sum(r.deadline_extensions)::bigint AS extensions,
               sum(r.flagged)::bigint AS items_flagged,
               sum(r.resolved)::bigint AS items_resolved
          FROM received r
         GROUP BY r.tenant_id, r.regulation, r.month_of_receipt, r.kind)
    SELECT c.tenant_id, c.regulation, c.month_of_receipt, c.kind, c.requests, c.completed, c.rejected,
           c.cancelled, c.open, c.answered_on_time, c.late,
           round(c.answered_on_time::numeric / nullif(c.answered_on_time + c.late, 0), 4),
           c.median_time, c.max_time, c.extensions, c.items_flagged, c.items_resolved
      FROM counted c
     ORDER BY c.tenant_id, c.regulation, c.month_of_receipt, c.kind;
END
$fn$;

-- Records of processing (GDPR Art. 30): which tables hold personal data, whose rows they are
-- (subject and tenant columns), what an erasure does to each column, and how long erased rows
-- stay restorable (the default, and each tenant that set its own).
CREATE VIEW privacy.records_of_processing AS
SELECT r.relation,
       c.relowner::regrole AS owner,
       r.subject_column,
       r.tenant_column,
       r.key_columns,
       r.on_erase,
       (SELECT jsonb_object_agg(a.attname,
                   jsonb_build_object('type', format_type(a.atttypid, a.atttypmod),
                                      'on_erase', CASE WHEN r.on_erase = 'delete' THEN 'deleted'
                                                       WHEN a.attname = ANY (r.key_columns) THEN 'kept (key)'
                                                       ELSE coalesce(cr.rule,
                                                                     CASE WHEN a.attname = r.subject_column
                                                                          THEN 'hash' ELSE 'keep' END)
                                                  END)
                   ORDER BY a.attnum)
          FROM pg_attribute a
          LEFT JOIN privacy.column_rules cr ON cr.relation = r.relation AND cr.column_name = a.attname
         WHERE a.attrelid = r.relation AND a.attnum > 0 AND NOT a.attisdropped
           AND a.attname <> 'privacy_erased_by') AS columns,
       current_setting('privacy.recovery_window')::interval AS recovery_window,
       (SELECT coalesce(jsonb_object_agg(t.tenant_id, t.recovery_window ORDER BY t.tenant_id), '{}')
          FROM privacy.tenants t WHERE t.recovery_window IS NOT NULL) AS tenant_recovery_windows,
       (SELECT count(*) FROM privacy.registered_partitions p WHERE p.registered_table = r.relation) AS partitions,
       r.registered_by,
       r.registered_at
  FROM privacy.registered_tables r
  JOIN pg_class c ON c.oid = r.relation;

REVOKE ALL ON privacy.signing_key FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy._evidence_guard(), privacy._check_mail_address(text, text),
                       privacy.set_signing_key(text, text), privacy.receipt(bigint),
                       privacy.erasure_ledger_export(), privacy.replay_erasures(text, boolean),
                       privacy.sla_report(timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.set_signing_key(text, text), privacy.erasure_ledger_export(),
                          privacy.replay_erasures(text, boolean) TO privacy_admin;
GRANT EXECUTE ON FUNCTION privacy.receipt(bigint), privacy.sla_report(timestamptz, timestamptz)
    TO privacy_admin, privacy_auditor;
GRANT SELECT ON privacy.records_of_processing, privacy.receipts, privacy.signing_certificates,
                privacy.installation TO privacy_auditor;
-- Encrypted exports (DESIGN section 9, docs/exports.md): recipients, download, test hook.
-- The export job itself is C++ (src/export.cpp); expiry is a launcher step.

-- What we show about a recipient certificate, or a 22023 error saying what is wrong with it.
-- Internal.
CREATE FUNCTION privacy._inspect_certificate(certificate text,
    OUT subject text, OUT not_after timestamptz, OUT key_type text, OUT fingerprint text)
RETURNS record
AS 'MODULE_PATHNAME', 'privacy_inspect_certificate' LANGUAGE C STRICT STABLE;

-- Adds a certificate whose key can open export files. A removed recipient's name may be reused.
CREATE FUNCTION privacy.add_export_recipient(name text, certificate text)
RETURNS TABLE (recipient text, subject text, key_type text, not_after timestamptz, fingerprint text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    info      record;
    existing  privacy.export_recipients;
    twin      text;
BEGIN
    IF add_export_recipient.name IS NULL OR btrim(add_export_recipient.name) = '' THEN
        RAISE EXCEPTION 'export recipient name must not be empty'
            USING ERRCODE = '22023', HINT = 'Pass a short name for the key holder, such as ''dpo-2026''.';
    END IF;
    IF add_export_recipient.certificate IS NULL THEN
        RAISE EXCEPTION 'certificate of export recipient "%" must not be NULL', add_export_recipient.name
            USING ERRCODE = '22023',
                  HINT = 'Pass the PEM text of an X.509 certificate (-----BEGIN CERTIFICATE----- ...); see docs/exports.md.';
    END IF;
    SELECT * INTO info FROM privacy._inspect_certificate(add_export_recipient.certificate) AS i;

    SELECT * INTO existing FROM privacy.export_recipients r
     WHERE r.name = add_export_recipient.name FOR UPDATE;
    IF FOUND AND existing.active THEN
        RAISE EXCEPTION 'export recipient "%" already exists', add_export_recipient.name
            USING ERRCODE = '42710',
                  DETAIL = format('It was added by %s at %s.', existing.added_by, existing.added_at),
                  HINT = format('Choose another name, or first remove it with privacy.remove_export_recipient(%L).',
                                add_export_recipient.name);
    END IF;
    SELECT r.name INTO twin FROM privacy.export_recipients r
     WHERE r.active AND r.fingerprint = info.fingerprint;
    IF FOUND THEN
        RAISE EXCEPTION 'this certificate is already export recipient "%"', twin
            USING ERRCODE = '42710', DETAIL = format('SHA-256 fingerprint %s.', info.fingerprint),
                  HINT = 'Each active recipient needs its own certificate.';
    END IF;

    IF existing.name IS NOT NULL THEN  -- a removed recipient: reuse its name
        UPDATE privacy.export_recipients r
           SET certificate = add_export_recipient.certificate, fingerprint = info.fingerprint,
               added_by = session_user, added_at = now(), active = true,
               removed_by = NULL, removed_at = NULL
         WHERE r.name = add_export_recipient.name;
    ELSE
        INSERT INTO privacy.export_recipients AS r (name, certificate, fingerprint, added_by, added_at)
        VALUES (add_export_recipient.name, add_export_recipient.certificate, info.fingerprint, session_user, now())
        ON CONFLICT ON CONSTRAINT export_recipients_pkey DO NOTHING;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'export recipient "%" already exists', add_export_recipient.name
                USING ERRCODE = '42710', HINT = 'Another session added it just now; choose another name.';
        END IF;
    END IF;

    PERFORM privacy._audit('recipient_added', NULL, NULL, add_export_recipient.name, 'ok',
        jsonb_build_object('fingerprint', info.fingerprint, 'key_type', info.key_type,
                           'not_after', info.not_after));
    RETURN QUERY SELECT add_export_recipient.name, info.subject, info.key_type, info.not_after, info.fingerprint;
END
$fn$;

-- Stops encrypting new exports to a recipient. Files already made stay readable by its key.
CREATE FUNCTION privacy.remove_export_recipient(name text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    removed  privacy.export_recipients;
BEGIN
    UPDATE privacy.export_recipients r
       SET active = false, removed_by = session_user, removed_at = now()
     WHERE r.name = remove_export_recipient.name AND r.active
    RETURNING * INTO removed;
    IF NOT FOUND THEN
        SELECT * INTO removed FROM privacy.export_recipients r WHERE r.name = remove_export_recipient.name;
        IF FOUND THEN
            RAISE EXCEPTION 'export recipient "%" was already removed', remove_export_recipient.name
                USING ERRCODE = '55000',
                      DETAIL = format('It was removed by %s at %s.', removed.removed_by, removed.removed_at);
        END IF;
        RAISE EXCEPTION 'export recipient "%" does not exist', remove_export_recipient.name
            USING ERRCODE = '22023',
                  HINT = 'The active recipients are: SELECT name FROM privacy.export_recipients WHERE active;';
    END IF;
    PERFORM privacy._audit('recipient_removed', NULL, NULL, removed.name, 'ok',
        jsonb_build_object('fingerprint', removed.fingerprint));
    IF NOT EXISTS (SELECT FROM privacy.export_recipients r WHERE r.active) THEN
        RAISE NOTICE 'no active export recipient remains: export requests are refused until one is added'
            USING HINT = 'Add one with privacy.add_export_recipient(name, certificate).';
    END IF;
END
$fn$;

-- The encrypted file of an export job as PEM ("-----BEGIN CMS-----"), streamed: one row per
-- stored chunk, each a run of whole lines without the last newline, so that
-- psql -Atc "select privacy.download_export(42)" > export-42.pem writes the file. Audited.
CREATE FUNCTION privacy.download_export(job_id bigint) RETURNS SETOF text
AS 'MODULE_PATHNAME', 'privacy_download_export'
LANGUAGE C STRICT VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- The same bytes as DER, one bytea per stored chunk, in order. Audited.
CREATE FUNCTION privacy.export_chunks(job_id bigint) RETURNS SETOF bytea
AS 'MODULE_PATHNAME', 'privacy_export_chunks'
LANGUAGE C STRICT VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

REVOKE ALL ON FUNCTION privacy._inspect_certificate(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy.add_export_recipient(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy.remove_export_recipient(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy.download_export(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy.export_chunks(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.add_export_recipient(text, text) TO privacy_admin;
GRANT EXECUTE ON FUNCTION privacy.remove_export_recipient(text) TO privacy_admin;
GRANT EXECUTE ON FUNCTION privacy.download_export(bigint) TO privacy_admin;
GRANT EXECUTE ON FUNCTION privacy.export_chunks(bigint) TO privacy_admin;
-- Notifications (src/notify.cpp, docs/notifications.md).

-- Test hook, superuser only: sends the event of job_id's current row as a change from old_status
-- to new_status (pg_notify + e-mail rules) and returns the JSON payload. Not part of the API.
CREATE FUNCTION privacy._notify_job_event(job_id bigint, old_status text, new_status text)
RETURNS text
AS 'MODULE_PATHNAME', 'privacy_notify_job_event' LANGUAGE C VOLATILE;
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
-- Privileges (DESIGN section 4). Nothing is executable by PUBLIC; each role gets exactly its
-- functions. Tables are read-only to the roles: every write goes through the extension.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA privacy FROM PUBLIC;
REVOKE ALL ON ALL PROCEDURES IN SCHEMA privacy FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA privacy FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA privacy FROM PUBLIC;

GRANT USAGE ON SCHEMA privacy TO privacy_admin, privacy_requester, privacy_auditor;
GRANT privacy_requester TO privacy_admin;

-- Administrators read every table and view except the audit chain heads and export bytes.
GRANT SELECT ON ALL TABLES IN SCHEMA privacy TO privacy_admin;
REVOKE SELECT ON privacy.export_file_chunks FROM privacy_admin;
-- The 'hash' rule's secret (40_registry.sql) and the receipt signing key (77_compliance.sql) are
-- readable by no role at all.
REVOKE ALL ON privacy.installation_secret, privacy.signing_key FROM privacy_admin;
-- Auditors read the trail.
GRANT SELECT ON privacy.audit_log, privacy.audit_chains TO privacy_auditor;

GRANT EXECUTE ON FUNCTION privacy.worker_status() TO privacy_admin, privacy_auditor;
GRANT EXECUTE ON FUNCTION privacy.configure_tenant(text, text, integer, integer, interval, interval,
                                                   interval, interval, privacy.job_kind[], boolean, text,
                                                   privacy.regulation, text, text)
    TO privacy_admin;
GRANT EXECUTE ON FUNCTION privacy.tenant_settings(text) TO privacy_admin;
