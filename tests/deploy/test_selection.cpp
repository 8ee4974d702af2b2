// Proves the pure selection rules (rules 2, 4, 7, 12) on tables, without threads.
#define BOOST_TEST_MODULE deploy
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "deploy/selection.hpp"

#include <ostream>

using namespace rra;
using namespace rra::deploy;

namespace {

struct IntakeCase {
    std::string tag;
    std::optional<std::string> current;
    bool allowPre;
    Intake expected;
};
std::ostream& operator<<(std::ostream& os, const IntakeCase& c) {
    return os << c.tag << " vs " << (c.current ? *c.current : "-") << " -> "
              << toString(c.expected);
}

const std::vector<IntakeCase> kIntake = {
    {"v2.0.0", std::string("v1.0.0"), false, Intake::kAccepted},
    {"2.0.0", std::string("v1.0.0"), false, Intake::kAccepted},
    {"v1.0.0", std::string("v1.0.0"), false, Intake::kNotNewer},
    {"1.0.0", std::string("v1.0.0"), false, Intake::kNotNewer},  // equal precedence
    {"v0.9.0", std::string("v1.0.0"), false, Intake::kNotNewer},
    {"latest", std::string("v1.0.0"), false, Intake::kNotSemVer},
    {"v2.0.0-rc.1", std::string("v1.0.0"), false, Intake::kPrerelease},
    {"v2.0.0-rc.1", std::string("v1.0.0"), true, Intake::kAccepted},
    {"v0.1.0", std::nullopt, false, Intake::kAccepted},  // nothing installed
    {"v3.0.0", std::string("v1.0.0"), false, Intake::kFailed},
    {"3.0.0", std::string("v1.0.0"), false, Intake::kFailed},      // equal precedence to failed
    {"v4.0.0", std::string("v1.0.0"), false, Intake::kDuplicate},  // already a candidate
    {"v5.0.0", std::string("v1.0.0"), false, Intake::kDuplicate},  // in flight
    {"5.0.0", std::string("v1.0.0"), false, Intake::kDuplicate},   // in flight, other spelling
};

}  // namespace

// Rule 2: older/equal, failed, duplicate, non-SemVer and disallowed pre-release tags are
// not remembered; newer ones are.
BOOST_DATA_TEST_CASE(rule02_announcement_intake_table, boost::unit_test::data::make(kIntake), c) {
    TagSet candidates;
    candidates.insert("v4.0.0");
    TagSet failed;
    failed.insert("v3.0.0");
    std::optional<std::string> inFlight = std::string("v5.0.0");
    IntakeView view{c.current, true, c.allowPre, candidates, failed, inFlight};
    BOOST_TEST(toString(classifyAnnouncement(c.tag, view)) == toString(c.expected));
}

// Rule 2: before discovery nothing counts as "not newer", so early announcements are kept.
BOOST_AUTO_TEST_CASE(rule02_before_discovery_everything_is_kept) {
    TagSet candidates, failed;
    std::optional<std::string> current, inFlight;
    IntakeView view{current, false, false, candidates, failed, inFlight};
    BOOST_TEST(toString(classifyAnnouncement("v0.0.1", view)) == toString(Intake::kAccepted));
}

namespace {
// nextTarget over plain values, for short tables below.
std::optional<Target> next(const std::optional<std::string>& current,
                           const std::optional<std::string>& pin, const TagSet& candidates,
                           std::vector<std::string> failedTags, bool allowPre = true,
                           std::vector<std::string> deferredTags = {}) {
    TagSet failed, deferred;
    for (const auto& t : failedTags)
        failed.insert(t);
    for (const auto& t : deferredTags)
        deferred.insert(t);
    return nextTarget(SelectionView{current, pin, allowPre, candidates, failed, deferred});
}
}  // namespace

// Rules 4 and 7: the newest non-failed candidate newer than current is next; none when
// every newer one failed.
BOOST_AUTO_TEST_CASE(rule07_next_target_newest_non_failed) {
    TagSet c;
    for (auto t : {"v1.0.0", "v2.0.0", "v3.0.0", "v4.0.0", "v10.0.0"})
        BOOST_TEST(c.insert(t));
    BOOST_TEST(!c.insert("v2.0.0"));
    BOOST_TEST(!c.insert("garbage"));
    std::optional<std::string> cur = std::string("v2.0.0");
    BOOST_TEST(next(cur, std::nullopt, c, {})->tag == "v10.0.0");
    BOOST_TEST(next(cur, std::nullopt, c, {"v10.0.0", "v4.0.0"})->tag == "v3.0.0");
    BOOST_TEST(!next(cur, std::nullopt, c, {"v10.0.0", "v4.0.0", "v3.0.0"}).has_value());
    c.eraseNotNewerThan(cur);
    BOOST_TEST(c.newestFirst() == (std::vector<std::string>{"v10.0.0", "v4.0.0", "v3.0.0"}));
}

// Rule 6: a failed tag is failed under every spelling of equal precedence.
BOOST_AUTO_TEST_CASE(rule06_failed_matches_equal_precedence) {
    TagSet c;
    c.insert("2.0.0");
    c.insert("v1.5.0");
    std::optional<std::string> cur = std::string("v1.0.0");
    BOOST_TEST(next(cur, std::nullopt, c, {"v2.0.0"})->tag == "v1.5.0");
}

// Rules 6 and 7: a transiently failed (deferred) tag is skipped while older candidates
// newer than current are still tried; a deferred pin waits.
BOOST_AUTO_TEST_CASE(rule07_deferred_skipped_older_tried) {
    TagSet c;
    for (auto t : {"v1.5.0", "v2.0.0", "v3.0.0"})
        c.insert(t);
    std::optional<std::string> cur = std::string("v1.0.0");
    BOOST_TEST(next(cur, std::nullopt, c, {}, true, {"v3.0.0"})->tag == "v2.0.0");
    BOOST_TEST(next(cur, std::nullopt, c, {"v2.0.0"}, true, {"v3.0.0"})->tag == "v1.5.0");
    BOOST_TEST(!next(cur, std::string("v3.0.0"), c, {}, true, {"v3.0.0"}).has_value());
}

// Rule 2 after a reload turned pre-releases off: pre-release candidates are not picked.
BOOST_AUTO_TEST_CASE(rule02_prerelease_candidates_filtered_when_disallowed) {
    TagSet c;
    c.insert("v3.0.0-rc.1");
    c.insert("v2.0.0");
    std::optional<std::string> cur = std::string("v1.0.0");
    BOOST_TEST(next(cur, std::nullopt, c, {}, true)->tag == "v3.0.0-rc.1");
    BOOST_TEST(next(cur, std::nullopt, c, {}, false)->tag == "v2.0.0");
}

// Rule 12: a pin is the only target, a downgrade when older than current, nothing when
// already current (under any spelling of equal precedence) or failed.
BOOST_AUTO_TEST_CASE(rule12_pin_target) {
    TagSet c;
    c.insert("v9.0.0");
    std::optional<std::string> cur = std::string("v3.0.0");
    auto t = next(cur, std::string("v1.0.0"), c, {});
    BOOST_REQUIRE(t);
    BOOST_TEST(t->tag == "v1.0.0");
    BOOST_TEST(t->isDowngrade);
    t = next(cur, std::string("v5.0.0"), c, {});
    BOOST_TEST(t->tag == "v5.0.0");
    BOOST_TEST(!t->isDowngrade);
    BOOST_TEST(!next(cur, std::string("v3.0.0"), c, {}).has_value());
    BOOST_TEST(!next(cur, std::string("3.0.0"), c, {}).has_value());
    BOOST_TEST(!next(cur, std::string("v1.0.0"), c, {"v1.0.0"}).has_value());
    BOOST_TEST(!next(cur, std::string("1.0.0"), c, {"v1.0.0"}).has_value());
}
