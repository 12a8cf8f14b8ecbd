-- Registration, soft-delete through row-level security, restore (docs/soft-delete.md).
-- docs/soft-delete.md explains the model; src/data/registry.cpp, data/softdelete.cpp and data/batch.cpp do it.

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

-- Announces every change of a registration: a relcache invalidation of the table at commit, so
-- that every backend drops its cached description of it (src/data/description_cache.cpp; job
-- batches read it from there). A trigger, so that no writer of these tables can forget it.
-- ALWAYS: replica-mode changes count too.
CREATE FUNCTION privacy._registration_changed() RETURNS trigger
AS 'MODULE_PATHNAME', 'privacy_registration_changed' LANGUAGE C;
REVOKE ALL ON FUNCTION privacy._registration_changed() FROM PUBLIC;
CREATE TRIGGER registered_tables_changed
    AFTER INSERT OR UPDATE OR DELETE ON privacy.registered_tables
    FOR EACH ROW EXECUTE FUNCTION privacy._registration_changed();
CREATE TRIGGER registered_tables_truncated
    AFTER TRUNCATE ON privacy.registered_tables
    FOR EACH STATEMENT EXECUTE FUNCTION privacy._registration_changed();
CREATE TRIGGER column_rules_changed
    AFTER INSERT OR UPDATE OR DELETE ON privacy.column_rules
    FOR EACH ROW EXECUTE FUNCTION privacy._registration_changed();
CREATE TRIGGER column_rules_truncated
    AFTER TRUNCATE ON privacy.column_rules
    FOR EACH STATEMENT EXECUTE FUNCTION privacy._registration_changed();
ALTER TABLE privacy.registered_tables ENABLE ALWAYS TRIGGER registered_tables_changed;
ALTER TABLE privacy.registered_tables ENABLE ALWAYS TRIGGER registered_tables_truncated;
ALTER TABLE privacy.column_rules ENABLE ALWAYS TRIGGER column_rules_changed;
ALTER TABLE privacy.column_rules ENABLE ALWAYS TRIGGER column_rules_truncated;
