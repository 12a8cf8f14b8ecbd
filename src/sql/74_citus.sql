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

-- Registered Citus tables whose placements failed verification and could not be repaired
-- (docs/citus.md, "What is refused"): a row per table, written by privacy.citus_verify() and the
-- launcher's Citus step, removed when the table verifies again. No job writes to a table listed
-- here. Derived state: left out of dumps (the launcher verifies every table after a start).
CREATE TABLE privacy.citus_unverified (
    relation    regclass PRIMARY KEY,
    problems    text NOT NULL,
    since       timestamptz NOT NULL DEFAULT pg_catalog.now()
);
REVOKE ALL ON privacy.citus_unverified FROM PUBLIC;

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
