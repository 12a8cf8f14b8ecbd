// The one exception type of pg_privacy.
//
// Everything that goes wrong in C++ code is thrown as privacy::core::Error. It carries what a
// PostgreSQL error carries (SQLSTATE, message, detail, hint) so that the SQL entry points in
// src/pg can re-raise it with ereport() without losing anything, and so that errors copied out of
// PostgreSQL by the guard travel through C++ frames unchanged.
//
// src/core never includes PostgreSQL headers: the SQLSTATE is kept as its five-character text.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

namespace privacy::core {

// Standard SQLSTATEs we raise from C++ code, plus the domain class PV (docs/errors.md).
namespace sqlstate {
inline constexpr const char* kInvalidParameter = "22023";
inline constexpr const char* kInsufficientPrivilege = "42501";
inline constexpr const char* kObjectNotInPrerequisiteState = "55000";
inline constexpr const char* kUndefinedTable = "42P01";
inline constexpr const char* kUndefinedColumn = "42703";
inline constexpr const char* kDuplicateObject = "42710";
inline constexpr const char* kWrongObjectType = "42809";
inline constexpr const char* kFeatureNotSupported = "0A000";
inline constexpr const char* kNoDataFound = "P0002";
inline constexpr const char* kInternalError = "XX000";
inline constexpr const char* kOutOfMemory = "53200";
inline constexpr const char* kLegalHold = "PV001";
}  // namespace sqlstate

// Where an Error was thrown: the compiler fills it in at the construction site (GCC and Clang
// evaluate __builtin_FILE/LINE/FUNCTION in a default argument where the call is written), so a
// server log's LOCATION line names the real line rather than the boundary that re-raised it.
// The pointers are string literals (or, for an error copied out of PostgreSQL, the raiser's own
// __FILE__ and function name, which PostgreSQL itself keeps by pointer): valid for the life of
// the process, so neither a memory context reset nor a subtransaction abort can leave them
// dangling.
struct ThrowSite {
  const char* file;
  int line;
  const char* function;

  // NOLINTNEXTLINE(google-explicit-constructor): the default argument of Error is this call.
  ThrowSite(const char* file_name = __builtin_FILE(), int line_number = __builtin_LINE(),
            const char* function_name = __builtin_FUNCTION()) noexcept
      : file(file_name), line(line_number), function(function_name) {}
};

class Error : public std::runtime_error {
 public:
  Error(std::string sqlstate, const std::string& message, std::string detail = {},
        std::string hint = {}, ThrowSite site = ThrowSite())
      : std::runtime_error(message),
        sqlstate_(std::move(sqlstate)),
        detail_(std::move(detail)),
        hint_(std::move(hint)),
        site_(site) {}

  const std::string& sqlstate() const noexcept { return sqlstate_; }
  const std::string& detail() const noexcept { return detail_; }
  const std::string& hint() const noexcept { return hint_; }
  const ThrowSite& site() const noexcept { return site_; }

 private:
  std::string sqlstate_;  // five characters, e.g. "55000"
  std::string detail_;    // empty when there is none
  std::string hint_;      // empty when there is none
  ThrowSite site_;
};

}  // namespace privacy::core
