-- Configuration and state tables (docs/architecture.md, "Data model"). Every one of them is an
-- extension configuration table (see 90_config_dump.sql), so pg_dump keeps its rows.

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
-- DETACH PARTITION (the DDL guard, src/data/ddl_guard.cpp) and with the table's registration.
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
    -- The setting holding the logged-in user's subject id, for self-service requests
    -- (privacy.submit_subject_request; NULL: privacy.intake_subject_setting).
    intake_subject_setting text CHECK (intake_subject_setting ~ '^[A-Za-z_][A-Za-z0-9_$]*\.[A-Za-z_][A-Za-z0-9_$.]*$'),
    -- Load-aware pacing of its jobs (docs/performance.md, "Pacing"): privacy.cost_limit and
    -- privacy.cost_delay for this tenant; cost_delay 0 turns pacing off.
    cost_limit           integer CHECK (cost_limit BETWEEN 1 AND 1000000),
    cost_delay           interval CHECK (cost_delay BETWEEN interval '0' AND interval '100 ms'),
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
    -- The humans behind the database roles (on_behalf_of of the request and of the decision),
    -- as the application that called says; NULL: the database role acted for itself.
    requested_on_behalf_of  text,
    decided_on_behalf_of    text,
    -- A restriction (kind 'restrict') ends when lifted (privacy.lift_restriction).
    lifted_at          timestamptz,
    lifted_by          text,
    lifted_on_behalf_of text,
    -- Load-aware pacing (docs/performance.md, "Pacing"): naps taken for the cost of the job's
    -- batches (request and finalization), and their total length.
    cost_naps          bigint NOT NULL DEFAULT 0,
    cost_napped        interval NOT NULL DEFAULT interval '0',
    CHECK (target_type = 'subject' OR kind = 'purge'),
    CHECK (finalization IS NULL OR kind = 'erase'),
    CHECK (processed_items >= 0 AND failed_items >= 0),
    CONSTRAINT jobs_lifted_only_when_restrict CHECK (lifted_at IS NULL OR kind::text = 'restrict')  -- text: docs/upgrading.md
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

-- Legal holds (docs/legal-holds.md). scope_id is the tenant id, the subject id, or the table's name
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
    placed_on_behalf_of    text,   -- the humans behind created_by / released_by (on_behalf_of)
    released_on_behalf_of  text,
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

-- The audit trail (docs/audit.md): one hash chain per tenant, '' is the platform chain.
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

-- Outbox of e-mails (docs/notifications.md).
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
