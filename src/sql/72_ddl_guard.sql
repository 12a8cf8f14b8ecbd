-- The DDL guard of registered tables (docs/soft-delete.md, "Registration and the tamper guard";
-- src/data/ddl_guard.cpp): one function behind three event triggers.
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
