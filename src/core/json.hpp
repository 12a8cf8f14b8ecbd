// Just enough JSON writing for audit details, job results and receipts built in C++: string
// escaping, flat objects of strings, and objects and arrays of values that are JSON already.
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

// {"key": <value>, ...} where each value is JSON text already (a number, true, a nested object,
// json_string(...)); a nullopt value is written as null. Keys stay in the order given.
std::string json_object_of_values(const std::vector<JsonField>& fields);

// [<value>, ...] of values that are JSON text already.
std::string json_array_of_values(const std::vector<std::string>& values);

}  // namespace privacy::core
