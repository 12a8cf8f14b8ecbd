// The C++ / PostgreSQL boundary (docs/architecture.md). This header is the only place that knows
// how an error crosses between the two worlds:
//
//  * PostgreSQL -> C++: pg_guard(fn) runs fn inside PG_TRY. An ereport(ERROR) raised inside is
//    copied (CopyErrorData), cleared (FlushErrorState) and thrown as privacy::core::Error with its
//    SQLSTATE, message, detail and hint, so C++ destructors run normally on the way out.
//    The function passed in must not throw C++ exceptions itself (it calls PostgreSQL only).
//    After a caught error the transaction is in an unknown state: the C++ code must unwind to a
//    SQL entry (which re-raises) or to a subtransaction boundary (subtransaction.hpp).
//
//  * C++ -> PostgreSQL: PRIVACY_SQL_FUNCTION(name) declares the extern "C" V1 function `name`
//    whose body is ordinary C++. Any exception leaving the body is caught, copied into palloc'd
//    memory, every C++ frame is unwound, and only then is it raised with ereport(ERROR).
#pragma once

#include "core/error.hpp"
#include "pg/pg_headers.hpp"

#include <exception>
#include <new>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace privacy::pg {

// An error on its way from C++ to ereport: plain palloc'd C strings, no destructors, so it is
// safe to hold while PostgreSQL longjmps.
struct PendingError {
  int sqlerrcode;
  const char* message;
  const char* detail;  // nullptr when there is none
  const char* hint;    // nullptr when there is none
  // Where the error was thrown (core::Error::site, or the PostgreSQL function that raised it);
  // nullptr for exceptions that do not know, which are then reported at the boundary.
  const char* file;
  int line;
  const char* function;
};

// Builds a PendingError from a caught exception without ever raising a PostgreSQL error
// (allocation failures fall back to static text), so it is safe inside a catch block.
PendingError capture_exception(std::exception_ptr caught) noexcept;

// Raises the captured error in PostgreSQL. Call only once no C++ object needs destroying.
[[noreturn]] void raise_pending_error(const PendingError& pending);

// Writes the captured error to the server log (LOG: the process goes on or exits cleanly), with
// its SQLSTATE, detail, hint and throw site, the message prefixed by `who` ("pg_privacy launcher:
// step \"mailer\"").
void log_pending_error(const PendingError& pending, const char* who) noexcept;

// The guard of code that runs outside any SQL call (a background worker's main, a launcher step):
// runs `body`; an exception that escapes it is logged as log_pending_error does, mapped exactly as
// a SQL entry point maps it (PRIVACY_SQL_FUNCTION), and false is returned. The caller decides what
// a failure means (abort the step's transaction, exit the worker).
template <typename Body>
bool background_guard(const char* who, Body&& body) noexcept {
  try {
    body();
    return true;
  } catch (...) {
    log_pending_error(capture_exception(std::current_exception()), who);
    return false;
  }
}

// The exception being handled (call inside a catch block) as a core::Error, mapped as a SQL entry
// point maps it: for code that records an error instead of raising it (the job loop).
core::Error current_exception_as_error();

// Converts a copied PostgreSQL error into our exception type (used by pg_guard).
core::Error error_from_error_data(ErrorData* edata);

// Converts the five-character SQLSTATE text to PostgreSQL's packed integer form.
int sqlstate_to_code(const std::string& sqlstate);

// Runs fn (which calls PostgreSQL and nothing that throws) and turns an ereport(ERROR) inside it
// into a thrown core::Error. Returns fn's result.
template <typename Fn>
auto pg_guard(Fn&& fn) -> decltype(fn()) {
  using Result = decltype(fn());
  if constexpr (std::is_void_v<Result>) {
    MemoryContext caller_context = CurrentMemoryContext;
    ErrorData* volatile caught = nullptr;
    PG_TRY();
    { fn(); }
    PG_CATCH();
    {
      MemoryContextSwitchTo(caller_context);
      caught = CopyErrorData();
      FlushErrorState();
    }
    PG_END_TRY();
    if (caught != nullptr) throw error_from_error_data(caught);
  } else {
    // Result must be default-constructible and trivially copyable (a Datum, pointer, number):
    // it is assigned inside the PG_TRY block, which must not run C++ destructors.
    static_assert(std::is_trivially_copyable_v<Result>, "pg_guard returns plain values only");
    Result result{};
    pg_guard([&]() { result = fn(); });
    return result;
  }
}

// Runs a C++ body as the implementation of a SQL-callable function (see the macro below).
template <typename Body>
Datum run_sql_function(Body body, FunctionCallInfo fcinfo) {
  PendingError pending{};
  try {
    return body(fcinfo);
  } catch (...) {
    pending = capture_exception(std::current_exception());
  }
  raise_pending_error(pending);
}

// The arguments of a SQL-callable function, copied into C++ values: the one set of helpers every
// entry point uses. A required argument that is SQL NULL is refused with 22023
// "<name> must not be NULL" (and `hint`); the optional_ forms give nullopt for it.
//   text_arg           a text argument
//   nonblank_text_arg  a text argument that says something: NULL or only white space is refused
//                      with 22023 "<name> must not be empty" (and `hint`)
//   enum_arg           an argument of an enum type, as its label
//   int8_arg           a bigint argument
std::string text_arg(FunctionCallInfo fcinfo, int index, const char* name, const char* hint = "");
std::optional<std::string> optional_text_arg(FunctionCallInfo fcinfo, int index);
std::string nonblank_text_arg(FunctionCallInfo fcinfo, int index, const char* name,
                              const char* hint = "");
std::string enum_arg(FunctionCallInfo fcinfo, int index, const char* name, const char* hint = "");
std::optional<std::string> optional_enum_arg(FunctionCallInfo fcinfo, int index);
long long int8_arg(FunctionCallInfo fcinfo, int index, const char* name, const char* hint = "");

}  // namespace privacy::pg

// Declares a SQL-callable (V1) C function `name` whose body follows as C++:
//   PRIVACY_SQL_FUNCTION(privacy_approve) { ... return (Datum) 0; }
// The body runs inside try; exceptions become ereport(ERROR) after unwinding.
#define PRIVACY_SQL_FUNCTION(name)                                      \
  static Datum name##_body(FunctionCallInfo fcinfo);                    \
  extern "C" {                                                          \
  PG_FUNCTION_INFO_V1(name);                                            \
  __attribute__((visibility("default"))) Datum name(PG_FUNCTION_ARGS) { \
    return privacy::pg::run_sql_function(name##_body, fcinfo);          \
  }                                                                     \
  }                                                                     \
  static Datum name##_body(FunctionCallInfo fcinfo)
