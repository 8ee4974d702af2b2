// Randomized invariant test (fixed seeds, a few thousand steps): random batches of
// announcements for a few components whose releases fail at random (download, install,
// verify), interleaved with applies. Checks: never two applies in flight for one
// component; a failed tag never applied twice; when quiet, each component is on the
// newest announced tag that does not fail, or on its previous good one.
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "harness.hpp"

#include <random>

using namespace rra;
using namespace rra::deploy;
using namespace rra::deploy::test;

namespace {

std::string tagOf(int n) {
    return "v1." + std::to_string(n) + ".0";
}

// Telemetry per component must read started, closed, started, closed, ...: two starts in
// a row would be two applies in flight. A tag that failed for a bad release must never
// start again.
void checkTelemetry(const std::vector<TelemetryEvent>& events, const std::string& name) {
    bool open = false;
    std::string openTag;
    std::set<std::string> failed;
    for (const auto& e : events) {
        if (e.component != name)
            continue;
        if (e.event == TelemetryKind::kApplyStarted) {
            BOOST_TEST_REQUIRE(
                !open, name << ": " << e.tag << " started while " << openTag << " in flight");
            BOOST_TEST_REQUIRE(!failed.count(e.tag),
                               name << ": failed " << e.tag << " applied again");
            open = true;
            openTag = e.tag;
        } else {
            BOOST_TEST_REQUIRE(open);
            BOOST_TEST_REQUIRE(e.tag == openTag);
            open = false;
            if (e.event == TelemetryKind::kApplyFailed)
                failed.insert(e.tag);
        }
    }
    BOOST_TEST_REQUIRE(!open);
}

}  // namespace

// Invariants of rules 2-7 under random interleavings of announcements and applies.
BOOST_DATA_TEST_CASE(random_invariants, boost::unit_test::data::make({11u, 12345u, 987654u}),
                     seed) {
    std::mt19937 rng(seed);
    Harness h;
    const int kComponents = 3, kTags = 40, kSteps = 1500;
    std::vector<std::string> names;
    std::map<std::string, std::set<int>> bad;  // tags that fail, by component
    std::map<std::string, int> initial;
    for (int i = 0; i < kComponents; ++i) {
        std::string n = "c" + std::to_string(i);
        names.push_back(n);
        initial[n] = static_cast<int>(rng() % 5);
        auto dep = h.add(n, tagOf(initial[n]));
        for (int t = 0; t < kTags; ++t) {
            switch (rng() % 8) {
                case 0:
                    dep->installFails.insert(tagOf(t));
                    break;
                case 1:
                    dep->verifyFails.insert(tagOf(t));
                    break;
                case 2:
                    dep->installRefuses.insert(tagOf(t));
                    break;
                case 3:
                    h.fetcher.failWith(n, tagOf(t), ErrorCode::kNotFound);
                    break;
                default:
                    continue;
            }
            bad[n].insert(t);
        }
    }
    h.start();
    std::map<std::string, std::set<int>> announced;
    int checks = 0;
    for (int step = 0; step < kSteps; ++step) {
        std::vector<Announcement> batch;
        int size = 1 + static_cast<int>(rng() % 4);
        for (int k = 0; k < size; ++k) {
            const auto& n = names[rng() % names.size()];
            // Mostly rising tags, with repeats and older ones mixed in.
            int t = std::min(kTags - 1, static_cast<int>(step * kTags / kSteps + rng() % 6)) -
                    static_cast<int>(rng() % 3);
            t = std::max(0, t);
            batch.push_back(ann(n, tagOf(t)));
            announced[n].insert(t);
        }
        h.announce(batch);
        if (rng() % 100 == 0 || step == kSteps - 1) {
            h.idle();
            ++checks;
            auto events = h.sink.events();
            for (const auto& n : names) {
                checkTelemetry(events, n);
                int expect = initial[n];
                for (int t : announced[n])
                    if (t > expect && !bad[n].count(t))
                        expect = t;
                auto st = h.status(n);
                BOOST_TEST_REQUIRE(st.current.has_value());
                BOOST_TEST_REQUIRE(*st.current == tagOf(expect),
                                   "seed " << seed << " step " << step << " " << n);
                BOOST_TEST_REQUIRE(*h.d[n]->installed() == tagOf(expect));
                BOOST_TEST_REQUIRE(h.d[n]->maxConcurrentHooks() == 1);
                BOOST_TEST_REQUIRE(!st.degraded);
            }
        }
    }
    BOOST_TEST(checks > 5);
    BOOST_TEST(h.sink.events().size() > 20u);
}
