// Proves announcements are filtered as the protocol demands, one warning per dropped entry.
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "common/repo_name.hpp"
#include "proxy/announcement_filter.hpp"

#include <ostream>

using namespace rra;
using namespace rra::proxy;

namespace {

std::vector<config::ComponentConfig> components() {
    config::ComponentConfig web;
    web.name = "web-ui";
    web.type = "tarball";
    web.repo = "acme/web-ui";
    config::ComponentConfig beta = web;
    beta.name = "beta";
    beta.repo = "acme/beta";
    beta.allowPrerelease = true;
    return {web, beta};
}

struct FilterCase {
    std::string name;
    Announcement in;
    bool accepted;
    std::string warningMentions;  // besides component and tag
};
std::ostream& operator<<(std::ostream& os, const FilterCase& c) {
    return os << c.name;
}

const std::vector<FilterCase> kCases = {
    {"plain release", {"web-ui", "acme/web-ui", "v2.4.0", ""}, true, ""},
    {"no v prefix", {"web-ui", "acme/web-ui", "2.4.0", ""}, true, ""},
    {"repo differs only in case", {"web-ui", "Acme/Web-UI", "v2.4.0", ""}, true, ""},
    {"unknown component", {"printer", "acme/printer", "v1.0.0", ""}, false, "not managed"},
    {"repo mismatch", {"web-ui", "evil/web-ui", "v2.4.0", ""}, false, "evil/web-ui"},
    {"not semver", {"web-ui", "acme/web-ui", "latest", ""}, false, "not SemVer"},
    {"two-part version", {"web-ui", "acme/web-ui", "v2.4", ""}, false, "not SemVer"},
    {"pre-release not allowed", {"web-ui", "acme/web-ui", "v2.5.0-rc.1", ""}, false, "pre-release"},
    {"pre-release allowed", {"beta", "acme/beta", "v2.5.0-rc.1", ""}, true, ""},
    {"build metadata is not a pre-release", {"web-ui", "acme/web-ui", "v2.5.0+b7", ""}, true, ""},
};

}  // namespace

BOOST_AUTO_TEST_SUITE(announcement_filter)

BOOST_DATA_TEST_CASE(filter_table, boost::unit_test::data::make(kCases), c) {
    // Each entry is accepted, or dropped with exactly one warning naming component and tag.
    auto r = filterAnnouncements({c.in}, components());
    BOOST_TEST(r.accepted.size() == (c.accepted ? 1u : 0u));
    BOOST_TEST(r.warnings.size() == (c.accepted ? 0u : 1u));
    if (!c.accepted && r.warnings.size() == 1) {
        BOOST_TEST(r.warnings[0].find("'" + c.in.component + "'") != std::string::npos);
        BOOST_TEST(r.warnings[0].find("'" + c.in.tag + "'") != std::string::npos);
        BOOST_TEST(r.warnings[0].find(c.warningMentions) != std::string::npos, r.warnings[0]);
    }
}

BOOST_AUTO_TEST_CASE(batch_keeps_order_and_counts_warnings) {
    // A mixed batch keeps the accepted entries in order with one warning per dropped one.
    auto r = filterAnnouncements({{"web-ui", "acme/web-ui", "v1.0.0", ""},
                                  {"x", "acme/x", "v1.0.0", ""},
                                  {"web-ui", "acme/web-ui", "v1.1.0", ""},
                                  {"web-ui", "acme/web-ui", "bogus", ""}},
                                 components());
    BOOST_REQUIRE(r.accepted.size() == 2u);
    BOOST_TEST(r.accepted[0].tag == "v1.0.0");
    BOOST_TEST(r.accepted[1].tag == "v1.1.0");
    BOOST_TEST(r.warnings.size() == 2u);
}

BOOST_AUTO_TEST_CASE(same_repo_ignores_ascii_case_only) {
    // The shared helper the engine uses too: case-insensitive, otherwise exact.
    BOOST_TEST(common::sameRepo("acme/web-ui", "Acme/WEB-UI"));
    BOOST_TEST(common::sameRepo("", ""));
    BOOST_TEST(!common::sameRepo("acme/web-ui", "acme/web-ui2"));
    BOOST_TEST(!common::sameRepo("acme/web-ui", "acme/web_ui"));
    BOOST_TEST(!common::sameRepo("acme/web-ui", "acme/web-ui "));
}

BOOST_AUTO_TEST_CASE(proxy_text_in_warnings_is_one_bounded_line) {
    // A newline in a proxy-supplied component, tag or repo cannot forge a log line, and a
    // huge one does not make a huge line.
    auto r = filterAnnouncements({{"web-ui\nFAKE: rollback ok", "acme/web-ui", "v1", ""},
                                  {"web-ui", "evil/x\r\nFAKE", std::string(100000, 'v'), ""}},
                                 components());
    BOOST_REQUIRE(r.warnings.size() == 2u);
    for (const auto& w : r.warnings) {
        BOOST_TEST(w.find_first_of("\r\n") == std::string::npos, w);
        BOOST_TEST(w.size() < 400u);
    }
}

BOOST_AUTO_TEST_SUITE_END()
