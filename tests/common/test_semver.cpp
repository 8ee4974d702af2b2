// Proves tag ordering follows SemVer 2.0.0 precedence with one leading v/V removed, and
// that anything not SemVer is rejected (the agent ignores such tags).
#define BOOST_TEST_MODULE common
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "common/semver.hpp"

using namespace rra;
namespace bdata = boost::unit_test::data;

namespace {
struct Order {
    const char* lower;
    const char* higher;
};
std::ostream& operator<<(std::ostream& os, const Order& o) {
    return os << o.lower << " < " << o.higher;
}
const Order kOrdered[] = {
    {"v1.9.3", "v1.10.0"},
    {"v1.9.3-rc.1", "v1.9.3"},
    {"1.0.0-alpha", "1.0.0-alpha.1"},
    {"1.0.0-alpha.1", "1.0.0-alpha.beta"},
    {"1.0.0-alpha.beta", "1.0.0-beta"},
    {"1.0.0-beta", "1.0.0-beta.2"},
    {"1.0.0-beta.2", "1.0.0-beta.11"},
    {"1.0.0-beta.11", "1.0.0-rc.1"},
    {"1.0.0-rc.1", "1.0.0"},
    {"V2.0.0", "v2.0.1"},
    {"0.9.99", "1.0.0"},
    {"1.2.3", "1.3.0"},
    {"18446744073709551614.0.0", "18446744073709551615.0.0"},
};
const char* kInvalid[] = {"",
                          "v",
                          "1",
                          "1.2",
                          "1.2.3.4",
                          "01.2.3",
                          "1.02.3",
                          "1.2.3-",
                          "1.2.3-01",
                          "1.2.3+",
                          "vv1.2.3",
                          "1.2.3-a..b",
                          "latest",
                          "1.2.3-a$",
                          " 1.2.3",
                          "1.2.3 ",
                          "-1.2.3",
                          "1.2.x",
                          "99999999999999999999.0.0"};
}  // namespace

BOOST_DATA_TEST_CASE(ordered_pairs_compare_by_precedence, bdata::make(kOrdered), o) {
    auto r = compareTags(o.lower, o.higher);
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(*r < 0);
    auto back = compareTags(o.higher, o.lower);
    BOOST_REQUIRE(back.has_value());
    BOOST_TEST(*back > 0);
}

BOOST_DATA_TEST_CASE(non_semver_tags_are_rejected, bdata::make(kInvalid), tag) {
    BOOST_TEST(!parseSemVer(tag).has_value(), "accepted '" << tag << "'");
}

BOOST_AUTO_TEST_CASE(build_metadata_is_ignored_and_leading_v_is_stripped) {
    BOOST_TEST(*compareTags("v1.2.3+build.1", "1.2.3+build.2") == 0);
    BOOST_TEST(tagVersion("v1.2.3") == "1.2.3");
    BOOST_TEST(tagVersion("1.2.3") == "1.2.3");
    auto v = parseSemVer("v1.2.3-rc.1+exp.sha.5114f85");
    BOOST_REQUIRE(v);
    BOOST_TEST(v->isPrerelease());
    BOOST_TEST(v->build == "exp.sha.5114f85");
}
