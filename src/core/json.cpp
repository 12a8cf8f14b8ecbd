#include "core/json.hpp"

#include <cstdio>

namespace privacy::core {

std::string json_string(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out.push_back('"');
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof(escaped), "\\u%04x", static_cast<unsigned char>(c));
          out += escaped;
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

namespace {

// The one object writer: `quote_values` says whether values are text to quote or JSON already.
std::string object_of(const std::vector<JsonField>& fields, bool quote_values) {
  std::string out = "{";
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out += ", ";
    out += json_string(fields[i].first);
    out += ": ";
    if (!fields[i].second) {
      out += "null";
    } else {
      out += quote_values ? json_string(*fields[i].second) : *fields[i].second;
    }
  }
  out += "}";
  return out;
}

}  // namespace

std::string json_object(const std::vector<JsonField>& fields) { return object_of(fields, true); }

std::string json_object_of_values(const std::vector<JsonField>& fields) {
  return object_of(fields, false);
}

std::string json_array_of_values(const std::vector<std::string>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ", ";
    out += values[i];
  }
  out += "]";
  return out;
}

}  // namespace privacy::core
