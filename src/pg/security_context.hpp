// Under which identity and with which search_path the extension's work runs
// (docs/security.md, "Under which identity code runs"). Two scopes, both RAII:
//
//  * PinnedSearchPath: search_path = pg_catalog, pg_temp for the lifetime of the object, at a
//    GUC nest level of its own (the way a function's SET clause does it). Every unit of work
//    starts with one: a launcher step's transaction, each transaction of a job worker and of
//    CALL privacy.run_job, the SPI work of a C trigger. Nothing the caller's session, its
//    database or its role settings put on the path can then capture a name the extension uses.
//
//  * TableOwnerScope: runs a statement on an application table as that table's owner, the way
//    PostgreSQL runs other people's code in maintenance commands (REFRESH MATERIALIZED VIEW,
//    VACUUM, CREATE INDEX): a security-restricted operation, row-level security of the owner's
//    own tables not forced (SECURITY_NOFORCE_RLS, as foreign-key checks do it), search_path
//    pinned, and every setting the owner's code changed rolled back at the end. A trigger, an
//    index expression or a domain check of the table thus runs with exactly its owner's rights.
//
// Both may be destroyed after PostgreSQL itself has ended the (sub)transaction they were made in
// (an abort restores the user id and pops GUC nest levels): they then do nothing.
#pragma once

#include "pg/pg_headers.hpp"

#include <string>

namespace privacy::pg {

// The search_path of every unit of work.
inline constexpr const char* kPinnedSearchPath = "pg_catalog, pg_temp";

// Which (sub)transaction a scope was made in: when that one has ended, PostgreSQL has already
// restored what the scope changed, and the scope must not touch anything.
struct TransactionMark {
  LocalTransactionId transaction;
  SubTransactionId subtransaction;
  static TransactionMark current();
  bool is_current() const;
};

class PinnedSearchPath {
 public:
  // How leaving the scope treats settings changed inside it at its level:
  //  KeepLocalSettings  like leaving a function with a SET clause: SET LOCAL values stay for the
  //                     rest of the transaction (the batch loop's synchronous_commit);
  //  DiscardAll         like an abort of the level: everything set inside is undone (used for
  //                     table owners' code, and on the way out after an error).
  enum class Exit { KeepLocalSettings, DiscardAll };

  explicit PinnedSearchPath(Exit exit = Exit::KeepLocalSettings);
  ~PinnedSearchPath();
  PinnedSearchPath(const PinnedSearchPath&) = delete;
  PinnedSearchPath& operator=(const PinnedSearchPath&) = delete;

  // Sets another setting for the lifetime of this scope (restored with the path).
  void set(const char* name, const std::string& value);

  // Leaving because of an error: discard whatever was set inside.
  void discard_on_exit() { exit_ = Exit::DiscardAll; }

 private:
  int nest_level_ = 0;
  Exit exit_;
  TransactionMark made_in_;
};

class TableOwnerScope {
 public:
  explicit TableOwnerScope(Oid relation);
  ~TableOwnerScope() = default;  // members: the settings go first, then the user id
  TableOwnerScope(const TableOwnerScope&) = delete;
  TableOwnerScope& operator=(const TableOwnerScope&) = delete;

  // Sets a setting for the statement (restored at the end of the scope), e.g. lock_timeout.
  void set(const char* name, const std::string& value) { settings_.set(name, value); }

 private:
  // Switches to the owner for its lifetime and back at the end.
  class AsOwner {
   public:
    explicit AsOwner(Oid relation);
    ~AsOwner();
    AsOwner(const AsOwner&) = delete;
    AsOwner& operator=(const AsOwner&) = delete;

   private:
    Oid saved_user_ = InvalidOid;
    int saved_context_ = 0;
    TransactionMark made_in_;
  };

  AsOwner owner_;
  PinnedSearchPath settings_;
};

// This session's client address as host(inet_client_addr()) prints it, palloc'd; nullptr where
// that is NULL (a local socket, a background worker). What the audit trail records as client_addr,
// for a session's own rows (audit::append) and for the rows queued for it (hold_blocked).
// PostgreSQL calls only: run it under pg_guard from C++.
char* client_host();

}  // namespace privacy::pg
