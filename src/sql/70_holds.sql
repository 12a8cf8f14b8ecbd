-- Legal holds (docs/legal-holds.md): placing and releasing holds, the
-- enforcement triggers (C++, src/holds/trigger.cpp) and the DROP TABLE guard.

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
    block_updates  boolean DEFAULT true,
    on_behalf_of   text DEFAULT NULL)
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
    -- A table hold (no tenant) is for platform-wide admins only.
    PERFORM privacy._require_tenant_scope(hold_tenant, 'decide', 'privacy.place_hold');
    PERFORM privacy._check_on_behalf_of(on_behalf_of);

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
                                     expires_at, block_updates, placed_on_behalf_of)
    VALUES (scope, held_id, table_oid, hold_tenant, reason, session_user, now(), expires_at, block_updates,
            on_behalf_of)
    RETURNING id INTO new_id;
    -- On Citus, to every worker node in this transaction (docs/citus.md, "Legal holds").
    PERFORM privacy._replicate_hold(new_id);

    -- Enforcement commits with the hold: the triggers on every table it covers (also tables
    -- registered since the loop above: the registered tables are listed again, latest snapshot).
    PERFORM privacy._sync_hold_triggers(table_oid, true);

    PERFORM privacy._audit('hold_placed', hold_tenant, NULL, 'hold ' || new_id, 'ok',
        jsonb_build_object('hold_id', new_id, 'scope', scope, 'scope_id', held_id,
                           'reason', reason, 'expires_at', expires_at, 'block_updates', block_updates)
        || privacy._on_behalf_of_detail(on_behalf_of));
    RETURN new_id;
END
$fn$;

-- Releases an active hold; the data it protected may then be erased again.
CREATE FUNCTION privacy.release_hold(hold_id bigint, reason text, on_behalf_of text DEFAULT NULL)
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
    PERFORM privacy._require_tenant_scope(hold.tenant_id, 'decide', 'privacy.release_hold');
    PERFORM privacy._check_on_behalf_of(on_behalf_of);
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
           release_reason = release_hold.reason, released_on_behalf_of = release_hold.on_behalf_of
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
                           'reason', reason) || privacy._on_behalf_of_detail(on_behalf_of));
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

REVOKE ALL ON FUNCTION privacy.place_hold(privacy.hold_scope, text, text, text, timestamptz, boolean, text),
                       privacy.release_hold(bigint, text, text),
                       privacy._attach_hold_triggers(regclass, name, name),
                       privacy._detach_hold_triggers(regclass),
                       privacy._sync_hold_triggers(regclass, boolean), privacy._expire_holds(),
                       privacy._hold_guard(), privacy._hold_guard_truncate(), privacy._holds_changed(),
                       privacy._hold_drop_guard()
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.place_hold(privacy.hold_scope, text, text, text, timestamptz, boolean, text),
                          privacy.release_hold(bigint, text, text)
    TO privacy_admin;
