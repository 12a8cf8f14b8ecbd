// SPI from C++: a connection object and a small query helper. Every call into PostgreSQL goes
// through pg_guard, so a failing statement throws core::Error (with its own SQLSTATE) and the
// SpiConnection destructor still disconnects.
//
// Parameters are passed as text or int8/bool datums; the SQL casts ($1::jsonb, $2::regclass).
// Results are copied into C++ values at once (first_text, rows), so nothing points into SPI
// memory after the next statement.
#pragma once

#include "pg/boundary.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace privacy::pg {

// Connects to SPI for the lifetime of the object. Nested use inside another SPI caller is fine.
class SpiConnection {
 public:
  SpiConnection();
  ~SpiConnection();
  SpiConnection(const SpiConnection&) = delete;
  SpiConnection& operator=(const SpiConnection&) = delete;
};

// One query parameter.
struct SqlParam {
  Oid type;
  Datum value;
  bool is_null;
};

SqlParam text_param(std::string_view text);
SqlParam text_param(const std::string& text);
SqlParam text_param(const char* text);
SqlParam text_param(const std::optional<std::string>& text);  // NULL when empty optional
SqlParam int8_param(long long number);
SqlParam int8_param(const std::optional<long long>& number);
SqlParam bool_param(bool flag);
SqlParam float8_param(double number);
// An OID, passed as int8: cast it in the SQL, $1::oid (or $1::oid::regclass).
SqlParam oid_param(Oid oid);
// OIDs as the text of an array ('{16384,16390}'): cast it in the SQL, $1::oid[].
SqlParam oid_array_param(const std::vector<Oid>& oids);

// A result row as text values (NULL = nullopt), in column order, as SPI_getvalue prints them.
// row[i] is the optional text of column i; the typed accessors read a column as its SQL type, so
// that a row reads like a struct:
//   Job{row.int8(0), row.text(1), row.optional_int8(2), row.boolean(3), row[4]}
// A NULL where a value is required, or a value that is not of the type, throws XX000 naming the
// column: a bug in the query, never bad input. Booleans are read as PostgreSQL prints them, a bool
// column ("t"/"f") or one cast to text ("true"/"false"). timestamptz and jsonb columns are read
// as text (text(i), row[i]): the SQL chooses the form (::text, to_char(...) for a fixed one); for
// a timestamp to compute with, timestamptz(i) reads PostgreSQL's text back as a TimestampTz.
class TextRow : public std::vector<std::optional<std::string>> {
 public:
  using std::vector<std::optional<std::string>>::vector;

  std::string text(size_t column) const;
  long long int8(size_t column) const;
  std::optional<long long> optional_int8(size_t column) const;
  int int4(size_t column) const;
  double float8(size_t column) const;
  bool boolean(size_t column) const;
  Oid oid(size_t column) const;
  TimestampTz timestamptz(size_t column) const;

 private:
  const std::string& required(size_t column, const char* type) const;
};

// Runs one statement; returns the number of rows processed (SPI_processed).
// Throws core::Error with the statement's own SQLSTATE when it fails.
uint64 spi_execute(const std::string& sql, const std::vector<SqlParam>& params = {},
                   bool read_only = false);

// Runs a query and returns every row as text (use for small results).
std::vector<TextRow> spi_query_rows(const std::string& sql,
                                    const std::vector<SqlParam>& params = {},
                                    bool read_only = false);

// Runs a query and returns the first column of the first row as text (nullopt when no row or
// the value is NULL).
std::optional<std::string> spi_query_text(const std::string& sql,
                                          const std::vector<SqlParam>& params = {},
                                          bool read_only = false);

// The same, parsed as a 64-bit integer.
std::optional<long long> spi_query_int8(const std::string& sql,
                                        const std::vector<SqlParam>& params = {},
                                        bool read_only = false);

// The same, as a boolean: true only when the value is true (false when it is false, NULL, or
// there is no row).
bool spi_query_bool(const std::string& sql, const std::vector<SqlParam>& params = {},
                    bool read_only = false);

// An OID read back as text (a query's oid::text column).
Oid oid_from_text(const std::optional<std::string>& text);

// A relation's name as regclass prints it (schema-qualified, search_path being pinned), or its OID
// when it no longer exists: for messages. Needs an SPI connection.
std::string relation_display(Oid relation);

// Quotes an identifier / literal the way PostgreSQL does (quote_identifier, quote_literal_cstr).
std::string quote_ident(std::string_view identifier);
std::string quote_literal(std::string_view literal);

// Runs the enclosed SPI queries (pass read_only = true) on the latest snapshot, after making this
// transaction's own changes visible: rows committed by others a moment ago count, whatever the
// caller's isolation level or active snapshot (SPI itself keeps the snapshot the statement or the
// worker pushed). For decisions taken after a lock: holds (holds/sync.cpp), the erasure ledger's
// last entry (compliance/erasure_ledger.cpp).
class LatestSnapshot {
 public:
  LatestSnapshot();
  ~LatestSnapshot();
  LatestSnapshot(const LatestSnapshot&) = delete;
  LatestSnapshot& operator=(const LatestSnapshot&) = delete;

 private:
  Snapshot pushed_ = nullptr;
};

}  // namespace privacy::pg
