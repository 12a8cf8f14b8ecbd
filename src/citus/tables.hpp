// Registered tables on Citus (docs/citus.md, "Distributed and reference tables"): what keeps the
// erased rows of a distributed or reference table hidden on every shard placement, whatever
// Citus does to the table afterwards.
//
//  * The hide policy is always RESTRICTIVE. Citus re-creates policies on shards from its own
//    deparser, which drops AS RESTRICTIVE; a utility hook on every node turns any CREATE POLICY
//    privacy_hide_erased into a restrictive one as it runs, so a shard built by
//    create_distributed_table, a move, a copy, a split, a rebalance or alter_distributed_table
//    never exists with a permissive one.
//  * The coordinator verifies and repairs: a launcher step checks every placement of every
//    registered Citus table (the policy, row level security, the column privacy_erased_by),
//    repairs what it can and audits it (citus_repaired); it also empties the coordinator's shell
//    table of rows create_distributed_table left behind, which no erasure would reach.
//  * alter_distributed_table replaces a table by a new one (new OID) in one transaction; the
//    registration follows the table from the old to the new one.
#pragma once

#include "pg/pg_headers.hpp"

#include <optional>
#include <string>

namespace privacy::citus_tables {

// The policy registration creates on every registered relation (data/softdelete.cpp).
inline constexpr const char* kHidePolicy = "privacy_hide_erased";

// Whether `relation` is a Citus distributed, reference or Citus-local table (false without
// Citus). Needs SPI.
bool is_citus_table(Oid relation);

// Whether `relation` is a hash-distributed Citus table distributed by `column` (false without
// Citus). Needs SPI.
bool distributed_by(Oid relation, const std::string& column);

// Installs the utility hook that keeps privacy_hide_erased restrictive (from _PG_init).
void install_restrictive_policy_hook();

// The launcher's step "Citus placements": checks (and repairs) registered Citus tables when
// their placements changed, and at least every minute. Does nothing without Citus. Needs SPI.
void verify_citus_tables();

// Registration of a table Citus distributes (no-op elsewhere): refuses (0A000) an append- or
// range-distributed table, a hash-distributed table whose distribution column is neither the
// tenant nor the subject column (no batch could be routed to one shard), one distributed by its
// subject column with on_erase 'anonymize' (anonymizing rewrites the subject, and Citus lets no
// row change its distribution column), and a table with restrictive policies of its own (Citus
// would re-create them permissive on the shards, widening access). `table` is its name for
// messages. Needs SPI.
void require_registrable_on_citus(Oid relid, const std::string& table,
                                  const std::string& subject_column,
                                  const std::optional<std::string>& tenant_column,
                                  const std::string& on_erase);

// Verifies every registered Citus table (and repairs what it can); returns the problems that
// are left, one line per table and placement, empty when everything is safe. A table whose
// placements are still wrong after the repair is listed in privacy.citus_unverified until it
// verifies again. Needs SPI.
std::string verify_and_repair();

// Before a job writes to `relation` (`display`, its name): refuses (55000) while its Citus
// placements failed verification and could not be repaired (privacy.citus_unverified), naming
// the table and what is wrong: erased rows might not be hidden there. `what` names the job.
// Does nothing without Citus. Needs SPI.
void require_verified(Oid relation, const std::string& display, const std::string& what);

// Inside a batch's subtransaction, when Citus is installed: lock_timeout for the shards too.
// PostgreSQL's own setting (set for the batch with set_config_option) stays on this node; Citus
// forwards only SET LOCAL statements run through its utility hook with
// citus.propagate_set_commands = 'local', to the connections of the transaction and to those it
// opens later. Both revert with the subtransaction on this node and in Citus's list of settings
// to replay; the workers keep it until the batch's transaction ends, right after.
void send_lock_timeout_to_shards(int lock_timeout_ms);

// sql_drop of a registered table while Citus is installed: keeps its registration for this
// transaction, so that alter_distributed_table's rename of the replacement can take it over.
void remember_dropped_registration(Oid relation, const std::string& schema,
                                   const std::string& name);

// ddl_command_end of ALTER TABLE ... RENAME of `relation`: when it now bears the name of a
// registered Citus table dropped earlier in this transaction (alter_distributed_table), and
// carries what registration added, the registration moves to it (audited table_reattached).
void reattach_renamed_table(Oid relation);

}  // namespace privacy::citus_tables
