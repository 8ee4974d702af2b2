// Proves the deployment engine's rules (issue 5) by number, with fake deployers, a fake
// fetcher and a fake clock: a table of queue/rollback scenarios, then one case per rule
// that needs threads, markers, reloads or shutdown.
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "deploy/inflight_marker.hpp"
#include "harness.hpp"

#include <filesystem>
#include <fstream>
#include <ostream>

using namespace rra;
using namespace rra::deploy;
using namespace rra::deploy::test;
using Lines = std::vector<std::string>;

namespace {

struct Scenario {
    std::string name;
    std::optional<std::string> initial;
    std::vector<std::vector<std::string>> batches;  // engine goes idle after each
    std::set<std::string> installFails, verifyFails, refuses;
    std::map<std::string, ErrorCode> fetchErrors;
    bool rollbackFails = false;
    Lines calls;      // deployer calls after discovery
    Lines telemetry;  // RecordingSink::line form
    std::optional<std::string> current;
    bool degraded = false;
};
std::ostream& operator<<(std::ostream& os, const Scenario& s) {
    return os << s.name;
}

const std::string A = "web";

const std::vector<Scenario> kScenarios = {
    {"rule04_sync_batch_applies_newest_only",
     std::string("v1.0.0"),
     {{"v2.0.0", "v4.0.0", "v3.0.0"}},
     {},
     {},
     {},
     {},
     false,
     {"install v4.0.0 from v1.0.0", "verify v4.0.0"},
     {"apply_started web v4.0.0 from v1.0.0", "apply_succeeded web v4.0.0 from v1.0.0"},
     std::string("v4.0.0")},
    {"rule07_v4_fails_v3_fails_v2_succeeds",
     std::string("v1.0.0"),
     {{"v2.0.0", "v3.0.0", "v4.0.0"}},
     {"v4.0.0"},
     {"v3.0.0"},
     {},
     {},
     false,
     {"install v4.0.0 from v1.0.0", "rollback v1.0.0 failed v4.0.0", "install v3.0.0 from v1.0.0",
      "verify v3.0.0", "rollback v1.0.0 failed v3.0.0", "install v2.0.0 from v1.0.0",
      "verify v2.0.0"},
     {"apply_started web v4.0.0 from v1.0.0",
      "apply_failed web v4.0.0 from v1.0.0 install rb=v1.0.0 ok=1",
      "apply_started web v3.0.0 from v1.0.0",
      "apply_failed web v3.0.0 from v1.0.0 verify rb=v1.0.0 ok=1",
      "apply_started web v2.0.0 from v1.0.0", "apply_succeeded web v2.0.0 from v1.0.0"},
     std::string("v2.0.0")},
    {"rule06_failed_tag_announced_again_is_ignored",
     std::string("v1.0.0"),
     {{"v2.0.0"}, {"v2.0.0"}, {"v2.0.0", "v1.0.0"}},
     {"v2.0.0"},
     {},
     {},
     {},
     false,
     {"install v2.0.0 from v1.0.0", "rollback v1.0.0 failed v2.0.0"},
     {"apply_started web v2.0.0 from v1.0.0",
      "apply_failed web v2.0.0 from v1.0.0 install rb=v1.0.0 ok=1"},
     std::string("v1.0.0")},
    {"rule06_bad_download_changes_nothing_and_fails_tag",
     std::string("v1.0.0"),
     {{"v2.0.0"}, {"v2.0.0"}},
     {},
     {},
     {},
     {{"v2.0.0", ErrorCode::kMismatch}},
     false,
     {},
     {"apply_started web v2.0.0 from v1.0.0",
      "apply_failed web v2.0.0 from v1.0.0 download rb=v1.0.0 ok=1"},
     std::string("v1.0.0")},
    {"rule06_bad_download_falls_back_to_older",
     std::string("v1.0.0"),
     {{"v2.0.0", "v3.0.0"}},
     {},
     {},
     {},
     {{"v3.0.0", ErrorCode::kNotFound}},
     false,
     {"install v2.0.0 from v1.0.0", "verify v2.0.0"},
     {"apply_started web v3.0.0 from v1.0.0",
      "apply_failed web v3.0.0 from v1.0.0 download rb=v1.0.0 ok=1",
      "apply_started web v2.0.0 from v1.0.0", "apply_succeeded web v2.0.0 from v1.0.0"},
     std::string("v2.0.0")},
    {"rule06_refused_install_touches_nothing",
     std::string("v1.0.0"),
     {{"v2.0.0"}},
     {},
     {},
     {"v2.0.0"},
     {},
     false,
     {"install v2.0.0 from v1.0.0"},
     {"apply_started web v2.0.0 from v1.0.0",
      "apply_failed web v2.0.0 from v1.0.0 install rb=v1.0.0 ok=1"},
     std::string("v1.0.0")},
    {"rule06_first_install_fails_rolls_back_to_nothing",
     std::nullopt,
     {{"v1.0.0"}},
     {},
     {"v1.0.0"},
     {},
     {},
     false,
     {"install v1.0.0 from -", "verify v1.0.0", "rollback - failed v1.0.0"},
     {"apply_started web v1.0.0 from -", "apply_failed web v1.0.0 from - verify rb=- ok=1"},
     std::nullopt},
    {"rule07_all_newer_fail_rests_on_current",
     std::string("v1.0.0"),
     {{"v2.0.0", "v3.0.0"}},
     {"v2.0.0", "v3.0.0"},
     {},
     {},
     {},
     false,
     {"install v3.0.0 from v1.0.0", "rollback v1.0.0 failed v3.0.0", "install v2.0.0 from v1.0.0",
      "rollback v1.0.0 failed v2.0.0"},
     {"apply_started web v3.0.0 from v1.0.0",
      "apply_failed web v3.0.0 from v1.0.0 install rb=v1.0.0 ok=1",
      "apply_started web v2.0.0 from v1.0.0",
      "apply_failed web v2.0.0 from v1.0.0 install rb=v1.0.0 ok=1"},
     std::string("v1.0.0")},
    {"rule02_older_equal_prerelease_nonsemver_ignored",
     std::string("v3.0.0"),
     {{"v1.0.0", "v3.0.0", "3.0.0", "v4.0.0-rc.1", "latest"}},
     {},
     {},
     {},
     {},
     false,
     {},
     {},
     std::string("v3.0.0")},
    {"rule08_rollback_failure_degrades_and_reports_discovered",
     std::string("v1.0.0"),
     {{"v2.0.0"}, {"v1.5.0"}},
     {"v2.0.0"},
     {},
     {},
     {},
     true,
     {"install v2.0.0 from v1.0.0", "rollback v1.0.0 failed v2.0.0", "discover"},
     {"apply_started web v2.0.0 from v1.0.0",
      "apply_failed web v2.0.0 from v1.0.0 install rb=v2.0.0 ok=0"},
     std::string("v2.0.0"),
     true},
};

}  // namespace

// Rules 4, 5, 6, 7, 8 as a table: announced batches and injected failures produce exactly
// these deployer calls, this telemetry and this final state.
BOOST_DATA_TEST_CASE(rules_queue_and_rollback_table, boost::unit_test::data::make(kScenarios), s) {
    Harness h;
    auto dep = h.add(A, s.initial);
    dep->installFails = s.installFails;
    dep->verifyFails = s.verifyFails;
    dep->installRefuses = s.refuses;
    dep->rollbackFails = s.rollbackFails;
    for (auto& [tag, code] : s.fetchErrors)
        h.fetcher.failWith(A, tag, code);
    h.start();
    for (const auto& batch : s.batches) {
        std::vector<Announcement> b;
        for (auto& t : batch)
            b.push_back(ann(A, t));
        h.announce(b);
        h.idle();
    }
    auto calls = dep->calls();
    BOOST_REQUIRE(!calls.empty());
    BOOST_TEST(calls.front() == "discover");
    Lines after(calls.begin() + 1, calls.end());
    BOOST_TEST(after == s.calls, boost::test_tools::per_element());
    BOOST_TEST(h.sink.lines() == s.telemetry, boost::test_tools::per_element());
    auto st = h.status(A);
    BOOST_TEST((st.current == s.current));
    BOOST_TEST(st.degraded == s.degraded);
    BOOST_TEST(dep->maxConcurrentHooks() == 1);
    // Rule 11: the marker outlives a failed rollback, for the next run to repair.
    BOOST_TEST(std::filesystem::exists(h.markerPath(A)) == s.rollbackFails);
}

// Rule 5: apply_started comes before the download, and the closing event carries from_tag,
// the fake-clock duration and the wall-clock time.
BOOST_AUTO_TEST_CASE(rule05_telemetry_fields) {
    Harness h;
    h.add(A, std::string("v1.0.0"))->verifyFails = {"v3.0.0"};
    h.fetcher.advancePerFetch = Millis(1500);
    h.start();
    auto t0 = h.clock.wallNow();
    h.announce({ann(A, "v2.0.0")});
    h.idle();
    h.announce({ann(A, "v3.0.0")});
    h.idle();
    auto ev = h.sink.events();
    BOOST_REQUIRE_EQUAL(ev.size(), 4u);
    BOOST_TEST(ev[0].at == t0);  // stamped before the download advanced the clock
    BOOST_TEST(!ev[0].durationMs.has_value());
    BOOST_TEST(ev[1].event == TelemetryKind::kApplySucceeded);
    BOOST_TEST(*ev[1].durationMs == 1500);
    BOOST_TEST(ev[1].at == t0 + Millis(1500));
    BOOST_TEST(!ev[1].phase.has_value());
    BOOST_TEST(*ev[2].fromTag == "v2.0.0");
    BOOST_TEST(ev[3].event == TelemetryKind::kApplyFailed);
    BOOST_TEST(*ev[3].durationMs == 1500);
    BOOST_TEST(*ev[3].error == "verify: v3.0.0 unhealthy");
    BOOST_TEST(ev[3].id.empty());  // the proxy client fills it
    BOOST_TEST(h.fetcher.discards() == (Lines{"web/v2.0.0", "web/v3.0.0"}));
}

// Rule 1: discovery decides current (a release or nothing) before anything is applied.
BOOST_AUTO_TEST_CASE(rule01_discovery_sets_current) {
    Harness h;
    h.add("a", std::string("v1.2.0"));
    h.add("b", std::nullopt);
    h.start();
    auto inv = h.engine->inventory();
    BOOST_REQUIRE_EQUAL(inv.size(), 2u);
    BOOST_TEST(inv[0].name == "a");
    BOOST_TEST(*inv[0].current == "v1.2.0");
    BOOST_TEST(inv[0].repo == "acme/a");
    BOOST_TEST(inv[0].kind == "fake");
    BOOST_TEST(!inv[1].current.has_value());
    BOOST_TEST(h.sink.events().empty());
}

// Rule 1: a discovery failure leaves the component alone (degraded) until a new release
// is announced; the other component is managed normally.
BOOST_AUTO_TEST_CASE(rule01_discovery_failure_isolated) {
    Harness h;
    h.add("a", std::string("v1.0.0"))->discoverFails = true;
    h.add("b", std::string("v1.0.0"));
    h.start();
    BOOST_TEST(h.status("a").degraded);
    h.announce({ann("b", "v2.0.0")});
    h.idle();
    BOOST_TEST(*h.status("b").current == "v2.0.0");
    h.d["a"]->discoverFails = false;
    h.announce({ann("a", "v2.0.0")});
    h.idle();
    BOOST_TEST(*h.status("a").current == "v2.0.0");
}

// Rule 4: 20 announcements during one slow apply lead to exactly one further apply, of the
// newest; the ones in between are skipped.
BOOST_AUTO_TEST_CASE(rule04_twenty_announcements_during_slow_apply) {
    Harness h;
    auto dep = h.add(A, std::string("v1.0.0"));
    auto gate = std::make_shared<Gate>();
    dep->installGates["v2.0.0"] = gate;
    h.start();
    h.announce({ann(A, "v2.0.0")});
    BOOST_REQUIRE(gate->waitForWaiters(1));
    for (int i = 3; i <= 22; ++i)
        h.announce({ann(A, "v" + std::to_string(i) + ".0.0")});
    auto st = h.status(A);
    BOOST_TEST(*st.inFlight == "v2.0.0");
    BOOST_TEST(st.phase == "install");
    BOOST_TEST(st.candidates.size() == 21u);  // v2 (in flight) and the 20 newer
    gate->open();
    h.idle();
    BOOST_TEST(h.installs(A) ==
               (Lines{"install v2.0.0 from v1.0.0", "install v22.0.0 from v2.0.0"}));
    BOOST_TEST(*h.status(A).current == "v22.0.0");
    BOOST_TEST(h.status(A).candidates.empty());
}

// Rule 3: two components apply concurrently while a third hangs in verify; the hung one
// delays nobody, and shutdown cancels it.
BOOST_AUTO_TEST_CASE(rule03_two_apply_concurrently_while_third_hangs) {
    Harness h;
    auto a = h.add("a", std::string("v1.0.0"));
    auto b = h.add("b", std::string("v1.0.0"));
    auto c = h.add("c", std::string("v1.0.0"));
    auto both = std::make_shared<Gate>();
    a->installGates["v2.0.0"] = both;
    b->installGates["v2.0.0"] = both;
    c->verifyGates["v2.0.0"] = std::make_shared<Gate>();  // never opened: hangs
    h.start();
    h.announce({ann("c", "v2.0.0")});
    BOOST_REQUIRE(c->verifyGates["v2.0.0"]->waitForWaiters(1));
    h.announce({ann("a", "v2.0.0"), ann("b", "v2.0.0")});
    BOOST_REQUIRE(both->waitForWaiters(2));  // a and b are inside install at the same time
    both->open();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while ((h.status("a").phase != "idle" || h.status("b").phase != "idle") &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(Millis(2));
    BOOST_TEST(*h.status("a").current == "v2.0.0");
    BOOST_TEST(*h.status("b").current == "v2.0.0");
    BOOST_TEST(h.status("c").phase == "verify");
    BOOST_TEST(!h.engine->waitIdle(Millis(20)));
    BOOST_TEST(h.engine->shutdown(Millis(5000)));
    BOOST_TEST(c->cancelled());
}

// Rule 3: downloads share agent.max_parallel_downloads slots across components.
BOOST_AUTO_TEST_CASE(rule03_download_slots_are_shared) {
    Harness h;
    h.opts.maxParallelDownloads = 2;
    auto gate = std::make_shared<Gate>();
    auto batch = h.addHeldAtGate(5, gate);
    h.start();
    h.announce(batch);
    BOOST_REQUIRE(gate->waitForWaiters(2));
    BOOST_TEST(!gate->waitForWaiters(3, Millis(50)));
    gate->open();
    h.idle();
    BOOST_TEST(h.fetcher.maxConcurrent() == 2);
    BOOST_TEST(h.fetcher.fetches().size() == 5u);
}

// Rule 3: a random delay of up to apply_jitter_s precedes each apply, on the clock (the
// fake clock records it), before apply_started.
BOOST_AUTO_TEST_CASE(rule03_apply_jitter) {
    Harness h;
    h.opts.applyJitterS = 30;  // FixedRandom(0.5): 15 s
    h.add(A, std::string("v1.0.0"));
    h.start();
    auto t0 = h.clock.wallNow();
    h.announce({ann(A, "v2.0.0")});
    h.idle();
    BOOST_TEST(h.clock.sleeps() == (std::vector<Millis>{Millis(15000)}));
    BOOST_TEST(h.sink.events().at(0).at == t0 + Millis(15000));
}

// Rules 6 and 7: a transient download failure keeps the tag a candidate (not failed) but
// defers it to the next announcement (re-sync); meanwhile the older candidate is tried
// like after any failure, and the re-sync then brings the deferred one.
BOOST_AUTO_TEST_CASE(rule06_transient_download_retried_at_next_announcement) {
    Harness h;
    h.add(A, std::string("v1.0.0"));
    h.fetcher.failWith(A, "v3.0.0", ErrorCode::kNetwork, 1);
    h.start();
    h.announce({ann(A, "v2.0.0"), ann(A, "v3.0.0")});
    h.idle();
    BOOST_TEST(h.installs(A) == Lines{"install v2.0.0 from v1.0.0"});
    auto st = h.status(A);
    BOOST_TEST(st.failed.empty());
    BOOST_TEST(st.candidates == Lines{"v3.0.0"});
    h.announce({ann(A, "v3.0.0")});  // re-sync repeats it
    h.idle();
    BOOST_TEST(h.installs(A) ==
               (Lines{"install v2.0.0 from v1.0.0", "install v3.0.0 from v2.0.0"}));
    BOOST_TEST(
        h.sink.lines() ==
        (Lines{"apply_started web v3.0.0 from v1.0.0",
               "apply_failed web v3.0.0 from v1.0.0 download rb=v1.0.0 ok=1",
               "apply_started web v2.0.0 from v1.0.0", "apply_succeeded web v2.0.0 from v1.0.0",
               "apply_started web v3.0.0 from v2.0.0", "apply_succeeded web v3.0.0 from v2.0.0"}));
}

// Rules 4 and 6: a release announced while another downloads is applied next even when
// that download fails transiently (the failed one is deferred, not blocking the newer).
BOOST_AUTO_TEST_CASE(rule04_newer_announced_during_transient_failure_is_applied) {
    Harness h;
    h.add(A, std::string("v1.0.0"));
    auto gate = std::make_shared<Gate>();
    h.fetcher.holdOn(A, "v2.0.0", gate);
    h.fetcher.failWith(A, "v2.0.0", ErrorCode::kNetwork, 1);
    h.start();
    h.announce({ann(A, "v2.0.0")});
    BOOST_REQUIRE(gate->waitForWaiters(1));
    h.announce({ann(A, "v3.0.0")});
    gate->open();
    h.idle();
    BOOST_TEST(h.installs(A) == Lines{"install v3.0.0 from v1.0.0"});
    BOOST_TEST(*h.status(A).current == "v3.0.0");
    BOOST_TEST(h.status(A).failed.empty());
}

// Rule 6: the failed set and the pin compare by SemVer precedence: 2.0.0 is the failed
// v2.0.0, and a pin 1.2.3 is satisfied by a discovered v1.2.3.
BOOST_AUTO_TEST_CASE(rule06_tag_spellings_of_equal_precedence_are_one_release) {
    {
        Harness h;
        h.add(A, std::string("v1.0.0"))->installFails = {"v2.0.0"};
        h.start();
        h.announce({ann(A, "v2.0.0")});
        h.idle();
        h.announce({ann(A, "2.0.0")});
        h.idle();
        BOOST_TEST(h.installs(A) == Lines{"install v2.0.0 from v1.0.0"});
    }
    {
        Harness h;
        h.add(A, std::string("v1.2.3"), std::string("1.2.3"));
        h.start();
        BOOST_TEST(h.installs(A).empty());
    }
}

// Rule 2: a reload that turns allow_prerelease off keeps pre-release candidates from
// being applied.
BOOST_AUTO_TEST_CASE(rule02_prerelease_disallowed_by_reload_not_applied) {
    Harness h;
    auto a = h.add(A, std::string("v1.0.0"));
    h.managed[0].first.allowPrerelease = true;
    auto gate = std::make_shared<Gate>();
    a->installGates["v2.0.0"] = gate;
    h.start();
    h.announce({ann(A, "v2.0.0")});
    BOOST_REQUIRE(gate->waitForWaiters(1));
    h.announce({ann(A, "v3.0.0-rc.1")});
    BOOST_TEST(h.status(A).candidates.size() == 2u);
    auto cfg = component(A);
    cfg.allowPrerelease = false;
    h.engine->setComponents({{cfg, a}});
    gate->open();
    h.idle();
    BOOST_TEST(h.installs(A) == Lines{"install v2.0.0 from v1.0.0"});
    BOOST_TEST(*h.status(A).current == "v2.0.0");
}

// Rule 8: a degraded component is not touched by known tags, comes back with a new
// release, and other components carry on meanwhile.
BOOST_AUTO_TEST_CASE(rule08_degraded_until_new_release) {
    Harness h;
    auto a = h.add("a", std::string("v1.0.0"));
    h.add("b", std::string("v1.0.0"));
    a->installFails = {"v2.0.0"};
    a->rollbackFails = true;
    h.start();
    h.announce({ann("a", "v2.0.0"), ann("b", "v2.0.0")});
    h.idle();
    BOOST_TEST(h.status("a").degraded);
    BOOST_TEST(h.status("a").phase == "degraded");
    BOOST_TEST(*h.status("b").current == "v2.0.0");
    size_t before = a->calls().size();
    h.announce({ann("a", "v2.0.0"), ann("a", "v1.0.0")});
    h.idle();
    BOOST_TEST(a->calls().size() == before);
    a->rollbackFails = false;
    h.announce({ann("a", "v3.0.0")});
    h.idle();
    BOOST_TEST(!h.status("a").degraded);
    BOOST_TEST(*h.status("a").current == "v3.0.0");
    BOOST_TEST(h.installs("a").back() == "install v3.0.0 from v2.0.0");  // rediscovered first
}

// Rule 8: after a rollback failed (leaving nothing installed), a re-sync that repeats
// tags announced before is not a new release: the component stays untouched; a tag never
// announced before ends the degraded state.
BOOST_AUTO_TEST_CASE(rule08_resync_of_known_tags_does_not_end_degraded) {
    Harness h;
    auto a = h.add(A, std::string("v1.0.0"));
    h.start();
    h.announce({ann(A, "v2.0.0")});
    h.idle();
    a->installFails = {"v3.0.0"};
    a->rollbackFails = true;
    a->rollbackFailureLeaves = std::optional<std::string>();
    h.announce({ann(A, "v3.0.0")});
    h.idle();
    BOOST_TEST(h.status(A).degraded);
    BOOST_TEST(!h.status(A).current.has_value());
    size_t before = a->calls().size();
    h.announce({ann(A, "v2.0.0"), ann(A, "v3.0.0")});  // re-sync
    h.idle();
    BOOST_TEST(a->calls().size() == before);
    BOOST_TEST(h.status(A).degraded);
    a->rollbackFails = false;
    h.announce({ann(A, "v4.0.0")});
    h.idle();
    BOOST_TEST(!h.status(A).degraded);
    BOOST_TEST(*h.status(A).current == "v4.0.0");
}

// Rule 8: a hook that misses its deadline retires the deployer: no rollback call, the
// component is degraded for good, rollback_ok is false.
BOOST_AUTO_TEST_CASE(rule08_hook_timeout_degrades_without_rollback) {
    Harness h;
    auto a = h.add(A, std::string("v1.0.0"));
    a->verifyTimesOut = {"v2.0.0"};
    h.start();
    h.announce({ann(A, "v2.0.0")});
    h.idle();
    BOOST_TEST(a->calls() == (Lines{"discover", "install v2.0.0 from v1.0.0", "verify v2.0.0"}));
    auto ev = h.sink.events();
    BOOST_REQUIRE_EQUAL(ev.size(), 2u);
    BOOST_TEST(!*ev[1].rollbackOk);
    BOOST_TEST(ev[1].error->find("timed out") != std::string::npos);
    BOOST_TEST(h.status(A).degraded);
    h.announce({ann(A, "v3.0.0")});  // a retired deployer is never called again
    h.idle();
    BOOST_TEST(a->calls().size() == 3u);
    // The marker stays for the next run, whose fresh instance repairs the component.
    BOOST_TEST(std::filesystem::exists(h.markerPath(A)));
}

// Rule 9: reload adds (discovered, in inventory), removes (in-flight apply finishes,
// nothing uninstalled, later announcements ignored) and changes (new verify timeout from
// the next deployment).
BOOST_AUTO_TEST_CASE(rule09_reload_add_remove_change) {
    Harness h;
    auto a = h.add("a", std::string("v1.0.0"));
    auto b = h.add("b", std::string("v1.0.0"));
    auto gate = std::make_shared<Gate>();
    b->installGates["v2.0.0"] = gate;
    h.start();
    h.announce({ann("b", "v2.0.0")});
    BOOST_REQUIRE(gate->waitForWaiters(1));

    auto cfgA = component("a");
    cfgA.verifyTimeoutS = 7;
    auto c = std::make_shared<FakeDeployer>("c", std::string("v5.0.0"));
    h.engine->setComponents({{cfgA, a}, {component("c"), c}});
    BOOST_REQUIRE(h.engine->waitDiscovered(Millis(5000)));
    auto inv = h.engine->inventory();
    BOOST_REQUIRE_EQUAL(inv.size(), 2u);
    BOOST_TEST(inv[0].name == "a");
    BOOST_TEST(inv[1].name == "c");
    BOOST_TEST(*inv[1].current == "v5.0.0");

    gate->open();  // the removed component's apply finishes and is reported
    h.idle();
    BOOST_TEST(b->calls() == (Lines{"discover", "install v2.0.0 from v1.0.0", "verify v2.0.0"}));
    BOOST_TEST(h.sink.lines("b").back() == "apply_succeeded b v2.0.0 from v1.0.0");
    h.announce({ann("b", "v3.0.0"), ann("a", "v2.0.0")});
    h.idle();
    BOOST_TEST(b->calls().size() == 3u);
    BOOST_TEST(a->verifyTimeouts() == std::vector<Millis>{Millis(7000)});
}

// Rule 9: a changed repo forgets candidates and failed tags and rediscovers.
BOOST_AUTO_TEST_CASE(rule09_identity_change_resets) {
    Harness h;
    auto a = h.add(A, std::string("v1.0.0"));
    a->installFails = {"v2.0.0"};
    h.start();
    h.announce({ann(A, "v2.0.0")});
    h.idle();
    BOOST_TEST(h.status(A).failed == Lines{"v2.0.0"});
    auto cfg = component(A);
    cfg.repo = "acme/other";
    auto fresh = std::make_shared<FakeDeployer>(A, std::string("v1.0.0"));
    h.engine->setComponents({{cfg, fresh}});
    h.idle();
    BOOST_TEST(h.status(A).failed.empty());
    BOOST_TEST(fresh->calls() == Lines{"discover"});
    h.engine->announce({Announcement{A, "acme/other", "v2.0.0", ""}, ann(A, "v9.0.0")});
    h.idle();
    BOOST_TEST(fresh->calls().back() == "verify v2.0.0");  // the old repo's v9 was ignored
}

// Rule 6 across reloads: a failed tag stays failed after the component is removed (its
// worker ended) and added again with the same repo.
BOOST_AUTO_TEST_CASE(rule06_failed_set_survives_remove_and_readd) {
    Harness h;
    auto a = h.add(A, std::string("v1.0.0"));
    a->installFails = {"v2.0.0"};
    h.start();
    h.announce({ann(A, "v2.0.0")});
    h.idle();
    h.engine->setComponents({});
    h.idle();
    auto again = std::make_shared<FakeDeployer>(A, std::string("v1.0.0"));
    h.engine->setComponents({{component(A), again}});
    BOOST_REQUIRE(h.engine->waitDiscovered(Millis(5000)));
    h.idle();
    BOOST_TEST(h.status(A).failed == Lines{"v2.0.0"});
    h.announce({ann(A, "v2.0.0")});
    h.idle();
    BOOST_TEST(again->calls() == Lines{"discover"});
}

// Rule 9: fixing a component's asset makes its failed releases eligible again at once
// (no new release needed); a repo change instead forgets the old repo's candidates.
BOOST_AUTO_TEST_CASE(rule09_asset_change_retries_failed_keeps_candidates) {
    Harness h;
    auto a = h.add(A, std::string("v1.0.0"));
    h.fetcher.failWith(A, "v2.0.0", ErrorCode::kNotFound, 1);  // wrong asset pattern
    h.start();
    h.announce({ann(A, "v2.0.0")});
    h.idle();
    BOOST_TEST(h.status(A).failed == Lines{"v2.0.0"});
    BOOST_TEST(h.installs(A).empty());
    auto cfg = component(A);
    cfg.asset = A + "-{version}-fixed.tar.gz";
    h.engine->setComponents({{cfg, a}});
    BOOST_REQUIRE(h.engine->waitDiscovered(Millis(5000)));
    h.idle();
    BOOST_TEST(h.status(A).failed.empty());
    BOOST_TEST(h.installs(A) == Lines{"install v2.0.0 from v1.0.0"});
    BOOST_TEST(*h.status(A).current == "v2.0.0");
}

// The proxy's filter compares repos case-insensitively (GitHub does); the engine must not
// drop what the filter let through.
BOOST_AUTO_TEST_CASE(announcement_repo_compared_case_insensitively) {
    Harness h;
    h.add(A, std::string("v1.0.0"));
    h.managed[0].first.repo = "Acme/Web";
    h.start();
    h.announce({Announcement{A, "acme/web", "v2.0.0", ""}});
    h.idle();
    BOOST_TEST(*h.status(A).current == "v2.0.0");
}

// Rule 10: shutdown cancels a hanging download and a hanging install within the budget;
// the interrupted install leaves an "interrupted" marker, the download none.
BOOST_AUTO_TEST_CASE(rule10_shutdown_cancels_downloads_and_hooks) {
    Harness h;
    auto a = h.add("a", std::string("v1.0.0"));
    h.add("b", std::string("v1.0.0"));
    auto hang = std::make_shared<Gate>();
    a->installGates["v2.0.0"] = hang;
    h.fetcher.holdOn("b", "v2.0.0", hang);
    h.start();
    h.announce({ann("a", "v2.0.0"), ann("b", "v2.0.0")});
    BOOST_REQUIRE(hang->waitForWaiters(2));
    auto t0 = std::chrono::steady_clock::now();
    BOOST_TEST(h.engine->shutdown(Millis(5000)));
    BOOST_TEST(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));
    BOOST_TEST(a->cancelled());
    MarkerStore store(h.runtimeDir);
    auto mk = store.read("a");
    BOOST_REQUIRE(mk && *mk);
    BOOST_TEST((*mk)->interrupted);
    BOOST_TEST((*mk)->phase == ApplyPhase::kInstall);
    BOOST_TEST(!std::filesystem::exists(h.markerPath("b")));
    BOOST_TEST(h.sink.lines("b").back() ==
               "apply_failed b v2.0.0 from v1.0.0 download rb=v1.0.0 ok=1");
    h.announce({ann("a", "v3.0.0")});  // nothing starts after shutdown
    BOOST_TEST(h.engine->waitIdle(Millis(1000)));
    BOOST_TEST(h.installs("a").size() == 1u);
}

// Rule 10: shutdown cancels the deployer instance a hook is running on, even after a
// reload replaced the component's instance (the new one is idle).
BOOST_AUTO_TEST_CASE(rule10_shutdown_cancels_instance_in_use_after_reload) {
    Harness h;
    auto old = h.add(A, std::string("v1.0.0"));
    auto hang = std::make_shared<Gate>();
    old->installGates["v2.0.0"] = hang;
    h.start();
    h.announce({ann(A, "v2.0.0")});
    BOOST_REQUIRE(hang->waitForWaiters(1));
    auto cfg = component(A);
    cfg.verifyTimeoutS = 5;  // a changed setting: the runtime hands over a new instance
    auto fresh = std::make_shared<FakeDeployer>(A, std::string("v1.0.0"));
    h.engine->setComponents({{cfg, fresh}});
    BOOST_TEST(h.engine->shutdown(Millis(5000)));
    BOOST_TEST(old->cancelled());
}

// An exception escaping a step (a hook thread that cannot be created, bad_alloc) fails
// the step instead of terminating the agent: rolled back, reported, tag failed; a throwing
// discovery degrades only that component.
BOOST_AUTO_TEST_CASE(exception_in_step_is_a_failed_step) {
    Harness h;
    auto a = h.add("a", std::string("v1.0.0"));
    auto b = h.add("b", std::string("v1.0.0"));
    a->installThrows = {"v2.0.0"};
    b->discoverThrows = true;
    h.start();
    BOOST_TEST(h.status("b").degraded);
    h.announce({ann("a", "v2.0.0")});
    h.idle();
    BOOST_TEST(h.sink.lines("a") ==
               (Lines{"apply_started a v2.0.0 from v1.0.0",
                      "apply_failed a v2.0.0 from v1.0.0 install rb=v1.0.0 ok=1"}));
    BOOST_TEST(h.sink.events().back().error->find("internal error") != std::string::npos);
    BOOST_TEST(a->calls().back() == "rollback v1.0.0 failed v2.0.0");
    BOOST_TEST(h.status("a").failed == Lines{"v2.0.0"});
    h.announce({ann("a", "v3.0.0")});
    h.idle();
    BOOST_TEST(*h.status("a").current == "v3.0.0");
    b->discoverThrows = false;
    h.announce({ann("b", "v2.0.0")});  // a new release: discovered again, then applied
    h.idle();
    BOOST_TEST(*h.status("b").current == "v2.0.0");
}

// Rule 11: the marker exists (durably, with tag, from_tag and phase) during the apply and
// is gone after it.
BOOST_AUTO_TEST_CASE(rule11_marker_written_during_apply) {
    Harness h;
    auto a = h.add(A, std::string("v1.0.0"));
    auto gate = std::make_shared<Gate>();
    a->verifyGates["v2.0.0"] = gate;
    h.start();
    h.announce({ann(A, "v2.0.0")});
    BOOST_REQUIRE(gate->waitForWaiters(1));
    auto mk = MarkerStore(h.runtimeDir).read(A);
    BOOST_REQUIRE(mk && *mk);
    BOOST_TEST((*mk)->tag == "v2.0.0");
    BOOST_TEST(*(*mk)->fromTag == "v1.0.0");
    BOOST_TEST((*mk)->phase == ApplyPhase::kVerify);
    BOOST_TEST(!(*mk)->interrupted);
    gate->open();
    h.idle();
    BOOST_TEST(!std::filesystem::exists(h.markerPath(A)));
}

// Rule 11: the marker stays until the rollback after a failed verify has finished, so a
// crash during the rollback is still seen by the next run.
BOOST_AUTO_TEST_CASE(rule11_marker_kept_during_rollback) {
    Harness h;
    auto a = h.add(A, std::string("v1.0.0"));
    a->verifyFails = {"v2.0.0"};
    a->rollbackGate = std::make_shared<Gate>();
    h.start();
    h.announce({ann(A, "v2.0.0")});
    BOOST_REQUIRE(a->rollbackGate->waitForWaiters(1));
    auto mk = MarkerStore(h.runtimeDir).read(A);
    BOOST_REQUIRE(mk && *mk);
    BOOST_TEST((*mk)->tag == "v2.0.0");
    BOOST_TEST((*mk)->phase == ApplyPhase::kVerify);
    a->rollbackGate->open();
    h.idle();
    BOOST_TEST(!std::filesystem::exists(h.markerPath(A)));
    BOOST_TEST(*h.status(A).current == "v1.0.0");
}

struct MarkerCase {
    std::string name;
    std::optional<std::string> discovered;  // what the fresh run's discovery shows
    bool interrupted;
    bool rollbackFails;
    Lines calls;
    std::string telemetry;
    std::string error;
    bool tagFailed;
};
std::ostream& operator<<(std::ostream& os, const MarkerCase& c) {
    return os << c.name;
}
const std::vector<MarkerCase> kMarkerCases = {
    {"halfway_rolled_back",
     std::string("v2.0.0"),
     false,
     false,
     {"discover", "rollback v1.0.0 failed v2.0.0"},
     "apply_failed web v2.0.0 from v1.0.0 install rb=v1.0.0 ok=1",
     "agent died during apply",
     true},
    {"still_on_from_tag",
     std::string("v1.0.0"),
     false,
     false,
     {"discover"},
     "apply_failed web v2.0.0 from v1.0.0 install rb=v1.0.0 ok=1",
     "agent died during apply",
     true},
    {"rollback_fails",
     std::string("v2.0.0"),
     false,
     true,
     {"discover", "rollback v1.0.0 failed v2.0.0", "discover"},
     "apply_failed web v2.0.0 from v1.0.0 install rb=v2.0.0 ok=0",
     "",
     true},
    {"interrupted_by_shutdown_not_failed",
     std::string("v2.0.0"),
     true,
     false,
     {"discover", "rollback v1.0.0 failed v2.0.0"},
     "apply_failed web v2.0.0 from v1.0.0 install rb=v1.0.0 ok=1",
     "agent stopped during apply",
     false},
};

// Rule 11: a marker found at startup means the previous run died in that apply: roll back
// when discovery shows it half-way, fail the tag, report apply_failed, remove the marker.
BOOST_DATA_TEST_CASE(rule11_marker_at_startup, boost::unit_test::data::make(kMarkerCases), mc) {
    Harness h;
    auto a = h.add(A, mc.discovered);
    a->rollbackFails = mc.rollbackFails;
    auto startedMs =
        std::chrono::duration_cast<Millis>(h.clock.wallNow().time_since_epoch()).count() - 4000;
    BOOST_REQUIRE(MarkerStore(h.runtimeDir)
                      .write({A, "v2.0.0", std::string("v1.0.0"), ApplyPhase::kInstall, startedMs,
                              mc.interrupted}));
    h.start();
    BOOST_TEST(a->calls() == mc.calls, boost::test_tools::per_element());
    BOOST_TEST(h.sink.lines() == Lines{mc.telemetry}, boost::test_tools::per_element());
    auto ev = h.sink.events();
    BOOST_REQUIRE_EQUAL(ev.size(), 1u);
    BOOST_TEST(*ev[0].durationMs == 4000);
    if (!mc.error.empty())
        BOOST_TEST(*ev[0].error == mc.error);
    BOOST_TEST(!std::filesystem::exists(h.markerPath(A)));
    BOOST_TEST(h.status(A).degraded == mc.rollbackFails);
    if (!mc.rollbackFails) {
        h.announce({ann(A, "v2.0.0")});
        h.idle();
        BOOST_TEST(h.installs(A).size() == (mc.tagFailed ? 0u : 1u));
    }
}

// Rule 11: the recovery rollback itself leaves a "recovering" marker while it runs; a run
// that finds one (its predecessor died rolling back) does not roll back again but reports
// and degrades the component, so a rollback that crashes the agent cannot loop.
BOOST_AUTO_TEST_CASE(rule11_recovery_rollback_not_repeated_after_crash) {
    {
        Harness h;
        auto a = h.add(A, std::string("v2.0.0"));
        a->rollbackGate = std::make_shared<Gate>();
        BOOST_REQUIRE(
            MarkerStore(h.runtimeDir)
                .write({A, "v2.0.0", std::string("v1.0.0"), ApplyPhase::kVerify, 1, false}));
        h.engine = std::make_unique<Engine>(h.opts, h.fetcher, h.sink, h.clock, h.random);
        h.engine->setComponents(h.managed);
        BOOST_REQUIRE(a->rollbackGate->waitForWaiters(1));
        auto mk = MarkerStore(h.runtimeDir).read(A);
        BOOST_REQUIRE(mk && *mk);
        BOOST_TEST((*mk)->recovering);
        a->rollbackGate->open();
        h.idle();
    }
    Harness h;
    auto a = h.add(A, std::string("v2.0.0"));
    InflightMarker mk{A, "v2.0.0", std::string("v1.0.0"), ApplyPhase::kVerify, 1, false};
    mk.recovering = true;
    BOOST_REQUIRE(MarkerStore(h.runtimeDir).write(mk));
    h.start();
    BOOST_TEST(a->calls() == Lines{"discover"});
    BOOST_TEST(h.sink.lines() ==
               Lines{"apply_failed web v2.0.0 from v1.0.0 verify rb=v2.0.0 ok=0"});
    BOOST_TEST(h.status(A).degraded);
    BOOST_TEST(h.status(A).failed == Lines{"v2.0.0"});
    BOOST_TEST(!std::filesystem::exists(h.markerPath(A)));
}

// Self-update: PENDING_RESTART stops the attempt (no verify, no closing telemetry, no
// marker, nothing more applied); the next run's verdicts produce the telemetry.
BOOST_AUTO_TEST_CASE(self_update_pending_restart_and_verdicts) {
    {
        Harness h;
        auto a = h.add("self", std::string("v1.0.0"));
        a->installPending = {"v2.0.0"};
        h.start();
        h.announce({ann("self", "v2.0.0")});
        h.idle();
        h.announce({ann("self", "v3.0.0")});
        h.idle();
        BOOST_TEST(a->calls() == (Lines{"discover", "install v2.0.0 from v1.0.0"}));
        BOOST_TEST(h.sink.lines() == Lines{"apply_started self v2.0.0 from v1.0.0"});
        BOOST_TEST(h.status("self").phase == "pending_restart");
        BOOST_TEST(!std::filesystem::exists(h.markerPath("self")));
    }
    {  // next run: probation until healthy, then confirm and report
        Harness h;
        auto a = h.add("self", std::string("v2.0.0"));
        a->verdict.verdict = RRA_VERDICT_PENDING;
        a->verdict.verdictTag = "v2.0.0";
        a->verdict.verdictFromTag = "v1.0.0";
        a->verdict.verdictDurationMs = 900;
        h.start();
        h.announce({ann("self", "v3.0.0")});
        h.idle();
        BOOST_TEST(h.status("self").phase == "awaiting_health");
        BOOST_TEST(h.sink.events().empty());
        h.engine->onHealthy();
        h.idle();
        auto ev = h.sink.events();
        BOOST_REQUIRE_GE(ev.size(), 1u);
        BOOST_TEST(RecordingSink::line(ev[0]) == "apply_succeeded self v2.0.0 from v1.0.0");
        BOOST_TEST(*ev[0].durationMs == 900);
        BOOST_TEST(a->calls().at(1) == "confirm v2.0.0");
        BOOST_TEST(*h.status("self").current == "v3.0.0");  // then the candidate is applied
    }
    {  // a failed verdict: reported, tag failed
        Harness h;
        auto a = h.add("self", std::string("v1.0.0"));
        a->verdict.verdict = RRA_VERDICT_FAILED;
        a->verdict.verdictTag = "v2.0.0";
        a->verdict.verdictFromTag = "v1.0.0";
        a->verdict.verdictError = "new agent never became healthy";
        h.start();
        BOOST_TEST(h.sink.lines() ==
                   Lines{"apply_failed self v2.0.0 from v1.0.0 verify rb=v1.0.0 ok=1"});
        BOOST_TEST(*h.sink.events()[0].error == "new agent never became healthy");
        h.announce({ann("self", "v2.0.0")});
        h.idle();
        BOOST_TEST(h.installs("self").empty());
    }
    {  // a succeeded verdict: reported once
        Harness h;
        auto a = h.add("self", std::string("v2.0.0"));
        a->verdict.verdict = RRA_VERDICT_SUCCEEDED;
        a->verdict.verdictTag = "v2.0.0";
        a->verdict.verdictFromTag = "v1.0.0";
        h.start();
        BOOST_TEST(h.sink.lines() == Lines{"apply_succeeded self v2.0.0 from v1.0.0"});
    }
}

// Rule 12: a pin is applied without an announcement (a downgrade if need be), other
// announcements are not applied while pinned, and removing the pin restores normal rules.
BOOST_AUTO_TEST_CASE(rule12_pin_downgrade_ignore_and_unpin) {
    Harness h;
    auto a = h.add(A, std::string("v3.0.0"), std::string("v1.0.0"));
    h.start();
    BOOST_TEST(h.installs(A) == Lines{"install v1.0.0 from v3.0.0 downgrade"});
    BOOST_TEST(*h.status(A).current == "v1.0.0");
    h.announce({ann(A, "v4.0.0"), ann(A, "v5.0.0")});
    h.idle();
    BOOST_TEST(h.installs(A).size() == 1u);
    h.engine->setComponents({{component(A, std::string("v4.0.0")), a}});  // pin changed
    h.idle();
    BOOST_TEST(h.installs(A).back() == "install v4.0.0 from v1.0.0");
    h.engine->setComponents({{component(A), a}});  // pin removed
    h.idle();
    BOOST_TEST(h.installs(A).back() == "install v5.0.0 from v4.0.0");
    BOOST_TEST(h.installs(A).size() == 3u);
}

// Rule 12: removing a pin brings the component back up to the newest release announced,
// even one that was announced while the pinned downgrade ran (then "not newer").
BOOST_AUTO_TEST_CASE(rule12_unpin_returns_to_newest_announced) {
    Harness h;
    auto a = h.add(A, std::string("v3.0.0"), std::string("v1.0.0"));
    auto gate = std::make_shared<Gate>();
    a->installGates["v1.0.0"] = gate;
    h.engine = std::make_unique<Engine>(h.opts, h.fetcher, h.sink, h.clock, h.random);
    h.engine->setComponents(h.managed);
    BOOST_REQUIRE(gate->waitForWaiters(1));
    h.announce({ann(A, "v3.0.0")});  // the sync after hello: not newer than v3 yet
    gate->open();
    h.idle();
    BOOST_TEST(*h.status(A).current == "v1.0.0");
    h.engine->setComponents({{component(A), a}});  // pin removed
    h.idle();
    BOOST_TEST(h.installs(A) ==
               (Lines{"install v1.0.0 from v3.0.0 downgrade", "install v3.0.0 from v1.0.0"}));
    BOOST_TEST(*h.status(A).current == "v3.0.0");
}

// Rule 2: announcements that arrive while discovery still runs are kept and judged against
// the discovered current once it is known.
BOOST_AUTO_TEST_CASE(rule02_announcements_during_discovery_kept) {
    Harness h;
    auto a = h.add(A, std::string("v2.0.0"));
    a->discoverGate = std::make_shared<Gate>();
    h.engine = std::make_unique<Engine>(h.opts, h.fetcher, h.sink, h.clock, h.random);
    h.engine->setComponents(h.managed);
    BOOST_REQUIRE(a->discoverGate->waitForWaiters(1));
    BOOST_TEST(h.status(A).phase == "discovering");
    h.announce({ann(A, "v1.0.0"), ann(A, "v3.0.0")});
    BOOST_TEST(h.status(A).candidates == (Lines{"v3.0.0", "v1.0.0"}));
    a->discoverGate->open();
    h.idle();
    BOOST_TEST(h.installs(A) == Lines{"install v3.0.0 from v2.0.0"});
    BOOST_TEST(h.status(A).candidates.empty());
}

// Rules 3 and 9: a component removed and re-added while its apply runs keeps that one
// worker (never two applies in flight) and is managed normally afterwards.
BOOST_AUTO_TEST_CASE(rule09_readded_during_apply_single_worker) {
    Harness h;
    auto a = h.add(A, std::string("v1.0.0"));
    auto gate = std::make_shared<Gate>();
    a->installGates["v2.0.0"] = gate;
    h.start();
    h.announce({ann(A, "v2.0.0")});
    BOOST_REQUIRE(gate->waitForWaiters(1));
    h.engine->setComponents({});
    BOOST_TEST(h.engine->inventory().empty());
    h.engine->setComponents(h.managed);
    h.announce({ann(A, "v3.0.0")});
    gate->open();
    h.idle();
    BOOST_TEST(h.installs(A) ==
               (Lines{"install v2.0.0 from v1.0.0", "install v3.0.0 from v2.0.0"}));
    BOOST_TEST(a->maxConcurrentHooks() == 1);
    BOOST_TEST(*h.status(A).current == "v3.0.0");
}

// Self-update: a confirm that fails is an apply_failed in phase verify with a rollback to
// the release before the update.
BOOST_AUTO_TEST_CASE(self_update_confirm_failure_rolls_back) {
    Harness h;
    auto a = h.add("self", std::string("v2.0.0"));
    a->verdict.verdict = RRA_VERDICT_PENDING;
    a->verdict.verdictTag = "v2.0.0";
    a->verdict.verdictFromTag = "v1.0.0";
    a->confirmFails = true;
    h.start();
    h.engine->onHealthy();
    h.idle();
    BOOST_TEST(a->calls() ==
               (Lines{"discover", "confirm v2.0.0", "rollback v1.0.0 failed v2.0.0"}));
    BOOST_TEST(h.sink.lines() ==
               Lines{"apply_failed self v2.0.0 from v1.0.0 verify rb=v1.0.0 ok=1"});
    BOOST_TEST(h.status("self").failed == Lines{"v2.0.0"});
    BOOST_TEST(*h.status("self").current == "v1.0.0");
}

// Status: the listener hears every phase of an apply and may call back into the engine
// (it runs without engine locks; a held lock would deadlock here).
BOOST_AUTO_TEST_CASE(status_listener_sees_phases) {
    Harness h;
    h.add(A, std::string("v1.0.0"));
    std::mutex m;
    std::vector<std::string> phases;
    h.engine = std::make_unique<Engine>(h.opts, h.fetcher, h.sink, h.clock, h.random);
    h.engine->setStatusListener([&] {
        auto st = h.engine->status();
        std::lock_guard<std::mutex> lk(m);
        if (!st.empty() && (phases.empty() || phases.back() != st[0].phase))
            phases.push_back(st[0].phase);
    });
    h.engine->setComponents(h.managed);
    h.idle();
    h.announce({ann(A, "v2.0.0")});
    h.idle();
    std::lock_guard<std::mutex> lk(m);
    for (auto p : {"download", "install", "verify", "idle"})
        BOOST_TEST((std::find(phases.begin(), phases.end(), p) != phases.end()), p);
}

// Status: once setStatusListener returns, the old listener is not running (an abandoned
// engine's worker must not call into its destroyed owner).
BOOST_AUTO_TEST_CASE(status_listener_cleared_waits_for_running_call) {
    Harness h;
    h.add(A, std::string("v1.0.0"));
    h.start();
    auto gate = std::make_shared<Gate>();
    std::atomic<bool> inside{false}, never{false};
    h.engine->setStatusListener([&] {
        inside = true;
        gate->pass(never);
        inside = false;
    });
    std::thread announcer([&] { h.announce({ann(A, "v2.0.0")}); });
    BOOST_REQUIRE(gate->waitForWaiters(1));
    std::atomic<bool> insideAtReturn{true};
    std::thread clearer([&] {
        h.engine->setStatusListener({});
        insideAtReturn = inside.load();
    });
    std::this_thread::sleep_for(Millis(50));  // a broken clear returns meanwhile
    gate->open();
    clearer.join();
    announcer.join();
    BOOST_TEST(!insideAtReturn);
    h.idle();
}

// Rule 9: apply_jitter_s and max_parallel_downloads changed by reload apply from the next
// deployment.
BOOST_AUTO_TEST_CASE(rule09_reload_changes_jitter_and_download_slots) {
    Harness h;
    h.opts.maxParallelDownloads = 3;
    auto gate = std::make_shared<Gate>();
    auto batch = h.addHeldAtGate(3, gate);
    h.start();
    EngineOptions o = h.opts;
    o.maxParallelDownloads = 1;
    o.applyJitterS = 10;  // FixedRandom(0.5): 5 s
    h.engine->setOptions(o);
    h.announce(batch);
    BOOST_REQUIRE(gate->waitForWaiters(1));
    BOOST_TEST(!gate->waitForWaiters(2, Millis(50)));
    gate->open();
    h.idle();
    BOOST_TEST(h.fetcher.maxConcurrent() == 1);
    BOOST_TEST(h.clock.sleeps() == (std::vector<Millis>(3, Millis(5000))));
}
