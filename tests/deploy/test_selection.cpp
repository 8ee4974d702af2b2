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
    {"v4.0.0", std::string("v1.0.0"), false, Intake::kDuplicate},  // already a candidate
    {"v5.0.0", std::string("v1.0.0"), false, Intake::kDuplicate},  // in flight
};

}  // namespace

// Rule 2: older/equal, failed, duplicate, non-SemVer and disallowed pre-release tags are
// not remembered; newer ones are.
BOOST_DATA_TEST_CASE(rule02_announcement_intake_table, boost::unit_test::data::make(kIntake), c) {
    TagSet candidates;
    candidates.insert("v4.0.0");
    std::set<std::string> failed{"v3.0.0"};
    std::optional<std::string> inFlight = std::string("v5.0.0");
    IntakeView view{c.current, true, c.allowPre, candidates, failed, inFlight};
    BOOST_TEST(toString(classifyAnnouncement(c.tag, view)) == toString(c.expected));
}

// Rule 2: before discovery nothing counts as "not newer", so early announcements are kept.
BOOST_AUTO_TEST_CASE(rule02_before_discovery_everything_is_kept) {
    TagSet candidates;
    std::set<std::string> failed;
    std::optional<std::string> current, inFlight;
    IntakeView view{current, false, false, candidates, failed, inFlight};
    BOOST_TEST(toString(classifyAnnouncement("v0.0.1", view)) == toString(Intake::kAccepted));
}

// Rules 4 and 7: the newest non-failed candidate newer than current is next; none when
// every newer one failed.
BOOST_AUTO_TEST_CASE(rule07_next_target_newest_non_failed) {
    TagSet c;
    for (auto t : {"v1.0.0", "v2.0.0", "v3.0.0", "v4.0.0", "v10.0.0"})
        BOOST_TEST(c.insert(t));
    BOOST_TEST(!c.insert("v2.0.0"));
    BOOST_TEST(!c.insert("garbage"));
    std::optional<std::string> cur = std::string("v2.0.0");
    std::set<std::string> failed;
    BOOST_TEST(nextTarget(cur, std::nullopt, c, failed)->tag == "v10.0.0");
    failed = {"v10.0.0", "v4.0.0"};
    BOOST_TEST(nextTarget(cur, std::nullopt, c, failed)->tag == "v3.0.0");
    failed.insert("v3.0.0");
    BOOST_TEST(!nextTarget(cur, std::nullopt, c, failed).has_value());
    c.eraseNotNewerThan(cur);
    BOOST_TEST(c.newestFirst() == (std::vector<std::string>{"v10.0.0", "v4.0.0", "v3.0.0"}));
}

// Rule 12: a pin is the only target, a downgrade when older than current, nothing when
// already current or failed.
BOOST_AUTO_TEST_CASE(rule12_pin_target) {
    TagSet c;
    c.insert("v9.0.0");
    std::set<std::string> failed;
    std::optional<std::string> cur = std::string("v3.0.0");
    auto t = nextTarget(cur, std::string("v1.0.0"), c, failed);
    BOOST_REQUIRE(t);
    BOOST_TEST(t->tag == "v1.0.0");
    BOOST_TEST(t->isDowngrade);
    t = nextTarget(cur, std::string("v5.0.0"), c, failed);
    BOOST_TEST(t->tag == "v5.0.0");
    BOOST_TEST(!t->isDowngrade);
    BOOST_TEST(!nextTarget(cur, std::string("v3.0.0"), c, failed).has_value());
    failed.insert("v1.0.0");
    BOOST_TEST(!nextTarget(cur, std::string("v1.0.0"), c, failed).has_value());
}
