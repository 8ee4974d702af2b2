// The retry and rate-limit decision for GitHub requests (contract: shared/spec/github-releases.md,
// config.md "backoff"). Pure code: takes a response summary and the attempt count, returns how
// long to wait or why to give up. No I/O, no clock reads, no exceptions.
#pragma once

#include "common/clock.hpp"
#include "common/random.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace rra::github {

struct BackoffPolicy {
    Millis initial{60'000};
    Millis max{3'600'000};
    int maxAttempts = 8;  // every request of one operation, the first included
};

// What the client saw: an HTTP response (status > 0) or a transport failure (status == 0).
struct ResponseSummary {
    int status = 0;
    std::optional<std::string> retryAfter;          // raw `retry-after`
    std::optional<std::string> rateLimitRemaining;  // raw `x-ratelimit-remaining`
    std::optional<std::string> rateLimitReset;      // raw `x-ratelimit-reset` (epoch seconds)
    std::optional<std::string> date;                // raw `Date` (RFC 1123)
    std::string bodySnippet;               // first bytes of an error body, for "rate limit"
    bool transientTransportError = false;  // network error, or TLS "not yet valid"
    // The response came from a redirect target, not the API origin: no token went there, so
    // its 403/404 say nothing about our access or the release (an expired signed URL, a CDN
    // hiccup); the retry asks the API for a fresh URL.
    bool foreignOrigin = false;
};

// The longest wait a rate-limit hint may impose. A hint beyond it (a hostile or broken
// server) ends the operation as rate limited, with the client paused for this long.
constexpr Millis kMaxHintWait{24 * 3600 * 1000};

enum class Outcome {
    kSuccess,     // unused by decide(): the caller consumes the responses it understands
    kRetry,       // wait `wait`, then try again
    kGiveUp,      // attempts exhausted while limited or failing transiently
    kPermission,  // 401, or 403 without rate-limit signs: do not loop
    kFail,        // any other status: not retryable (404, 4xx, ...)
};

// kUnexpected: a status the caller did not handle (204, a 3xx without Location, 304 without a
// cached entry, a foreign 4xx): retried with backoff like a server error.
enum class LimitKind {
    kNone,
    kRetryAfter,
    kPrimary,
    kSecondary,
    kServerError,
    kTransport,
    kUnexpected
};

struct Decision {
    Outcome outcome = Outcome::kSuccess;
    LimitKind kind = LimitKind::kNone;
    Millis wait{0};
    // A primary limit (remaining == 0) pauses every request of the client until reset, and so
    // does a hint beyond kMaxHintWait.
    bool pausesAll = false;
};

// The contract's backoff without hints: retry n (1-based) waits
// d = min(max, initial * 2^(n-1)) plus jitter in [0, d/4], capped at max.
Millis backoffDelay(const BackoffPolicy& policy, int retry, Random& random);

// Parses an RFC 1123 / RFC 850 / asctime HTTP date into epoch seconds.
std::optional<int64_t> parseHttpDate(const std::string& value);

// A non-negative decimal header value, saturated at 10^15 (hostile values cannot overflow
// the arithmetic done on them); nullopt for anything else (empty, signed, garbage).
std::optional<int64_t> parseHeaderInteger(const std::optional<std::string>& raw);

// Decides what to do after attempt `attempt` (1-based) produced `response`, which the caller
// could not use. Every wait is at most kMaxHintWait; a longer hint gives up.
// `localEpoch` stands in for the server's Date when the response carries none.
Decision decide(const ResponseSummary& response, int attempt, const BackoffPolicy& policy,
                int64_t localEpoch, Random& random);

}  // namespace rra::github
