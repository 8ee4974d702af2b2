// bench/engine: time and peak RSS for the engine's two load shapes with instant fakes:
// 10,000 announcements for one component during a slow apply, and 500 components each
// brought from v1 to v2.
#include "deploy/engine.hpp"
#include "fakes.hpp"

#include <Poco/Logger.h>

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

using namespace rra;
using namespace rra::deploy;
using namespace rra::deploy::test;

namespace {

long peakRssKb() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

double secondsSince(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string tempRuntimeDir() {
    const char* base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp";
    std::string tmpl = std::string(base) + "/rra-bench-engine-XXXXXX";
    return ::mkdtemp(tmpl.data());
}

// One component, install of v1.0.1 held while 10,000 announcements arrive (5,000 distinct
// tags, each announced twice), then released: exactly one further apply of the newest.
bool announcementsDuringSlowApply() {
    FakeClock clock;
    FixedRandom random(0);
    FakeFetcher fetcher;
    RecordingSink sink;
    EngineOptions opts;
    opts.runtimeDir = tempRuntimeDir();
    auto dep = std::make_shared<FakeDeployer>("web", std::string("v1.0.0"));
    auto gate = std::make_shared<Gate>();
    dep->installGates["v1.0.1"] = gate;
    bool ok;
    long rssBefore = peakRssKb();
    double absorb, total;
    {
        Engine engine(opts, fetcher, sink, clock, random);
        engine.setComponents({{component("web"), dep}});
        engine.waitIdle(Millis(5000));
        engine.announce({ann("web", "v1.0.1")});
        gate->waitForWaiters(1);
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < 10'000; ++i)
            engine.announce({ann("web", "v2." + std::to_string(i % 5000) + ".0")});
        absorb = secondsSince(t0);
        gate->open();
        engine.waitIdle(Millis(10'000));
        total = secondsSince(t0);
        auto st = engine.status().at(0);
        int installs = 0;
        for (auto& c : dep->calls())
            installs += c.rfind("install", 0) == 0;
        ok = st.current && *st.current == "v2.4999.0" && installs == 2 && st.candidates.empty();
    }
    std::filesystem::remove_all(opts.runtimeDir);
    std::printf(
        "10000 announcements during a slow apply: absorb %.3f s, until quiet %.3f s, "
        "peak RSS %ld KiB (+%ld) %s\n",
        absorb, total, peakRssKb(), peakRssKb() - rssBefore, ok ? "OK" : "WRONG RESULT");
    return ok && total < 1.0;
}

// 500 components, each announced v2 in one sync batch, instant deployers.
bool fiveHundredComponents() {
    FakeClock clock;
    FixedRandom random(0);
    FakeFetcher fetcher;
    RecordingSink sink;
    EngineOptions opts;
    opts.runtimeDir = tempRuntimeDir();
    std::vector<ManagedComponent> managed;
    std::vector<Announcement> batch;
    for (int i = 0; i < 500; ++i) {
        std::string n = "c" + std::to_string(i);
        managed.push_back({component(n), std::make_shared<FakeDeployer>(n, std::string("v1.0.0"))});
        batch.push_back(ann(n, "v2.0.0"));
    }
    long rssBefore = peakRssKb();
    bool ok = true;
    double discoverS, applyS;
    {
        auto t0 = std::chrono::steady_clock::now();
        Engine engine(opts, fetcher, sink, clock, random);
        engine.setComponents(managed);
        ok = engine.waitIdle(Millis(10'000));
        discoverS = secondsSince(t0);
        auto t1 = std::chrono::steady_clock::now();
        engine.announce(batch);
        ok = engine.waitIdle(Millis(10'000)) && ok;
        applyS = secondsSince(t1);
        for (auto& s : engine.status())
            ok = ok && s.current && *s.current == "v2.0.0";
        ok = ok && sink.events().size() == 1000;
    }
    std::filesystem::remove_all(opts.runtimeDir);
    std::printf(
        "500 components v1 -> v2: discovery %.3f s, apply %.3f s, peak RSS %ld KiB (+%ld) %s\n",
        discoverS, applyS, peakRssKb(), peakRssKb() - rssBefore, ok ? "OK" : "WRONG RESULT");
    return ok && applyS < 1.0;
}

}  // namespace

int main() {
    Poco::Logger::root().setLevel("warning");
    Poco::Logger::get("deploy").setLevel("warning");
    bool a = announcementsDuringSlowApply();
    bool b = fiveHundredComponents();
    std::printf("targets (< 1 s each, result correct): %s\n", a && b ? "met" : "MISSED");
    return a && b ? 0 : 1;
}
