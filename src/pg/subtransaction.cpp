#include "pg/subtransaction.hpp"

#include "pg/boundary.hpp"

#include <exception>
#include <string>

namespace privacy::pg {

std::optional<core::Error> run_in_subtransaction(const std::function<void()>& fn) {
  MemoryContext caller_context = CurrentMemoryContext;
  ResourceOwner caller_owner = CurrentResourceOwner;
  pg_guard([] { BeginInternalSubTransaction(nullptr); });
  // The subtransaction starts in its own memory context; the work allocates in the caller's
  // so that what it returns survives the release.
  MemoryContextSwitchTo(caller_context);

  std::optional<core::Error> failure;
  try {
    fn();
  } catch (const core::Error& error) {
    failure = error;
  } catch (const std::exception& error) {
    failure = core::Error(core::sqlstate::kInternalError, error.what());
  } catch (...) {
    failure =
        core::Error(core::sqlstate::kInternalError, "unknown C++ exception in subtransaction");
  }

  if (!failure) {
    pg_guard([] { ReleaseCurrentSubTransaction(); });
  } else {
    // pg_guard already copied and flushed the PostgreSQL error; rolling back the subtransaction
    // releases its locks, buffers and snapshots, as PL/pgSQL does after a caught error.
    pg_guard([] { RollbackAndReleaseCurrentSubTransaction(); });
  }
  MemoryContextSwitchTo(caller_context);
  CurrentResourceOwner = caller_owner;
  return failure;
}

}  // namespace privacy::pg
