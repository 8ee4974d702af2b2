// Retry and rate-limit decisions for GitHub requests; see backoff.hpp.
#include "github/backoff.hpp"

#include <Poco/DateTime.h>
#include <Poco/DateTimeParser.h>
#include <Poco/Exception.h>
#include <Poco/String.h>

#include <algorithm>
#include <cctype>
#include <cmath>

namespace rra::github {
namespace {

constexpr int64_t kSaturate = 1'000'000'000'000'000;  // 10^15 s: far beyond any clamp
constexpr int64_t kMaxHintWaitS = kMaxHintWait.count() / 1000;

bool mentionsRateLimit(const std::string& body) {
    return Poco::toLower(body).find("rate limit") != std::string::npos;
}

// Seconds from a retry-after header (delta seconds or an HTTP date); nullopt when absent or
// unreadable, which the rules treat as absent.
std::optional<int64_t> retryAfterSeconds(const ResponseSummary& r, int64_t serverNow) {
    if (!r.retryAfter)
        return std::nullopt;
    if (auto secs = parseHeaderInteger(r.retryAfter))
        return *secs;
    if (auto when = parseHttpDate(*r.retryAfter))
        return std::max<int64_t>(0, *when - serverNow);
    return std::nullopt;
}

}  // namespace

std::optional<int64_t> parseHeaderInteger(const std::optional<std::string>& raw) {
    if (!raw)
        return std::nullopt;
    const std::string s = Poco::trim(*raw);
    if (s.empty())
        return std::nullopt;
    int64_t v = 0;
    for (char c : s) {
        if (!std::isdigit(static_cast<unsigned char>(c)))
            return std::nullopt;
        v = std::min(kSaturate, v * 10 + (c - '0'));
    }
    return v;
}

Millis backoffDelay(const BackoffPolicy& policy, int retry, Random& random) {
    const double initial = static_cast<double>(policy.initial.count());
    const double max = static_cast<double>(std::max(policy.max, policy.initial).count());
    // 2^(n-1) overflows nothing in double; the min() keeps it bounded.
    const double d = std::min(max, initial * std::pow(2.0, std::max(0, retry - 1)));
    const double jittered = std::min(max, d + random.uniform(0.0, d / 4.0));
    return Millis(static_cast<int64_t>(std::llround(std::max(jittered, std::min(initial, max)))));
}

std::optional<int64_t> parseHttpDate(const std::string& value) {
    try {
        int tzd = 0;
        Poco::DateTime dt = Poco::DateTimeParser::parse(Poco::trim(value), tzd);
        dt.makeUTC(tzd);
        return dt.timestamp().epochTime();
    } catch (const Poco::Exception&) {
        return std::nullopt;
    }
}

Decision decide(const ResponseSummary& r, int attempt, const BackoffPolicy& policy,
                int64_t localEpoch, Random& random) {
    Decision d;
    const bool limitedStatus = r.status == 403 || r.status == 429;
    const int64_t serverNow = r.date ? parseHttpDate(*r.date).value_or(localEpoch) : localEpoch;
    // A hint in seconds: waited exactly, unless beyond kMaxHintWait (then given up, paused).
    bool hintTooLong = false;
    auto hintWait = [&](int64_t secs) {
        if (secs > kMaxHintWaitS) {
            hintTooLong = true;
            return kMaxHintWait;
        }
        return Millis(secs * 1000);
    };
    const auto afterS = limitedStatus ? retryAfterSeconds(r, serverNow) : std::nullopt;
    const bool primary =
        limitedStatus && !r.foreignOrigin && parseHeaderInteger(r.rateLimitRemaining) == 0;
    if (r.status == 0) {
        if (!r.transientTransportError) {
            d.outcome = Outcome::kFail;
            return d;
        }
        d.kind = LimitKind::kTransport;
        d.wait = backoffDelay(policy, attempt, random);
    } else if (r.status < 400) {
        // Every status the caller understands was consumed before asking: this one is not a
        // usable answer (204, 3xx without Location, 304 without a cached entry).
        d.kind = LimitKind::kUnexpected;
        d.wait = backoffDelay(policy, attempt, random);
    } else if (afterS || primary) {
        d.kind = afterS ? LimitKind::kRetryAfter : LimitKind::kPrimary;
        d.wait = afterS ? hintWait(*afterS) : Millis(0);
        if (primary) {
            // The quota is gone for every request of the client: pause them all, for the
            // longer of the two hints when both are given.
            d.pausesAll = true;
            Millis untilReset = backoffDelay(policy, attempt, random);
            if (auto reset = parseHeaderInteger(r.rateLimitReset))
                // Already past reset by the server's own clock: a short pause, not a loop.
                untilReset = hintWait(std::max<int64_t>(1, *reset - serverNow));
            if (!afterS || untilReset > d.wait) {
                d.kind = LimitKind::kPrimary;
                d.wait = untilReset;
            }
        }
    } else if (r.foreignOrigin) {
        // No token went to a redirect target: its errors are retried with a fresh URL.
        d.kind = LimitKind::kUnexpected;
        d.wait = backoffDelay(policy, attempt, random);
    } else if (r.status == 429 ||
               (r.status == 403 && (r.retryAfter || mentionsRateLimit(r.bodySnippet)))) {
        // An unreadable retry-after counts as absent, but still marks a limit, not a denial.
        d.kind = LimitKind::kSecondary;
        d.wait = backoffDelay(policy, attempt, random);
    } else if (r.status == 401 || r.status == 403) {
        d.outcome = Outcome::kPermission;
        return d;
    } else if (r.status >= 500) {
        d.kind = LimitKind::kServerError;
        d.wait = backoffDelay(policy, attempt, random);
    } else {
        d.outcome = Outcome::kFail;
        return d;
    }
    if (hintTooLong)
        d.pausesAll = true;
    d.outcome = attempt >= policy.maxAttempts || hintTooLong ? Outcome::kGiveUp : Outcome::kRetry;
    return d;
}

}  // namespace rra::github
