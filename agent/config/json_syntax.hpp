// Locates the first JSON syntax error in a text as line and column, because Poco's
// parser says what went wrong but not where, and an operator needs the line.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace rra::config {

struct SyntaxError {
    int line = 1;
    int column = 1;
    std::string message;
};

// Nothing when `text` is one well-formed JSON value (RFC 8259).
std::optional<SyntaxError> findJsonSyntaxError(std::string_view text);

}  // namespace rra::config
