-- Compliance evidence (docs/compliance.md): the installation's identity, the receipt signing key,
-- receipts, the erasure ledger and its replay, the SLA report and the records of processing.
-- The C++ lives in src/compliance/receipts.cpp (receipts, signing key), src/compliance/erasure_ledger.cpp and
-- src/compliance/deadlines.cpp (deadlines, their notices).

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

-- Sets the key that signs receipts and ledger heads (src/compliance/receipts.cpp). The key is stored where no
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
         CROSS JOIN LATERAL privacy._tenant_settings(j.tenant_id) s
         -- An item is a row (or table) a phase flagged, however many attempts it took; it is
         -- resolved when its latest attempt is (resolved by hand, or retried and not flagged
         -- again): docs/jobs.md, "Flagged items".
         CROSS JOIN LATERAL (
             SELECT count(*) AS flagged, count(*) FILTER (WHERE latest.resolved_at IS NOT NULL) AS resolved
               FROM (SELECT DISTINCT ON (e.relation, e.phase, e.row_key) e.resolved_at
                       FROM privacy.job_errors e
                      WHERE e.job_id = j.id
                      ORDER BY e.relation, e.phase, e.row_key, e.attempt DESC) latest) items
         CROSS JOIN privacy.tenant_scope() scope   -- a scoped role: its tenants (docs/security.md)
         WHERE j.requested_at >= from_ts AND j.requested_at < to_ts
           AND (scope.platform_wide OR j.tenant_id = ANY (scope.tenants))),
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
-- stay restorable (the default, and each tenant that set its own). The view reads the tables as
-- its owner: a tenant-scoped role sees the recovery windows of its own tenants only (the tables
-- and their rules are the platform's, the same for every tenant; docs/security.md).
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
          FROM privacy.tenants t, privacy.tenant_scope() scope   -- a scoped role: its tenants
         WHERE t.recovery_window IS NOT NULL
           AND (scope.platform_wide OR t.tenant_id = ANY (scope.tenants))) AS tenant_recovery_windows,
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
