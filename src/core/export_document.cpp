#include "core/export_document.hpp"

#include "core/error.hpp"
#include "core/json.hpp"

#include <cstdio>

namespace privacy::core {

void ExportDocument::require(State expected, const char* operation) const {
  if (state_ != expected) {
    throw Error("XX000", std::string("export document: ") + operation + " called out of order");
  }
}

void ExportDocument::begin(long long job_id, std::string_view tenant, std::string_view subject,
                           std::string_view generated_at) {
  require(State::Fresh, "begin");
  output_(std::string("{\"format\": ") + json_string(kFormat) +
          ", \"job\": " + std::to_string(job_id) + ", \"tenant\": " + json_string(tenant) +
          ", \"subject\": " + json_string(subject) +
          ", \"generated_at\": " + json_string(generated_at) + ", \"tables\": [");
  state_ = State::InTables;
}

void ExportDocument::begin_table(std::string_view table) {
  require(State::InTables, "begin_table");
  output_(std::string(first_table_ ? "\n" : ",\n") + "{\"table\": " + json_string(table) +
          ", \"rows\": [");
  first_table_ = false;
  first_row_ = true;
  state_ = State::InRows;
}

void ExportDocument::add_row(std::string_view row_json) {
  require(State::InRows, "add_row");
  output_(first_row_ ? "\n" : ",\n");
  output_(row_json);
  first_row_ = false;
}

void ExportDocument::end_table() {
  require(State::InRows, "end_table");
  output_("]}");
  state_ = State::InTables;
}

void ExportDocument::finish() {
  require(State::InTables, "finish");
  output_("]}\n");
  state_ = State::Finished;
}

}  // namespace privacy::core
