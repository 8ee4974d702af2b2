// Table tests of the pure retry/rate-limit policy (backoff.hpp) on a fixed random source.
#define BOOST_TEST_MODULE test_github
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "github/backoff.hpp"

#include <ostream>

using namespace rra;
using namespace rra::github;

namespace {

BackoffPolicy policy() {
    BackoffPolicy p;
    p.initial = Millis(60'000);
    p.max = Millis(3'600'000);
    p.maxAttempts = 8;
    return p;
}

constexpr int64_t kServerNow = 1'700'000'000;               // what the fake server's Date says
const char* kServerDate = "Tue, 14 Nov 2023 22:13:20 GMT";  // == kServerNow
constexpr int64_t kWrongLocalClock = 1'000'000'000;         // a Pi that booted in 2001

struct BackoffRow {
    int retry;
    double fraction;
    int64_t expectMs;
};
std::ostream& operator<<(std::ostream& os, const BackoffRow& r) {
    return os << "retry " << r.retry << " jitter " << r.fraction;
}

struct DecideRow {
    const char* name;
    int status;
    const char* retryAfter;
    const char* remaining;
    std::optional<int64_t> reset;
    const char* body;
    bool transient;
    int attempt;
    Outcome outcome;
    LimitKind kind;
    int64_t waitMs;
    bool pausesAll;
};
std::ostream& operator<<(std::ostream& os, const DecideRow& r) {
    return os << r.name;
}

}  // namespace

// Proves the contract's formula: doubling from backoff_initial_s, jitter up to d/4, capped at
// backoff_max_s, never below backoff_initial_s.
BOOST_DATA_TEST_CASE(backoff_formula_matches_contract,
                     boost::unit_test::data::make(std::vector<BackoffRow>{
                         {1, 0.0, 60'000},
                         {2, 0.0, 120'000},
                         {3, 0.0, 240'000},
                         {6, 0.0, 1'920'000},
                         {7, 0.0, 3'600'000},
                         {30, 0.0, 3'600'000},
                         {1, 1.0, 75'000},
                         {3, 0.5, 270'000},
                         {6, 1.0, 2'400'000},
                         {7, 1.0, 3'600'000},
                     })) {
    FixedRandom random(sample.fraction);
    BOOST_TEST(backoffDelay(policy(), sample.retry, random).count() == sample.expectMs);
}

// Proves small configured values (tests use a 2 s backoff) and max < initial stay sane.
BOOST_AUTO_TEST_CASE(backoff_small_and_inverted_bounds) {
    FixedRandom zero(0.0);
    BackoffPolicy p;
    p.initial = Millis(2000);
    p.max = Millis(5000);
    BOOST_TEST(backoffDelay(p, 1, zero).count() == 2000);
    BOOST_TEST(backoffDelay(p, 2, zero).count() == 4000);
    BOOST_TEST(backoffDelay(p, 3, zero).count() == 5000);
    p.max = Millis(1000);
    BOOST_TEST(backoffDelay(p, 4, zero).count() == 2000);
}

// Proves each response kind maps to the wait GitHub asks for, computed from the response's
// Date rather than the (wrong) local clock, and that permission errors are not retried.
BOOST_DATA_TEST_CASE(
    decide_follows_github_rules,
    boost::unit_test::data::make(std::vector<DecideRow>{
        {"200 the caller did not use", 200, nullptr, "4999", kServerNow + 3600, "", false, 1,
         Outcome::kRetry, LimitKind::kUnexpected, 60'000, false},
        {"204 no content", 204, nullptr, nullptr, std::nullopt, "", false, 2, Outcome::kRetry,
         LimitKind::kUnexpected, 120'000, false},
        {"304 without a cached entry", 304, nullptr, nullptr, std::nullopt, "", false, 1,
         Outcome::kRetry, LimitKind::kUnexpected, 60'000, false},
        {"302 without Location", 302, nullptr, nullptr, std::nullopt, "", false, 8,
         Outcome::kGiveUp, LimitKind::kUnexpected, 3'600'000, false},
        {"429 retry-after", 429, "30", "100", kServerNow + 999, "", false, 1, Outcome::kRetry,
         LimitKind::kRetryAfter, 30'000, false},
        {"403 retry-after and reset: the longer wait, all paused", 403, "5", "0", kServerNow + 999,
         "", false, 1, Outcome::kRetry, LimitKind::kPrimary, 999'000, true},
        {"429 retry-after longer than reset, all paused", 429, "600", "0", kServerNow + 60, "",
         false, 1, Outcome::kRetry, LimitKind::kRetryAfter, 600'000, true},
        {"retry-after 18 digits gives up, paused", 429, "999999999999999999", nullptr, std::nullopt,
         "", false, 1, Outcome::kGiveUp, LimitKind::kRetryAfter, 86'400'000, true},
        {"retry-after 30 digits gives up, paused", 403, "123456789012345678901234567890", "5",
         std::nullopt, "", false, 1, Outcome::kGiveUp, LimitKind::kRetryAfter, 86'400'000, true},
        {"retry-after 1e10 s gives up, paused", 429, "10000000000", nullptr, std::nullopt, "",
         false, 1, Outcome::kGiveUp, LimitKind::kRetryAfter, 86'400'000, true},
        {"retry-after just at the clamp", 429, "86400", nullptr, std::nullopt, "", false, 1,
         Outcome::kRetry, LimitKind::kRetryAfter, 86'400'000, false},
        {"reset 18 digits gives up, paused", 403, nullptr, "0", 999'999'999'999'999'999, "", false,
         1, Outcome::kGiveUp, LimitKind::kPrimary, 86'400'000, true},
        {"reset 1e10 s ahead gives up, paused", 403, nullptr, "0", kServerNow + 10'000'000'000, "",
         false, 1, Outcome::kGiveUp, LimitKind::kPrimary, 86'400'000, true},
        {"negative retry-after falls back to reset", 403, "-5", "0", kServerNow + 120, "", false, 1,
         Outcome::kRetry, LimitKind::kPrimary, 120'000, true},
        {"garbage retry-after on 429 falls back to the formula", 429, "soon", nullptr, std::nullopt,
         "", false, 2, Outcome::kRetry, LimitKind::kSecondary, 120'000, false},
        {"garbage retry-after on 403 is still a limit", 403, "soon", "100", kServerNow + 5, "",
         false, 1, Outcome::kRetry, LimitKind::kSecondary, 60'000, false},
        {"403 primary", 403, nullptr, "0", kServerNow + 120, "API rate limit exceeded", false, 1,
         Outcome::kRetry, LimitKind::kPrimary, 120'000, true},
        {"429 primary", 429, nullptr, "0", kServerNow + 7, "", false, 3, Outcome::kRetry,
         LimitKind::kPrimary, 7'000, true},
        {"primary already reset", 403, nullptr, "0", kServerNow - 50, "", false, 1, Outcome::kRetry,
         LimitKind::kPrimary, 1'000, true},
        {"429 secondary first", 429, nullptr, nullptr, std::nullopt, "", false, 1, Outcome::kRetry,
         LimitKind::kSecondary, 60'000, false},
        {"429 secondary third", 429, nullptr, "12", kServerNow + 5, "", false, 3, Outcome::kRetry,
         LimitKind::kSecondary, 240'000, false},
        {"403 secondary by message", 403, nullptr, "10", kServerNow + 5,
         "You have exceeded a secondary rate limit", false, 2, Outcome::kRetry,
         LimitKind::kSecondary, 120'000, false},
        {"403 permission", 403, nullptr, "4000", kServerNow + 5,
         "Resource not accessible by integration", false, 1, Outcome::kPermission, LimitKind::kNone,
         0, false},
        {"401 bad credentials", 401, nullptr, nullptr, std::nullopt, "Bad credentials", false, 1,
         Outcome::kPermission, LimitKind::kNone, 0, false},
        {"503", 503, nullptr, nullptr, std::nullopt, "", false, 2, Outcome::kRetry,
         LimitKind::kServerError, 120'000, false},
        {"404", 404, nullptr, "4000", std::nullopt, "", false, 1, Outcome::kFail, LimitKind::kNone,
         0, false},
        {"network error", 0, nullptr, nullptr, std::nullopt, "", true, 1, Outcome::kRetry,
         LimitKind::kTransport, 60'000, false},
        {"tls wrong ca", 0, nullptr, nullptr, std::nullopt, "", false, 1, Outcome::kFail,
         LimitKind::kNone, 0, false},
        {"secondary last attempt", 429, nullptr, nullptr, std::nullopt, "", false, 8,
         Outcome::kGiveUp, LimitKind::kSecondary, 3'600'000, false},
        {"primary last attempt", 403, nullptr, "0", kServerNow + 42, "", false, 8, Outcome::kGiveUp,
         LimitKind::kPrimary, 42'000, true},
    })) {
    ResponseSummary r;
    r.status = sample.status;
    if (sample.retryAfter)
        r.retryAfter = sample.retryAfter;
    if (sample.remaining)
        r.rateLimitRemaining = sample.remaining;
    if (sample.reset)
        r.rateLimitReset = std::to_string(*sample.reset);
    r.date = kServerDate;
    r.bodySnippet = sample.body;
    r.transientTransportError = sample.transient;
    FixedRandom zero(0.0);
    Decision d = decide(r, sample.attempt, policy(), kWrongLocalClock, zero);
    BOOST_TEST(static_cast<int>(d.outcome) == static_cast<int>(sample.outcome));
    BOOST_TEST(static_cast<int>(d.kind) == static_cast<int>(sample.kind));
    BOOST_TEST(d.wait.count() == sample.waitMs);
    BOOST_TEST(d.pausesAll == sample.pausesAll);
}

// Proves a redirect target's 403 (an expired signed URL) and 404 (a CDN hiccup) are retried,
// not a permission error or a missing release: no token went there. Its retry-after is obeyed
// without pausing the API client.
BOOST_AUTO_TEST_CASE(foreign_origin_errors_are_transient) {
    FixedRandom zero(0.0);
    for (int status : {403, 404, 401, 410}) {
        ResponseSummary r;
        r.status = status;
        r.foreignOrigin = true;
        r.bodySnippet = "<Error><Code>AccessDenied</Code></Error>";
        Decision d = decide(r, 1, policy(), kServerNow, zero);
        BOOST_TEST(static_cast<int>(d.outcome) == static_cast<int>(Outcome::kRetry), status);
        BOOST_TEST(d.wait.count() == 60'000);
        BOOST_TEST(!d.pausesAll);
    }
    ResponseSummary r;
    r.status = 429;
    r.foreignOrigin = true;
    r.retryAfter = "9";
    r.rateLimitRemaining = "0";
    Decision d = decide(r, 1, policy(), kServerNow, zero);
    BOOST_TEST(static_cast<int>(d.kind) == static_cast<int>(LimitKind::kRetryAfter));
    BOOST_TEST(d.wait.count() == 9'000);
    BOOST_TEST(!d.pausesAll);
}

// Proves hostile header integers saturate instead of overflowing, and signs or garbage are
// not numbers.
BOOST_AUTO_TEST_CASE(header_integers_saturate) {
    BOOST_TEST(parseHeaderInteger(std::string(" 42 ")).value_or(-1) == 42);
    BOOST_TEST(parseHeaderInteger(std::string(40, '9')).value_or(-1) == 1'000'000'000'000'000);
    BOOST_TEST(!parseHeaderInteger(std::string("-1")).has_value());
    BOOST_TEST(!parseHeaderInteger(std::string("+1")).has_value());
    BOOST_TEST(!parseHeaderInteger(std::string("12abc")).has_value());
    BOOST_TEST(!parseHeaderInteger(std::string("")).has_value());
}

// Proves retry-after given as an HTTP date is measured against the server's Date header, and
// that without a Date the local clock is the fallback.
BOOST_AUTO_TEST_CASE(retry_after_http_date_and_missing_date) {
    FixedRandom zero(0.0);
    ResponseSummary r;
    r.status = 429;
    r.retryAfter = "Tue, 14 Nov 2023 22:14:50 GMT";  // server now + 90 s
    r.date = kServerDate;
    BOOST_TEST(decide(r, 1, policy(), kWrongLocalClock, zero).wait.count() == 90'000);

    ResponseSummary p;
    p.status = 403;
    p.rateLimitRemaining = "0";
    p.rateLimitReset = std::to_string(kServerNow + 300);
    BOOST_TEST(decide(p, 1, policy(), kServerNow + 100, zero).wait.count() == 200'000);
}

// Proves the HTTP date parser reads the RFC 1123 form servers send.
BOOST_AUTO_TEST_CASE(http_date_parses) {
    BOOST_TEST(parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT").value_or(-1) == 784111777);
    BOOST_TEST(parseHttpDate(kServerDate).value_or(-1) == kServerNow);
    BOOST_TEST(!parseHttpDate("yesterday").has_value());
}
