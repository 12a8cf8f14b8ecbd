-- Encrypted exports (docs/exports.md): recipients, download, test hook.
-- The export job itself is C++ (src/export/export.cpp); expiry is a launcher step.

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
    PERFORM privacy._require_tenant_scope(NULL, NULL, 'privacy.add_export_recipient');  -- platform-wide only
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
    PERFORM privacy._require_tenant_scope(NULL, NULL, 'privacy.remove_export_recipient');  -- platform-wide only
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
