// Errors as values at module boundaries: an Error carries a code and a message with
// context ("component 'web-ui' tag v1.4.2: install: ..."); Expected<T> is tl::expected.
#pragma once

#include <tl/expected.hpp>

#include <string>
#include <utility>

namespace rra {

enum class ErrorCode {
    kGeneric,
    kInvalidArgument,
    kConfig,
    kIo,
    kNetwork,
    kTls,
    kHttp,
    kNotFound,
    kPermission,
    kRateLimited,
    kMismatch,
    kRefused,
    kCancelled,
    kTimeout,
    kProtocol,
    kUnsupported,
};

class [[nodiscard]] Error {
  public:
    Error() = default;
    Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}
    explicit Error(std::string message) : message_(std::move(message)) {}

    ErrorCode code() const { return code_; }
    const std::string& message() const { return message_; }

    // Prefix context: Error("x").context("component 'a'") -> "component 'a': x".
    Error context(const std::string& prefix) const {
        return Error(code_, prefix + ": " + message_);
    }

  private:
    ErrorCode code_ = ErrorCode::kGeneric;
    std::string message_;
};

template <typename T>
using Expected = tl::expected<T, Error>;

inline tl::unexpected<Error> fail(Error e) {
    return tl::unexpected<Error>(std::move(e));
}
inline tl::unexpected<Error> fail(ErrorCode code, std::string message) {
    return tl::unexpected<Error>(Error(code, std::move(message)));
}

// Result of an operation that returns nothing but may fail.
using Status = Expected<void>;

}  // namespace rra
