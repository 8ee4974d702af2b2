// A test harness around one Engine with fake ports, a fake clock and a private runtime
// directory for in-flight markers.
#pragma once

#include "deploy/engine.hpp"
#include "fakes.hpp"

#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <memory>
#include <ostream>

namespace rra {
// Readable values in Boost.Test failure messages.
inline std::ostream& boost_test_print_type(std::ostream& os, TelemetryKind k) {
    return os << toString(k);
}
inline std::ostream& boost_test_print_type(std::ostream& os, ApplyPhase p) {
    return os << toString(p);
}
}  // namespace rra
BOOST_TEST_DONT_PRINT_LOG_VALUE(rra::WallTime)
BOOST_TEST_DONT_PRINT_LOG_VALUE(rra::SteadyTime)
BOOST_TEST_DONT_PRINT_LOG_VALUE(rra::Millis)
BOOST_TEST_DONT_PRINT_LOG_VALUE(std::chrono::seconds)

namespace rra::deploy::test {

struct Harness {
    FakeClock clock;
    FixedRandom random{0.5};
    FakeFetcher fetcher{&clock};
    RecordingSink sink;
    EngineOptions opts;
    std::string runtimeDir;
    std::vector<ManagedComponent> managed;
    std::map<std::string, std::shared_ptr<FakeDeployer>> d;
    std::unique_ptr<Engine> engine;

    Harness() {
        char tmpl[] = "/tmp/rra-engine-test-XXXXXX";
        runtimeDir = ::mkdtemp(tmpl);
        opts.runtimeDir = runtimeDir;
    }
    ~Harness() {
        engine.reset();
        std::error_code ec;
        std::filesystem::remove_all(runtimeDir, ec);
    }

    std::shared_ptr<FakeDeployer> add(const std::string& name, std::optional<std::string> installed,
                                      std::optional<std::string> pin = std::nullopt) {
        auto dep = std::make_shared<FakeDeployer>(name, std::move(installed));
        d[name] = dep;
        managed.push_back({component(name, std::move(pin)), dep});
        return dep;
    }
    // Components c0..c<count-1> on v1.0.0 whose v2.0.0 download waits at `gate`; returns
    // the batch announcing v2.0.0 for all of them.
    std::vector<Announcement> addHeldAtGate(int count, const std::shared_ptr<Gate>& gate) {
        std::vector<Announcement> batch;
        for (int i = 0; i < count; ++i) {
            std::string n = "c" + std::to_string(i);
            add(n, std::string("v1.0.0"));
            fetcher.holdOn(n, "v2.0.0", gate);
            batch.push_back(ann(n, "v2.0.0"));
        }
        return batch;
    }
    void start() {
        engine = std::make_unique<Engine>(opts, fetcher, sink, clock, random);
        engine->setComponents(managed);
        BOOST_REQUIRE(engine->waitDiscovered(Millis(5000)));
        idle();
    }
    void idle() { BOOST_REQUIRE(engine->waitIdle(Millis(5000))); }
    void announce(std::vector<Announcement> batch) { engine->announce(batch); }
    Engine::ComponentStatus status(const std::string& name) const {
        for (auto& s : engine->status())
            if (s.name == name)
                return s;
        BOOST_FAIL("no status for " + name);
        return {};
    }
    std::vector<std::string> installs(const std::string& name) const {
        std::vector<std::string> out;
        for (auto& c : d.at(name)->calls())
            if (c.rfind("install ", 0) == 0)
                out.push_back(c);
        return out;
    }
    std::string markerPath(const std::string& name) const {
        return runtimeDir + "/inflight/" + name + ".json";
    }
};

}  // namespace rra::deploy::test
