// Locates the first JSON syntax error in a text as line and column, because Poco's
// parser says what went wrong but not where, and an operator needs the line. It also
// catches what Poco accepts silently or reports without a place: numbers beyond 64 bits
// (Poco wraps or throws "Syntax error") and duplicate keys (Poco keeps the last one).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rra::config {

struct SyntaxError {
    int line = 1;
    int column = 1;
    std::string message;
    // The key path of the offending value ("proxy.heartbeat_s", "components[2].keep") when
    // the problem is a value, not the syntax (a number out of range); empty otherwise.
    std::string key;
};

struct SyntaxWarning {
    int line = 1;
    int column = 1;
    std::string key;  // path as above
    std::string message;
};

inline constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

struct SyntaxCheck {
    std::optional<SyntaxError> error;
    std::vector<SyntaxWarning> warnings;  // duplicate keys
};

// `text` must be one well-formed JSON value (RFC 8259) whose integers fit in 64 bits
// (signed, or unsigned when positive) and whose other numbers fit in a double. A leading
// UTF-8 byte order mark is ignored (the caller strips it before Poco sees the text).
SyntaxCheck checkJsonSyntax(std::string_view text);

// Nothing when `text` passes checkJsonSyntax.
std::optional<SyntaxError> findJsonSyntaxError(std::string_view text);

}  // namespace rra::config
