#include "pg/spi.hpp"

extern "C" {
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

#include <cerrno>
#include <cstdlib>
#include <limits>
#include <map>

namespace privacy::pg {

SpiConnection::SpiConnection() {
  pg_guard([] {
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_privacy: SPI_connect failed");
  });
}

SpiConnection::~SpiConnection() {
  // SPI_finish only fails when not connected, which the constructor rules out.
  SPI_finish();
}

namespace {

// A palloc'd text datum for a C++ string.
Datum text_datum(std::string_view text) {
  return pg_guard(
      [&] { return PointerGetDatum(cstring_to_text_with_len(text.data(), text.size())); });
}

// Prepares SPI_execute_with_args' parallel arrays from our parameter list.
struct ParamArrays {
  std::vector<Oid> types;
  std::vector<Datum> values;
  std::vector<char> nulls;
  explicit ParamArrays(const std::vector<SqlParam>& params) {
    for (const SqlParam& param : params) {
      types.push_back(param.type);
      values.push_back(param.value);
      nulls.push_back(param.is_null ? 'n' : ' ');
    }
  }
};

// Every statement is prepared once per backend and kept (SPI_keepplan), keyed by its text and
// parameter types: the audit append, the batch loop's bookkeeping, the batch statements
// (data/batch.cpp) and the API run the same few statements over and over, and parsing and planning
// them each time was most of their cost. PostgreSQL's plan cache revalidates a kept plan when the
// objects it uses change. The cache is bounded; when it is full it starts over.
constexpr size_t kMaxCachedPlans = 512;

struct PlanKey {
  std::string sql;
  std::vector<Oid> types;
  bool operator<(const PlanKey& other) const {
    return sql != other.sql ? sql < other.sql : types < other.types;
  }
};

std::map<PlanKey, SPIPlanPtr>& plan_cache() {
  static std::map<PlanKey, SPIPlanPtr> cache;
  return cache;
}

// Statements executing now, in this backend: a statement can run another through a trigger or a
// function (a hold trigger under a batch statement). The cache starts over only when none runs, so
// a plan is never freed under its own execution; meanwhile it may grow past its bound.
int executing_statements = 0;

struct Executing {
  Executing() { ++executing_statements; }
  ~Executing() { --executing_statements; }
  Executing(const Executing&) = delete;
  Executing& operator=(const Executing&) = delete;
};

void forget_all_plans() {
  for (auto& [key, plan] : plan_cache()) SPI_freeplan(plan);
  plan_cache().clear();
}

SPIPlanPtr cached_plan(const std::string& sql, std::vector<Oid>& types) {
  PlanKey key{sql, types};
  auto found = plan_cache().find(key);
  if (found != plan_cache().end()) return found->second;
  if (plan_cache().size() >= kMaxCachedPlans && executing_statements == 0)
    pg_guard([] { forget_all_plans(); });
  SPIPlanPtr plan = pg_guard([&] {
    SPIPlanPtr prepared = SPI_prepare(sql.c_str(), static_cast<int>(types.size()), types.data());
    if (prepared == nullptr) {
      elog(ERROR, "pg_privacy: could not prepare (%s): %s", SPI_result_code_string(SPI_result),
           sql.c_str());
    }
    if (SPI_keepplan(prepared) != 0) elog(ERROR, "pg_privacy: could not keep a prepared statement");
    return prepared;
  });
  plan_cache().emplace(std::move(key), plan);
  return plan;
}

std::optional<std::string> cell_text(uint64 row, int column) {
  char* value = pg_guard(
      [&] { return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, column); });
  if (value == nullptr) return std::nullopt;
  std::string copy(value);
  pfree(value);
  return copy;
}

}  // namespace

SqlParam text_param(std::string_view text) { return SqlParam{TEXTOID, text_datum(text), false}; }

SqlParam text_param(const std::string& text) { return text_param(std::string_view(text)); }

SqlParam text_param(const char* text) { return text_param(std::string_view(text)); }

SqlParam text_param(const std::optional<std::string>& text) {
  if (!text) return SqlParam{TEXTOID, (Datum)0, true};
  return text_param(std::string_view(*text));
}

SqlParam int8_param(long long number) { return SqlParam{INT8OID, Int64GetDatum(number), false}; }

SqlParam int8_param(const std::optional<long long>& number) {
  if (!number) return SqlParam{INT8OID, (Datum)0, true};
  return int8_param(*number);
}

SqlParam bool_param(bool flag) { return SqlParam{BOOLOID, BoolGetDatum(flag), false}; }

SqlParam float8_param(double number) { return SqlParam{FLOAT8OID, Float8GetDatum(number), false}; }

SqlParam oid_param(Oid oid) { return int8_param(static_cast<long long>(oid)); }

SqlParam oid_array_param(const std::vector<Oid>& oids) {
  std::string text = "{";
  for (Oid oid : oids) text += (text.size() > 1 ? "," : "") + std::to_string(oid);
  return text_param(text + "}");
}

uint64 spi_execute(const std::string& sql, const std::vector<SqlParam>& params, bool read_only) {
  ParamArrays arrays(params);
  SPIPlanPtr plan = cached_plan(sql, arrays.types);
  Executing executing;
  int status = pg_guard([&] {
    return SPI_execute_plan(plan, arrays.values.data(), arrays.nulls.data(), read_only, 0);
  });
  if (status < 0) {
    throw core::Error(core::sqlstate::kInternalError, std::string("pg_privacy: SPI failed (") +
                                                          SPI_result_code_string(status) +
                                                          ") running: " + sql);
  }
  return SPI_processed;
}

std::vector<TextRow> spi_query_rows(const std::string& sql, const std::vector<SqlParam>& params,
                                    bool read_only) {
  uint64 count = spi_execute(sql, params, read_only);
  std::vector<TextRow> rows;
  if (SPI_tuptable == nullptr) return rows;
  int columns = SPI_tuptable->tupdesc->natts;
  rows.reserve(count);
  for (uint64 row = 0; row < count; ++row) {
    TextRow values;
    for (int column = 1; column <= columns; ++column) values.push_back(cell_text(row, column));
    rows.push_back(std::move(values));
  }
  return rows;
}

std::optional<std::string> spi_query_text(const std::string& sql,
                                          const std::vector<SqlParam>& params, bool read_only) {
  uint64 count = spi_execute(sql, params, read_only);
  if (count == 0 || SPI_tuptable == nullptr) return std::nullopt;
  return cell_text(0, 1);
}

std::optional<long long> spi_query_int8(const std::string& sql, const std::vector<SqlParam>& params,
                                        bool read_only) {
  std::optional<std::string> text = spi_query_text(sql, params, read_only);
  if (!text) return std::nullopt;
  return TextRow{text}.int8(0);
}

bool spi_query_bool(const std::string& sql, const std::vector<SqlParam>& params, bool read_only) {
  std::optional<std::string> text = spi_query_text(sql, params, read_only);
  return text && TextRow{text}.boolean(0);
}

Oid oid_from_text(const std::optional<std::string>& text) { return TextRow{text}.oid(0); }

namespace {

[[noreturn]] void not_of_type(size_t column, const char* type, const std::string& text) {
  throw core::Error(core::sqlstate::kInternalError,
                    "pg_privacy: column " + std::to_string(column + 1) +
                        " of a query result is not " + type + ": \"" + text + "\"",
                    "", "Please report this as a bug of pg_privacy.");
}

// The whole of `text` as a base-10 integer in [low, high].
long long parse_integer(size_t column, const char* type, const std::string& text, long long low,
                        long long high) {
  errno = 0;
  char* end = nullptr;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE || value < low || value > high)
    not_of_type(column, type, text);
  return value;
}

}  // namespace

const std::string& TextRow::required(size_t column, const char* type) const {
  if (column >= size()) {
    throw core::Error(core::sqlstate::kInternalError,
                      "pg_privacy: a query result has no column " + std::to_string(column + 1), "",
                      "Please report this as a bug of pg_privacy.");
  }
  const std::optional<std::string>& cell = (*this)[column];
  if (!cell) {
    throw core::Error(core::sqlstate::kInternalError,
                      "pg_privacy: column " + std::to_string(column + 1) +
                          " of a query result is NULL, not " + type,
                      "", "Please report this as a bug of pg_privacy.");
  }
  return *cell;
}

std::string TextRow::text(size_t column) const { return required(column, "text"); }

long long TextRow::int8(size_t column) const {
  return parse_integer(column, "int8", required(column, "int8"),
                       std::numeric_limits<long long>::min(),
                       std::numeric_limits<long long>::max());
}

std::optional<long long> TextRow::optional_int8(size_t column) const {
  if (column < size() && !(*this)[column]) return std::nullopt;
  return int8(column);
}

int TextRow::int4(size_t column) const {
  return static_cast<int>(parse_integer(column, "int4", required(column, "int4"),
                                        std::numeric_limits<int>::min(),
                                        std::numeric_limits<int>::max()));
}

double TextRow::float8(size_t column) const {
  const std::string& text = required(column, "float8");
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0') not_of_type(column, "float8", text);
  return value;
}

bool TextRow::boolean(size_t column) const {
  const std::string& text = required(column, "bool");
  if (text == "t" || text == "true") return true;
  if (text == "f" || text == "false") return false;
  not_of_type(column, "bool", text);
}

Oid TextRow::oid(size_t column) const {
  return static_cast<Oid>(parse_integer(column, "oid", required(column, "oid"), 0, PG_UINT32_MAX));
}

TimestampTz TextRow::timestamptz(size_t column) const {
  std::string text = required(column, "timestamptz");
  return pg_guard([&] {
    return DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in, CStringGetDatum(text.c_str()),
                                                   ObjectIdGetDatum(InvalidOid),
                                                   Int32GetDatum(-1)));
  });
}

std::string relation_display(Oid relation) {
  return spi_query_text("SELECT $1::oid::pg_catalog.regclass::text", {oid_param(relation)})
      .value_or(std::to_string(relation));
}

std::string quote_ident(std::string_view identifier) {
  std::string input(identifier);
  const char* quoted = pg_guard([&] { return quote_identifier(input.c_str()); });
  return std::string(quoted);
}

std::string quote_literal(std::string_view literal) {
  std::string input(literal);
  char* quoted = pg_guard([&] { return quote_literal_cstr(input.c_str()); });
  std::string result(quoted);
  pfree(quoted);
  return result;
}

LatestSnapshot::LatestSnapshot() {
  pushed_ = pg_guard([] {
    CommandCounterIncrement();
    PushActiveSnapshot(GetLatestSnapshot());
    return GetActiveSnapshot();
  });
}

LatestSnapshot::~LatestSnapshot() {
  // On an error PostgreSQL's abort cleans the snapshot stack; pop only what is still ours.
  if (ActiveSnapshotSet() && GetActiveSnapshot() == pushed_) PopActiveSnapshot();
}

}  // namespace privacy::pg
