-- Self-service intake (docs/jobs.md, "Self-service requests"). An application calls
-- privacy.submit_subject_request for its logged-in user, through a role that is a member of
-- privacy_intake. The tenant and the subject come from the settings the application already
-- sets for that user (privacy.intake_tenant_setting, default 'app.tenant', and the tenant's
-- intake_subject_setting, else privacy.intake_subject_setting, default 'app.user_id'), never
-- from arguments: a user can only ask about themselves. Verifying who the user is stays the
-- application's job. At most privacy.intake_max_requests per subject per 24 hours (PV002).
CREATE FUNCTION privacy.submit_subject_request(kind text, reason text DEFAULT NULL, notify_email text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    tenant_setting   text := current_setting('privacy.intake_tenant_setting');
    subject_setting  text;
    tenant           text;
    subject          text;
    person           text;
    recent           bigint;
    allowed          integer := current_setting('privacy.intake_max_requests')::integer;
    why              text := coalesce(nullif(btrim(reason), ''), 'self-service request of the data subject');
BEGIN
    IF kind IS NULL OR kind NOT IN ('export', 'erase', 'restrict') THEN
        RAISE EXCEPTION 'a self-service request is ''export'', ''erase'' or ''restrict'', not %',
                coalesce(quote_literal(kind), 'NULL')
            USING ERRCODE = '22023',
                  HINT = 'Pass the kind the user asked for, e.g. privacy.submit_subject_request(''export'').';
    END IF;
    tenant := nullif(btrim(current_setting(tenant_setting, true)), '');
    IF tenant IS NULL THEN
        RAISE EXCEPTION 'no tenant for a self-service request: setting "%" is not set in this session', tenant_setting
            USING ERRCODE = '55000',
                  HINT = format('The application sets it for its logged-in user, as for its row-level security: SET %s = ''...''. '
                                || 'privacy.intake_tenant_setting names the setting.', tenant_setting);
    END IF;
    SELECT coalesce(t.intake_subject_setting, current_setting('privacy.intake_subject_setting'))
      INTO subject_setting
      FROM (SELECT) AS one LEFT JOIN privacy.tenants t ON t.tenant_id = tenant;
    subject := nullif(btrim(current_setting(subject_setting, true)), '');
    IF subject IS NULL THEN
        RAISE EXCEPTION 'no subject for a self-service request of tenant "%": setting "%" is not set in this session',
                tenant, subject_setting
            USING ERRCODE = '55000',
                  HINT = format('The application sets it to its logged-in user''s id: SET %s = ''...''. '
                                || 'privacy.configure_tenant(%L, intake_subject_setting => ...) names another setting.',
                                subject_setting, tenant);
    END IF;
    person := 'subject:' || subject;

    -- One subject's requests are counted one at a time, so concurrent calls cannot both pass.
    PERFORM pg_advisory_xact_lock(hashtextextended('privacy.intake/' || tenant || '/' || subject, 0));
    SELECT count(*) INTO recent
      FROM privacy.jobs j
     WHERE j.tenant_id = tenant AND j.target_type = 'subject' AND j.target_id = subject
       AND j.requested_on_behalf_of = person AND j.requested_at > now() - interval '24 hours';
    IF recent >= allowed THEN
        RAISE EXCEPTION 'too many self-service requests for this subject of tenant "%": % in the last 24 hours',
                tenant, recent
            USING ERRCODE = 'PV002',
                  DETAIL = format('privacy.intake_max_requests allows %s per subject per 24 hours.', allowed),
                  HINT = 'Tell the user to try again later; their earlier requests are being answered.';
    END IF;

    RETURN CASE kind
        WHEN 'export' THEN privacy.request_export(tenant, subject, why, notify_email, NULL, person)
        WHEN 'erase' THEN privacy.request_erase(tenant, subject, why, notify_email, NULL, person)
        ELSE privacy.request_restrict(tenant, subject, why, notify_email, NULL, person)
    END;
END
$fn$;

REVOKE ALL ON FUNCTION privacy.submit_subject_request(text, text, text) FROM PUBLIC;
GRANT USAGE ON SCHEMA privacy TO privacy_intake;
GRANT EXECUTE ON FUNCTION privacy.submit_subject_request(text, text, text) TO privacy_intake;
