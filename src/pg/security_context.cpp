#include "pg/security_context.hpp"

#include "pg/boundary.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "storage/proc.h"
#include "utils/guc.h"
#include "utils/syscache.h"
}

namespace privacy::pg {

TransactionMark TransactionMark::current() {
  return TransactionMark{MyProc->lxid, GetCurrentSubTransactionId()};
}

bool TransactionMark::is_current() const {
  return IsTransactionState() && transaction == MyProc->lxid &&
         subtransaction == GetCurrentSubTransactionId();
}

// ----- PinnedSearchPath ----------------------------------------------------------------------

PinnedSearchPath::PinnedSearchPath(Exit exit) : exit_(exit), made_in_(TransactionMark::current()) {
  nest_level_ = pg_guard([] { return NewGUCNestLevel(); });
  try {
    set("search_path", kPinnedSearchPath);
  } catch (...) {
    int level = nest_level_;
    pg_guard([&] { AtEOXact_GUC(false, level); });
    throw;
  }
}

void PinnedSearchPath::set(const char* name, const std::string& value) {
  pg_guard([&] {
    (void)set_config_option(name, value.c_str(), PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true,
                            0, false);
  });
}

// Pops this scope's nest level, and with it every level opened inside it, unless the
// (sub)transaction it was made in has ended: its end popped the level already, and popping a
// level that no longer exists would corrupt PostgreSQL's count of nest levels (guc.c,
// AtEOXact_GUC). A destructor cannot throw: an error here (none is known) is logged away.
PinnedSearchPath::~PinnedSearchPath() {
  if (!made_in_.is_current()) return;
  bool keep_local_settings = exit_ == Exit::KeepLocalSettings;
  int level = nest_level_;
  MemoryContext context = CurrentMemoryContext;
  PG_TRY();
  { AtEOXact_GUC(keep_local_settings, level); }
  PG_CATCH();
  {
    MemoryContextSwitchTo(context);
    FlushErrorState();
  }
  PG_END_TRY();
}

// ----- TableOwnerScope -----------------------------------------------------------------------

namespace {

Oid owner_of(Oid relation) {
  return pg_guard([&] {
    HeapTuple tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relation));
    if (!HeapTupleIsValid(tuple)) {
      ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                      errmsg("relation with OID %u does not exist", relation)));
    }
    Oid owner = reinterpret_cast<Form_pg_class>(GETSTRUCT(tuple))->relowner;
    ReleaseSysCache(tuple);
    return owner;
  });
}

}  // namespace

// The flags are those PostgreSQL uses for other people's code: SECURITY_RESTRICTED_OPERATION
// (no SET ROLE, no temporary objects, no session state that outlives the operation) and
// SECURITY_NOFORCE_RLS, with which check_enable_rls() treats the owner as if the table did not
// FORCE row-level security, so the statement sees every row of the owner's own tables (erased
// ones too) while every other role and the owner outside the scope stay subject to the policies.
TableOwnerScope::AsOwner::AsOwner(Oid relation) : made_in_(TransactionMark::current()) {
  Oid owner = owner_of(relation);
  GetUserIdAndSecContext(&saved_user_, &saved_context_);
  SetUserIdAndSecContext(owner, saved_context_ | SECURITY_LOCAL_USERID_CHANGE |
                                    SECURITY_RESTRICTED_OPERATION | SECURITY_NOFORCE_RLS);
}

TableOwnerScope::AsOwner::~AsOwner() {
  if (made_in_.is_current()) SetUserIdAndSecContext(saved_user_, saved_context_);
}

TableOwnerScope::TableOwnerScope(Oid relation)
    : owner_(relation), settings_(PinnedSearchPath::Exit::DiscardAll) {}

char* client_host() {
  LOCAL_FCINFO(call, 0);
  InitFunctionCallInfoData(*call, nullptr, 0, InvalidOid, nullptr, nullptr);
  Datum address = inet_client_addr(call);
  if (call->isnull) return nullptr;
  return TextDatumGetCString(DirectFunctionCall1(network_host, address));
}

}  // namespace privacy::pg
