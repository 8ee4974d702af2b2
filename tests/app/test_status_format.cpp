// What `raspi-release-agent --status` prints from the status file: every component's state,
// the proxy and the GitHub quota; a stale file (its agent gone) is flagged; a damaged file
// is an error naming the file.
#define BOOST_TEST_MODULE status_format
#include <boost/test/unit_test.hpp>

#include "app/status_format.hpp"

using rra::app::formatStatus;

namespace {

const char* kDoc = R"({
  "agent_version": "0.1.0", "pid": 4242, "agent_id": "pi-7",
  "proxy": "connected", "telemetry_pending": 2,
  "github_quota": {"limit": 5000, "remaining": 4990, "reset_epoch": 1000060},
  "components": [
    {"name": "web", "current": "v1.5.0", "in_flight": null, "phase": "idle",
     "candidates": [], "failed": ["v2.0.0", "v1.9.0"], "degraded": false},
    {"name": "sensor", "current": null, "in_flight": "v3.1.0", "phase": "download",
     "candidates": ["v3.2.0"], "failed": [], "degraded": true}
  ]
})";

bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_component_field_the_operator_needs_is_printed) {
    // Proves the text holds current, in-flight with phase, candidates, failed tags, the
    // degraded flag, the proxy state and the quota with the time to its reset.
    auto s = formatStatus(
        kDoc, "/run/x/status.json", [](int pid) { return pid == 4242; }, 1000000);
    BOOST_REQUIRE_MESSAGE(s.has_value(), (s ? std::string() : s.error().message()));
    const std::string& t = s->text;
    BOOST_TEST(s->agentRunning);
    BOOST_TEST(contains(t, "agent pi-7 (raspi-release-agent 0.1.0, pid 4242)"), t);
    BOOST_TEST(contains(t, "proxy: connected, 2 telemetry event(s) unacknowledged"), t);
    BOOST_TEST(contains(t, "github quota: 4990 of 5000 requests left, resets in 60 s"), t);
    BOOST_TEST(contains(t, "2 component(s)"), t);
    BOOST_TEST(contains(t, "  web\n    current:    v1.5.0\n    in flight:  none\n"), t);
    BOOST_TEST(contains(t, "    failed:     v2.0.0, v1.9.0\n"), t);
    BOOST_TEST(contains(t, "  sensor [DEGRADED]\n    current:    none\n"), t);
    BOOST_TEST(contains(t, "    in flight:  v3.1.0 (download)\n    candidates: v3.2.0\n"), t);
}

BOOST_AUTO_TEST_CASE(a_status_left_by_a_dead_agent_is_flagged) {
    // Proves a file whose pid no longer runs is not presented as the device's live state.
    auto s = formatStatus(
        kDoc, "/run/x/status.json", [](int) { return false; }, 1000000);
    BOOST_REQUIRE(s.has_value());
    BOOST_TEST(!s->agentRunning);
    BOOST_TEST(contains(s->text, "NOT RUNNING"), s->text);
}

BOOST_AUTO_TEST_CASE(no_quota_yet_is_said_plainly) {
    // Proves an agent that has not talked to GitHub yet says so instead of printing zeros.
    auto s = formatStatus(R"({"pid": 1, "github_quota": {}, "components": []})", "f",
                          [](int) { return true; }, 0);
    BOOST_REQUIRE(s.has_value());
    BOOST_TEST(contains(s->text, "github quota: unknown"), s->text);
    BOOST_TEST(contains(s->text, "0 component(s)"), s->text);
}

BOOST_AUTO_TEST_CASE(a_damaged_file_is_an_error_naming_it) {
    // Proves truncated or foreign content gives an error with the path, never a crash.
    for (const char* bad : {"{\"pid\": 1, \"compo", "[1,2]", "", "{\"components\": 7}"}) {
        auto s = formatStatus(
            bad, "/run/x/status.json", [](int) { return true; }, 0);
        BOOST_TEST_CONTEXT("input '" << bad << "'") {
            BOOST_REQUIRE(!s.has_value());
            BOOST_TEST(contains(s.error().message(), "/run/x/status.json"), s.error().message());
        }
    }
}
