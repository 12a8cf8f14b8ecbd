// Running a piece of C++ work inside a PostgreSQL subtransaction, so that a failure undoes only
// that piece and the surrounding transaction goes on (the batch operations isolate a failing row
// this way, like a PL/pgSQL EXCEPTION block).
#pragma once

#include "core/error.hpp"

#include <functional>
#include <optional>

namespace privacy::pg {

// Runs fn inside BeginInternalSubTransaction. When fn returns normally the subtransaction is
// released (its work becomes part of the caller's transaction) and nullopt is returned. When fn
// throws (a core::Error from pg_guard, or any other C++ exception), the subtransaction is rolled
// back and the error is returned instead of thrown. Either way CurrentMemoryContext and
// CurrentResourceOwner are what they were before the call.
// An SPI connection opened before the call stays usable afterwards.
std::optional<core::Error> run_in_subtransaction(const std::function<void()>& fn);

}  // namespace privacy::pg
