#include "pg/boundary.hpp"

#include <cstring>
#include <string>

namespace privacy::pg {

namespace {

// Copies text into the current memory context without ever raising a PostgreSQL error.
const char* copy_text_no_error(const char* text, const char* fallback) noexcept {
  if (text == nullptr || *text == '\0') return fallback;
  size_t length = std::strlen(text);
  char* copy = static_cast<char*>(palloc_extended(length + 1, MCXT_ALLOC_NO_OOM));
  if (copy == nullptr) return fallback;
  std::memcpy(copy, text, length + 1);
  return copy;
}

PendingError pending_from(const core::Error& error) noexcept {
  PendingError pending{};
  pending.sqlerrcode = sqlstate_to_code(error.sqlstate());
  pending.message =
      copy_text_no_error(error.what(), "pg_privacy error (message lost: out of memory)");
  pending.detail = copy_text_no_error(error.detail().c_str(), nullptr);
  pending.hint = copy_text_no_error(error.hint().c_str(), nullptr);
  pending.file = error.site().file;
  pending.line = error.site().line;
  pending.function = error.site().function;
  return pending;
}

}  // namespace

int sqlstate_to_code(const std::string& sqlstate) {
  if (sqlstate.size() != 5) return ERRCODE_INTERNAL_ERROR;
  return MAKE_SQLSTATE(sqlstate[0], sqlstate[1], sqlstate[2], sqlstate[3], sqlstate[4]);
}

PendingError capture_exception(std::exception_ptr caught) noexcept {
  try {
    std::rethrow_exception(caught);
  } catch (const core::Error& error) {
    return pending_from(error);
  } catch (const std::bad_alloc&) {
    return PendingError{ERRCODE_OUT_OF_MEMORY,
                        "out of memory in pg_privacy",
                        nullptr,
                        nullptr,
                        nullptr,
                        0,
                        nullptr};
  } catch (const std::exception& error) {
    PendingError pending{ERRCODE_INTERNAL_ERROR, nullptr, nullptr, nullptr, nullptr, 0, nullptr};
    pending.message = copy_text_no_error(error.what(), "internal error in pg_privacy");
    pending.hint = "This is a bug in pg_privacy; please report it with the statement that failed.";
    return pending;
  } catch (...) {
    return PendingError{ERRCODE_INTERNAL_ERROR,
                        "unknown C++ exception in pg_privacy",
                        nullptr,
                        "This is a bug in pg_privacy; please report it.",
                        nullptr,
                        0,
                        nullptr};
  }
}

// ereport() by hand, so that LOCATION names where the error was thrown, not this function.
void raise_pending_error(const PendingError& pending) {
  const char* file = pending.file ? pending.file : __FILE__;
  int line = pending.file ? pending.line : __LINE__;
  const char* function = pending.file ? pending.function : PG_FUNCNAME_MACRO;
  if (errstart(ERROR, TEXTDOMAIN)) {
    errcode(pending.sqlerrcode);
    errmsg_internal("%s", pending.message);
    if (pending.detail) errdetail_internal("%s", pending.detail);
    if (pending.hint) errhint("%s", pending.hint);
    errfinish(file, line, function);
  }
  pg_unreachable();
}

void log_pending_error(const PendingError& pending, const char* who) noexcept {
  const char* file = pending.file ? pending.file : __FILE__;
  int line = pending.file ? pending.line : __LINE__;
  const char* function = pending.file ? pending.function : PG_FUNCNAME_MACRO;
  if (errstart(LOG, TEXTDOMAIN)) {
    errcode(pending.sqlerrcode);
    errmsg_internal("%s: %s", who, pending.message);
    if (pending.detail) errdetail_internal("%s", pending.detail);
    if (pending.hint) errhint("%s", pending.hint);
    errfinish(file, line, function);
  }
}

core::Error current_exception_as_error() {
  try {
    throw;
  } catch (const core::Error& error) {
    return error;
  } catch (...) {
    PendingError pending = capture_exception(std::current_exception());
    char sqlstate[6];
    std::memcpy(sqlstate, unpack_sql_state(pending.sqlerrcode), 6);
    return core::Error(sqlstate, pending.message, pending.detail ? pending.detail : "",
                       pending.hint ? pending.hint : "");
  }
}

core::Error error_from_error_data(ErrorData* edata) {
  char sqlstate[6];
  std::memcpy(sqlstate, unpack_sql_state(edata->sqlerrcode), 6);
  std::string message = edata->message ? edata->message : "unknown PostgreSQL error";
  std::string detail = edata->detail ? edata->detail : "";
  std::string hint = edata->hint ? edata->hint : "";
  core::ThrowSite site(edata->filename ? edata->filename : __FILE__, edata->lineno,
                       edata->funcname ? edata->funcname : PG_FUNCNAME_MACRO);
  FreeErrorData(edata);
  return core::Error(sqlstate, message, detail, hint, site);
}

std::optional<std::string> optional_text_arg(FunctionCallInfo fcinfo, int index) {
  if (PG_ARGISNULL(index)) return std::nullopt;
  return std::string(pg_guard([&] { return text_to_cstring(PG_GETARG_TEXT_PP(index)); }));
}

namespace {

void refuse_null(FunctionCallInfo fcinfo, int index, const char* name, const char* hint) {
  if (PG_ARGISNULL(index)) {
    throw core::Error(core::sqlstate::kInvalidParameter, std::string(name) + " must not be NULL",
                      "", hint);
  }
}

}  // namespace

std::string text_arg(FunctionCallInfo fcinfo, int index, const char* name, const char* hint) {
  refuse_null(fcinfo, index, name, hint);
  return pg_guard([&] { return text_to_cstring(PG_GETARG_TEXT_PP(index)); });
}

std::string nonblank_text_arg(FunctionCallInfo fcinfo, int index, const char* name,
                              const char* hint) {
  std::optional<std::string> value = optional_text_arg(fcinfo, index);
  if (!value || value->find_first_not_of(" \t\r\n") == std::string::npos) {
    throw core::Error(core::sqlstate::kInvalidParameter, std::string(name) + " must not be empty",
                      "", hint);
  }
  return *value;
}

std::optional<std::string> optional_enum_arg(FunctionCallInfo fcinfo, int index) {
  if (PG_ARGISNULL(index)) return std::nullopt;
  return std::string(pg_guard(
      [&] { return DatumGetCString(DirectFunctionCall1(enum_out, PG_GETARG_DATUM(index))); }));
}

std::string enum_arg(FunctionCallInfo fcinfo, int index, const char* name, const char* hint) {
  refuse_null(fcinfo, index, name, hint);
  return *optional_enum_arg(fcinfo, index);
}

long long int8_arg(FunctionCallInfo fcinfo, int index, const char* name, const char* hint) {
  refuse_null(fcinfo, index, name, hint);
  return PG_GETARG_INT64(index);
}

}  // namespace privacy::pg
