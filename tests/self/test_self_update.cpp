// The real agent updating itself end to end: the packaged build (version RRA_VERSION)
// under rra-test-supervisor (a stand-in for systemd running the launcher), a fake proxy
// announcing a release, a fake GitHub serving it. The release is the -next build (another
// version) or a broken "build"; the test looks at telemetry, install_root and which
// binary runs. Last, kill -9 at random moments of an update, 20 times.
#define BOOST_TEST_MODULE self_update
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "fakes/github/fake_github.hpp"
#include "fakes/proxy/fake_proxy.hpp"
#include "support/test_support.hpp"

#include <sys/file.h>

#include <iostream>
#include <random>

using namespace rra::test;
namespace bdata = boost::unit_test::data;

namespace {

const std::string kBin = RRA_BINARY_DIR;
const std::string kOldAgent = RRA_AGENT_BINARY;
const std::string kNextAgent = kBin + "/tests/self/raspi-release-agent-next";
const std::string kSupervisor = kBin + "/tests/self/rra-test-supervisor";
const std::string kLibDir = kBin + "/lib/raspi-release-agent";
const std::string kOldVersion = RRA_OLD_VERSION;
const std::string kNextVersion = RRA_NEXT_VERSION;
const std::string kOldTag = "v" + kOldVersion;
const std::string kNextTag = "v" + kNextVersion;
const std::string kRepo = "acme/raspi-release-agent";
const std::string kArch = "amd64";

std::string slurp(const std::string& path) {
    return readFile(path);
}

void copyExecutable(const std::string& from, const std::string& to) {
    fs::create_directories(fs::path(to).parent_path());
    fs::copy_file(from, to, fs::copy_options::overwrite_existing);
    ::chmod(to.c_str(), 0755);
}

// A release tree as the .deb or a self-update lays it out: bin/ and lib/raspi-release-agent.
void layOutAgent(const std::string& prefix, const std::string& agentBinary) {
    copyExecutable(agentBinary, prefix + "/bin/raspi-release-agent");
    copyExecutable(kLibDir + "/plugins/self.so",
                   prefix + "/lib/raspi-release-agent/plugins/self.so");
    copyExecutable(kLibDir + "/rra-self-watchdog",
                   prefix + "/lib/raspi-release-agent/rra-self-watchdog");
    copyExecutable(kLibDir + "/raspi-release-agent-launch",
                   prefix + "/lib/raspi-release-agent/raspi-release-agent-launch");
    for (const auto& d :
         {prefix, prefix + "/bin", prefix + "/lib", prefix + "/lib/raspi-release-agent",
          prefix + "/lib/raspi-release-agent/plugins"})
        ::chmod(d.c_str(), 0755);
}

// The release asset: the -next build (or a script) with the plugins, as an uncompressed tar.
std::string releaseTarball(const std::string& path, const std::string& agentFile) {
    const std::string tree = path + ".d";
    copyExecutable(agentFile, tree + "/bin/raspi-release-agent");
    copyExecutable(kLibDir + "/plugins/self.so", tree + "/lib/raspi-release-agent/plugins/self.so");
    copyExecutable(kLibDir + "/rra-self-watchdog",
                   tree + "/lib/raspi-release-agent/rra-self-watchdog");
    for (const auto& d : {tree + "/bin", tree + "/lib", tree + "/lib/raspi-release-agent",
                          tree + "/lib/raspi-release-agent/plugins"})
        ::chmod(d.c_str(), 0755);
    auto r = run({"/bin/tar", "-cf", path, "-C", tree, "bin", "lib"}, fs::path(path).parent_path());
    if (r.code != 0)
        throw std::runtime_error("tar failed: " + r.err);
    return path;
}

// Broken builds: answer --version / --check-config like the real one, misbehave as daemon.
std::string brokenAgent(const std::string& dir, const std::string& name,
                        const std::string& daemon) {
    std::string p = dir + "/" + name;
    writeFile(p,
              "#!/bin/sh\ncase \"$1\" in\n  --version) echo \"raspi-release-agent " + kNextVersion +
                  "\"; exit 0 ;;\n  --check-config) exit 0 ;;\nesac\necho broken build " + name +
                  " starting\n" + daemon + "\n",
              0755);
    return p;
}

struct Telemetry {
    int connection = 0;
    std::string event, tag, rolledBackTo, error, agentVersion;
};

struct World {
    TempDir d;
    rra::fakes::FakeProxy proxy;
    rra::fakes::FakeGithub github;
    std::string root, runDir, supDir, packaged, config;
    std::unique_ptr<Child> supervisor;

    // `fromRelease`: the running agent was itself self-updated (install_root/current);
    // otherwise only the .deb's agent exists.
    World(const std::string& asset, int healthyS, bool fromRelease) {
        root = d.str("opt");
        runDir = d.str("run");
        supDir = d.str("sup");
        packaged = d.str("usr/bin/raspi-release-agent");
        config = d.str("agent.json");
        fs::create_directories(supDir);
        fs::create_directories(root + "/releases");
        layOutAgent(d.str("usr"), kOldAgent);
        if (fromRelease) {
            layOutAgent(root + "/releases/" + kOldTag, kOldAgent);
            fs::create_directory_symlink("releases/" + kOldTag, root + "/current");
        }
        proxy.start();
        const std::string assetName = "raspi-release-agent_" + kNextVersion + "_" + kArch + ".tar";
        github.addFileRelease(kRepo, kNextTag, assetName, asset);
        proxy.setSync({rra::Announcement{"agent", kRepo, kNextTag, ""}});
        const std::string restart = "kill -USR1 $(cat " + supDir + "/supervisor.pid)";
        writeFile(config, "{\"agent\": {\"id\": \"pi-self\", \"arch\": \"" + kArch +
                              "\", \"work_dir\": \"" + d.str("work") + "\", \"runtime_dir\": \"" +
                              runDir + "\", \"components_dir\": \"" + d.str("components.d") +
                              "\"}, \"proxy\": {\"url\": \"" + proxy.url() +
                              "\", \"reconnect_initial_ms\": 100, \"reconnect_max_ms\": 500}, "
                              "\"github\": {\"api_url\": \"" +
                              github.apiUrl() +
                              "\"}, \"components\": [{\"name\": \"agent\", \"type\": \"self\", "
                              "\"repo\": \"" +
                              kRepo +
                              "\", \"asset\": \"raspi-release-agent_{version}_{arch}.tar\", "
                              "\"settings\": {\"install_root\": \"" +
                              root + "\", \"restart_cmd\": [\"sh\", \"-c\", \"" + restart +
                              "\"], \"healthy_within_s\": " + std::to_string(healthyS) +
                              ", \"detach\": \"fork\"}}]}");
    }
    ~World() {
        if (supervisor) {
            supervisor->signal(SIGTERM);
            supervisor->wait(std::chrono::seconds(15));
        }
        // A watchdog still on probation must not outlive its directory.
        waitUntil([&] { return !watchdogRunning(); }, std::chrono::seconds(15));
        proxy.stop();
    }

    void start() {
        supervisor = std::make_unique<Child>(
            std::vector<std::string>{
                kSupervisor, supDir,
                d.str("usr/lib/raspi-release-agent/raspi-release-agent-launch"),
                "--config=" + config},
            supDir,
            std::map<std::string, std::string>{{"RRA_INSTALL_ROOT", root},
                                               {"RRA_PACKAGED_AGENT", packaged},
                                               {"RRA_WATCHDOG_DETACH", "fork"},
                                               {"RUNTIME_DIRECTORY", runDir}});
    }

    bool watchdogRunning() const {
        int fd = ::open((root + "/.watchdog.lock").c_str(), O_RDWR | O_CLOEXEC);
        if (fd < 0)
            return false;
        bool held = ::flock(fd, LOCK_EX | LOCK_NB) != 0;
        ::close(fd);
        return held;
    }
    std::string current() const {
        std::error_code ec;
        auto t = fs::read_symlink(root + "/current", ec);
        return ec ? "" : t.string();
    }
    bool marker() const { return fs::exists(root + "/self-update.state"); }
    pid_t agentPid() const {
        return static_cast<pid_t>(std::atoi(slurp(supDir + "/agent.pid").c_str()));
    }
    int starts() const {
        std::string s = slurp(supDir + "/starts.log");
        return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
    }
    // The binary the supervised agent runs now ("" when none runs).
    std::string agentExe() const {
        std::error_code ec;
        auto t = fs::read_symlink("/proc/" + std::to_string(agentPid()) + "/exe", ec);
        return ec ? "" : t.string();
    }
    std::string expectedExe() const {
        std::string c = current();
        return c.empty() ? packaged : root + "/" + c + "/bin/raspi-release-agent";
    }

    std::vector<Telemetry> telemetry() const {
        std::map<int, std::string> versions;
        for (const auto& h : proxy.messages("hello"))
            if (h.json)
                versions[h.connection] = h.json->optValue<std::string>("agent_version", "");
        std::vector<Telemetry> out;
        for (const auto& m : proxy.messages("telemetry")) {
            if (!m.json)
                continue;
            Telemetry t;
            t.connection = m.connection;
            t.event = m.json->optValue<std::string>("event", "");
            t.tag = m.json->optValue<std::string>("tag", "");
            t.error = m.json->optValue<std::string>("error", "");
            if (m.json->has("rolled_back_to") && !m.json->isNull("rolled_back_to"))
                t.rolledBackTo = m.json->getValue<std::string>("rolled_back_to");
            t.agentVersion = versions[m.connection];
            out.push_back(t);
        }
        return out;
    }
    std::optional<Telemetry> find(const std::string& event, const std::string& tag) const {
        for (const auto& t : telemetry())
            if (t.event == event && t.tag == tag)
                return t;
        return std::nullopt;
    }
    std::string diagnostics() const {
        return "agent.log:\n" + slurp(supDir + "/agent.log") + "\nwatchdog log:\n" +
               slurp(runDir + "/self-watchdog.log") + "\ncurrent: " + current() +
               "\nmarker: " + slurp(root + "/self-update.state") + "\nagent exe: " + agentExe() +
               "\nstatus: " + slurp(runDir + "/status.json");
    }
    // The agent the supervisor runs is the one current names, reports connected in its
    // status file, and no self-update is left on probation.
    bool settledAndWorking() const {
        if (marker() || watchdogRunning())
            return false;
        pid_t pid = agentPid();
        if (pid <= 0 || agentExe() != expectedExe())
            return false;
        std::string status = slurp(runDir + "/status.json");
        return contains(status, "\"pid\": " + std::to_string(pid)) &&
               contains(status, "\"proxy\": \"connected\"") &&
               contains(status, "\"phase\": \"idle\"");
    }
};

}  // namespace

BOOST_AUTO_TEST_CASE(upgrade_from_the_packaged_agent_succeeds) {
    // Proves the packaged agent installs the -next build, the supervisor restarts into it
    // through the launcher, and the new agent itself reports apply_succeeded and runs from
    // install_root/current with no probation left.
    TempDir assets;
    auto asset = releaseTarball(assets.str("next.tar"), kNextAgent);
    World w(asset, 30, false);
    w.start();
    bool ok = waitUntil([&] { return w.find("apply_succeeded", kNextTag).has_value(); },
                        std::chrono::seconds(40));
    BOOST_REQUIRE_MESSAGE(ok, w.diagnostics());
    auto t = *w.find("apply_succeeded", kNextTag);
    BOOST_TEST(t.agentVersion == kNextVersion);
    BOOST_TEST(w.current() == "releases/" + kNextTag);
    bool settled = waitUntil([&] { return w.settledAndWorking(); }, std::chrono::seconds(10));
    BOOST_TEST(settled, w.diagnostics());
    BOOST_TEST(w.agentExe() == w.root + "/releases/" + kNextTag + "/bin/raspi-release-agent");
    BOOST_TEST(!w.find("apply_failed", kNextTag).has_value());
    BOOST_TEST(w.starts() == 2);
}

namespace {
struct Broken {
    const char* name;
    const char* daemon;
};
std::ostream& operator<<(std::ostream& os, const Broken& b) {
    return os << b.name;
}
const Broken kBroken[] = {
    {"crashes-at-start", "kill -SEGV $$"},
    {"never-connects", "exec sleep 600"},
    {"exits-after-5s", "sleep 5; exit 1"},
};
}  // namespace

BOOST_DATA_TEST_CASE(broken_build_is_rolled_back, bdata::make(kBroken), b) {
    // Proves a new build that crashes at start, never connects, or exits after 5 s ends
    // with current back on the previous release, the old agent running and connected, and
    // apply_failed (rolled_back_to the old tag) reported by the old agent.
    TempDir assets;
    auto asset =
        releaseTarball(assets.str("broken.tar"), brokenAgent(assets.str(), b.name, b.daemon));
    World w(asset, 7, true);
    w.start();
    bool ok = waitUntil([&] { return w.find("apply_failed", kNextTag).has_value(); },
                        std::chrono::seconds(40));
    BOOST_REQUIRE_MESSAGE(ok, w.diagnostics());
    auto t = *w.find("apply_failed", kNextTag);
    BOOST_TEST(t.agentVersion == kOldVersion);
    BOOST_TEST(t.rolledBackTo == kOldTag);
    BOOST_TEST(contains(t.error, "within 7 s"), t.error);
    BOOST_TEST(w.current() == "releases/" + kOldTag);
    bool settled = waitUntil([&] { return w.settledAndWorking(); }, std::chrono::seconds(10));
    BOOST_TEST(settled, w.diagnostics());
    BOOST_TEST(!fs::exists(w.root + "/releases/" + kNextTag));
    BOOST_TEST(contains(slurp(w.supDir + "/agent.log"), std::string("broken build ") + b.name));
    if (std::string(b.name) == "crashes-at-start")
        BOOST_TEST(w.starts() >= 4);  // restarted again and again before the rollback
}

BOOST_AUTO_TEST_CASE(kill_9_at_random_moments_always_ends_with_a_working_agent) {
    // Proves that whatever moment of a self-update the agent (old or new) is killed with
    // SIGKILL, the supervisor's restarts end with a connected agent that is the one
    // current names, and no probation left behind; 20 random runs.
    TempDir assets;
    auto asset = releaseTarball(assets.str("next.tar"), kNextAgent);
    std::mt19937 rng(std::random_device{}());
    std::uniform_int_distribution<int> delay(0, 2500);
    int upgraded = 0;
    for (int i = 0; i < 20; ++i) {
        World w(asset, 4, i % 2 == 0);
        w.start();
        const int ms = delay(rng);
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        pid_t victim = w.agentPid();
        if (victim > 0)
            ::kill(victim, SIGKILL);
        bool ok = waitUntil([&] { return w.settledAndWorking(); }, std::chrono::seconds(25));
        BOOST_TEST_CONTEXT("run " << i << ", kill after " << ms << " ms") {
            BOOST_TEST(ok, w.diagnostics());
        }
        if (w.current() == "releases/" + kNextTag)
            ++upgraded;
    }
    BOOST_TEST_MESSAGE(upgraded << " of 20 runs ended on " << kNextTag);
}
