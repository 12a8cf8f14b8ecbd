// Deliberately broken: src/core code is compiled without PostgreSQL's include path, so this
// include must fail. ctest's core_cannot_include_postgres_h passes only when it does.
#include "postgres.h"
#include "core/error.hpp"
