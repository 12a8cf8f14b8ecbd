#include "core/export_document.hpp"

#include "core/error.hpp"

#include <cstdio>

namespace privacy::core {

std::string json_quote(std::string_view text) {
  std::string quoted;
  quoted.reserve(text.size() + 2);
  quoted.push_back('"');
  for (char c : text) {
    switch (c) {
      case '"': quoted += "\\\""; break;
      case '\\': quoted += "\\\\"; break;
      case '\b': quoted += "\\b"; break;
      case '\f': quoted += "\\f"; break;
      case '\n': quoted += "\\n"; break;
      case '\r': quoted += "\\r"; break;
      case '\t': quoted += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof(escaped), "\\u%04x", static_cast<unsigned>(c));
          quoted += escaped;
        } else {
          quoted.push_back(c);
        }
    }
  }
  quoted.push_back('"');
  return quoted;
}

void ExportDocument::require(State expected, const char* operation) const {
  if (state_ != expected) {
    throw Error("XX000", std::string("export document: ") + operation + " called out of order");
  }
}

void ExportDocument::begin(long long job_id, std::string_view tenant, std::string_view subject,
                           std::string_view generated_at) {
  require(State::Fresh, "begin");
  output_(std::string("{\"format\": ") + json_quote(kFormat) + ", \"job\": " +
          std::to_string(job_id) + ", \"tenant\": " + json_quote(tenant) +
          ", \"subject\": " + json_quote(subject) + ", \"generated_at\": " +
          json_quote(generated_at) + ", \"tables\": [");
  state_ = State::InTables;
}

void ExportDocument::begin_table(std::string_view table) {
  require(State::InTables, "begin_table");
  output_(std::string(first_table_ ? "\n" : ",\n") + "{\"table\": " + json_quote(table) +
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
