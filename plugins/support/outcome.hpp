// Error values of the plugin-support helpers: a kind the plugin maps onto an SDK status
// (refused, cancelled, ...) plus a message naming what and where.
#pragma once

#include <raspi_release/deployer.hpp>

#include <tl/expected.hpp>

#include <string>
#include <utility>

namespace rra::plugin_support {

enum class FailureKind {
    kError,      // I/O or command failure: the system may need a rollback
    kRefused,    // the input was refused before the system was touched
    kCancelled,  // the host's cancellation flag was raised
    kTimeout,    // a deadline passed
};

struct Failure {
    FailureKind kind = FailureKind::kError;
    std::string message;
};

template <typename T>
using Outcome = tl::expected<T, Failure>;
using Done = Outcome<void>;

inline tl::unexpected<Failure> fail(FailureKind kind, std::string message) {
    return tl::unexpected<Failure>(Failure{kind, std::move(message)});
}
inline tl::unexpected<Failure> fail(std::string message) {
    return fail(FailureKind::kError, std::move(message));
}

// The SDK result for a failure, with `prefix` ("install: ...") in front of the message.
inline sdk::Result toResult(const Failure& f, const std::string& prefix = {}) {
    std::string m = prefix.empty() ? f.message : prefix + ": " + f.message;
    switch (f.kind) {
        case FailureKind::kRefused:
            return sdk::Result::refused(std::move(m));
        case FailureKind::kCancelled:
            return sdk::Result::cancelled(std::move(m));
        case FailureKind::kError:
        case FailureKind::kTimeout:
            break;
    }
    return sdk::Result::error(std::move(m));
}

}  // namespace rra::plugin_support
