// Just enough JSON writing for audit details and job results built in C++: string escaping and
// flat objects. Values are written as JSON strings (or null); numbers via json_number.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace privacy::core {

// `text` as a JSON string literal, quotes included (RFC 8259 escaping).
std::string json_string(std::string_view text);


using JsonField = std::pair<std::string, std::optional<std::string>>;

// {"key": "value", ...}; a nullopt value is written as null.
std::string json_object(const std::vector<JsonField>& fields);

}  // namespace privacy::core
