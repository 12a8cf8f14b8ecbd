// The plaintext of an export file: one JSON document, written a piece at a time.
//
// An export may hold millions of rows, so the document is never built in memory. The export job
// (src/export/export.cpp) feeds each row's JSON text (made by PostgreSQL's row_to_json) to an
// ExportDocument, which adds the framing around it and passes every piece straight on (to the
// encryption stream). The document looks like this (format "pg_privacy.export/1", docs/exports.md):
//
//   {"format": "pg_privacy.export/1", "job": 42, "tenant": "acme", "subject": "u-17",
//    "generated_at": "2026-01-31T12:00:00Z",
//    "tables": [{"table": "app.users", "rows": [{...}, {...}]}, {"table": "app.orders", "rows":
//    []}]}
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace privacy::core {

class ExportDocument {
 public:
  using Output = std::function<void(std::string_view)>;

  static constexpr const char* kFormat = "pg_privacy.export/1";

  explicit ExportDocument(Output output) : output_(std::move(output)) {}

  // The opening of the document, up to and including `"tables": [`. Call once, first.
  void begin(long long job_id, std::string_view tenant, std::string_view subject,
             std::string_view generated_at);
  // Opens the next table's entry; `table` is its qualified name.
  void begin_table(std::string_view table);
  // Adds one row; `row_json` must be a complete JSON object (it is copied as is).
  void add_row(std::string_view row_json);
  // Closes the current table's entry.
  void end_table();
  // Closes the document. Nothing may follow.
  void finish();

 private:
  enum class State { Fresh, InTables, InRows, Finished };
  void require(State expected, const char* operation) const;

  Output output_;
  State state_ = State::Fresh;
  bool first_table_ = true;
  bool first_row_ = true;
};

}  // namespace privacy::core
