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

std::optional<int64_t> parseInteger(const std::optional<std::string>& raw) {
    if (!raw)
        return std::nullopt;
    std::string s = Poco::trim(*raw);
    if (s.empty() || s.size() > 18)
        return std::nullopt;
    for (char c : s)
        if (!std::isdigit(static_cast<unsigned char>(c)))
            return std::nullopt;
    return std::stoll(s);
}

bool mentionsRateLimit(const std::string& body) {
    return Poco::toLower(body).find("rate limit") != std::string::npos;
}

}  // namespace

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
    if (r.status == 0) {
        if (!r.transientTransportError) {
            d.outcome = Outcome::kFail;
            return d;
        }
        d.kind = LimitKind::kTransport;
        d.wait = backoffDelay(policy, attempt, random);
    } else if (r.status == 304 || (r.status >= 200 && r.status < 400)) {
        return d;
    } else if (limitedStatus && r.retryAfter) {
        d.kind = LimitKind::kRetryAfter;
        if (auto secs = parseInteger(r.retryAfter)) {
            d.wait = Millis(*secs * 1000);
        } else if (auto when = parseHttpDate(*r.retryAfter)) {
            const int64_t base = r.date ? parseHttpDate(*r.date).value_or(localEpoch) : localEpoch;
            d.wait = Millis(std::max<int64_t>(0, *when - base) * 1000);
        } else {
            // An unreadable hint still means "limited": fall back to the formula.
            d.wait = backoffDelay(policy, attempt, random);
        }
    } else if (limitedStatus && parseInteger(r.rateLimitRemaining) == int64_t{0}) {
        d.kind = LimitKind::kPrimary;
        d.pausesAll = true;
        const int64_t now = r.date ? parseHttpDate(*r.date).value_or(localEpoch) : localEpoch;
        if (auto reset = parseInteger(r.rateLimitReset)) {
            // Already past reset by the server's own clock: a short pause, not a hammering loop.
            d.wait = Millis(std::max<int64_t>(1, *reset - now) * 1000);
        } else {
            d.wait = backoffDelay(policy, attempt, random);
        }
    } else if (r.status == 429 || (r.status == 403 && mentionsRateLimit(r.bodySnippet))) {
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
    d.outcome = attempt >= policy.maxAttempts ? Outcome::kGiveUp : Outcome::kRetry;
    return d;
}

}  // namespace rra::github
