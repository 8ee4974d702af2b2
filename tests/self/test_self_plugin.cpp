// Tests of the `self` deployer plugin through its C ABI, with the real rra-self-watchdog
// and launcher: settings, discovery of the running agent, the checks before the switch,
// the hand-over marker and its verdicts, the watchdog's commit and rollback, power loss
// during probation, interrupted hand-overs and the launcher's choice of binary.
#define BOOST_TEST_MODULE self_plugin
#include <boost/test/unit_test.hpp>

#include "self/self_harness.hpp"

#include <sys/stat.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>

using namespace rra::test;
namespace fs = std::filesystem;

namespace {

const std::string kPlugin = RRA_PLUGIN_DIR "/self.so";
const std::string kWatchdog = RRA_BINARY_DIR "/lib/raspi-release-agent/rra-self-watchdog";
const std::string kLauncher = RRA_BINARY_DIR "/lib/raspi-release-agent/raspi-release-agent-launch";

PluginLibrary& library() {
    static PluginLibrary lib(kPlugin);
    return lib;
}

int countLines(const std::string& path) {
    std::ifstream in(path);
    int n = 0;
    std::string l;
    while (std::getline(in, l))
        ++n;
    return n;
}

struct Fixture {
    ScratchDir tmp;
    std::string root, runDir, stateDir, restarts, config, packaged;
    TestHost host;

    Fixture() {
        root = fs::canonical(tmp.path()).string() + "/opt";
        runDir = tmp / "run";
        stateDir = tmp / "state";
        restarts = tmp / "restarts.log";
        config = tmp / "agent.json";
        packaged = tmp / "usr/bin/raspi-release-agent";
        fs::create_directories(runDir);
        fs::create_directories(stateDir);
        fs::create_directories(tmp / "usr/bin");
        writeFile(config, "{}");
        writeFile(packaged, fakeAgentScript("0.1.0", 0, "ok", "echo packaged-ran"), 0755);
    }
    ~Fixture() {
        // A detached watchdog must not outlive the directory it watches.
        pollUntil([&] { return !watchdogRunning(root); }, std::chrono::seconds(10));
    }
    std::string settings(int healthyS = 30, const std::string& extra = "") const {
        return "{\"install_root\":\"" + root +
               "\",\"restart_cmd\":[\"sh\",\"-c\",\"echo restart >> " + restarts +
               "\"],\"healthy_within_s\":" + std::to_string(healthyS) + ",\"watchdog\":\"" +
               kWatchdog + "\",\"detach\":\"fork\"" + (extra.empty() ? "" : "," + extra) + "}";
    }
    // An already installed release, as a previous self-update left it.
    void installed(const std::string& tag, bool makeCurrent = true) {
        fs::create_directories(root + "/releases/" + tag + "/bin");
        writeFile(root + "/releases/" + tag + "/bin/raspi-release-agent",
                  fakeAgentScript(tag.substr(1), 0, "ok", "echo " + tag + "-ran"), 0755);
        if (makeCurrent) {
            fs::remove(root + "/current");
            fs::create_directory_symlink("releases/" + tag, root + "/current");
        }
    }
    AgentRun release(const std::string& tag) const {
        return {root + "/releases/" + tag + "/bin/raspi-release-agent", tag.substr(1), config,
                runDir, stateDir};
    }
    AgentRun debAgent() const { return {packaged, "0.1.0", config, runDir, stateDir}; }
    std::string archive(const std::string& name, const std::string& script) {
        std::string p = tmp / name;
        writeArchive(p, fakeRelease(script));
        return p;
    }
    std::string current() const {
        std::error_code ec;
        auto t = fs::read_symlink(root + "/current", ec);
        return ec ? "" : t.string();
    }
    bool marker() const { return fs::exists(root + "/self-update.state"); }
    std::string markerText() const { return readFile(root + "/self-update.state"); }
    std::vector<std::string> releases() const {
        std::vector<std::string> out;
        for (auto& e : fs::directory_iterator(root + "/releases"))
            out.push_back(e.path().filename().string());
        std::sort(out.begin(), out.end());
        return out;
    }
};

}  // namespace

BOOST_AUTO_TEST_CASE(settings_have_defaults_and_are_validated_by_key) {
    // Proves the spec's defaults validate without touching the system, and each bad key is
    // named while unknown keys only warn.
    Fixture f;
    SelfInstance defaults(library().table(), f.host, "{}", f.debAgent(), true);
    BOOST_TEST(defaults.created.ok(), defaults.created.message);
    SelfInstance check(library().table(), f.host, f.settings(), f.debAgent(), true);
    BOOST_TEST(check.created.ok(), check.created.message);
    BOOST_TEST(!fs::exists(f.root));

    SelfInstance bad(library().table(), f.host,
                     "{\"install_root\":\"opt\",\"healthy_within_s\":0,\"restart_cmd\":[],"
                     "\"detach\":\"nohup\",\"watchdog\":\"rel/wd\",\"colour\":1}",
                     f.debAgent(), true);
    BOOST_TEST(bad.created.status == RRA_INVALID_SETTINGS);
    for (const char* key : {"settings.install_root:", "settings.healthy_within_s:",
                            "settings.restart_cmd:", "settings.detach:", "settings.watchdog:"})
        BOOST_TEST(bad.created.message.find(key) != std::string::npos, key);
    BOOST_TEST(f.host.logged("settings.colour: unknown key"));
}

BOOST_AUTO_TEST_CASE(discovery_names_the_running_agent) {
    // Proves the packaged agent (no current) is discovered as v<agent_version>, and an agent
    // started from install_root/current as the release it runs from, without a verdict.
    Fixture f;
    SelfInstance deb(library().table(), f.host, f.settings(), f.debAgent());
    BOOST_REQUIRE_MESSAGE(deb.created.ok(), deb.created.message);
    auto d = deb.discover();
    BOOST_TEST(d.call.ok());
    BOOST_TEST(d.tag.value_or("") == "v0.1.0");
    BOOST_TEST(d.kind == RRA_VERDICT_NONE);

    f.installed("v1.0.0");
    SelfInstance rel(library().table(), f.host, f.settings(), f.release("v1.0.0"));
    BOOST_REQUIRE(rel.created.ok());
    auto r = rel.discover();
    BOOST_TEST(r.tag.value_or("") == "v1.0.0");
    BOOST_TEST(r.kind == RRA_VERDICT_NONE);
}

BOOST_AUTO_TEST_CASE(upgrade_commits_when_the_new_agent_confirms) {
    // Proves install extracts beside the running release, checks --version/--check-config,
    // writes the marker before switching current, prunes only releases other than current
    // and previous, and hands the restart to the watchdog; the new run sees PENDING,
    // confirm commits, the watchdog clears the marker and never restarts a second time.
    Fixture f;
    f.installed("v0.9.0", false);  // an older release: pruned
    f.installed("v1.0.0");
    fs::create_directories(f.root + "/keep-me");
    SelfInstance old(library().table(), f.host, f.settings(), f.release("v1.0.0"));
    BOOST_REQUIRE(old.created.ok());
    BOOST_TEST(old.discover().tag.value_or("") == "v1.0.0");

    auto c = old.install("v1.1.0", f.archive("v1.1.0.tar.gz", fakeAgentScript("1.1.0")),
                         std::string("v1.0.0"));
    BOOST_TEST(c.status == RRA_PENDING_RESTART, c.message);
    BOOST_TEST(f.current() == "releases/v1.1.0");
    BOOST_TEST(f.releases() == (std::vector<std::string>{"v1.0.0", "v1.1.0"}));
    BOOST_TEST(fs::exists(f.root + "/keep-me"));
    BOOST_TEST(f.markerText().find("state=pending") != std::string::npos);
    BOOST_TEST(f.markerText().find("previous=releases/v1.0.0") != std::string::npos);
    BOOST_TEST(f.host.criticalDepth.load() == 0);
    BOOST_TEST(f.host.criticalSections.load() >= 1);
    BOOST_REQUIRE(pollUntil([&] { return countLines(f.restarts) == 1; }, std::chrono::seconds(5)));
    BOOST_TEST(watchdogRunning(f.root));

    SelfInstance next(library().table(), f.host, f.settings(), f.release("v1.1.0"));
    BOOST_REQUIRE(next.created.ok());
    auto d = next.discover();
    BOOST_TEST(d.tag.value_or("") == "v1.1.0");
    BOOST_TEST(d.kind == RRA_VERDICT_PENDING);
    BOOST_TEST(d.verdictTag == "v1.1.0");
    BOOST_TEST(d.fromTag == "v1.0.0");
    auto ok = next.confirm("v1.1.0");
    BOOST_TEST(ok.ok(), ok.message);
    BOOST_REQUIRE(pollUntil([&] { return !f.marker(); }, std::chrono::seconds(5)));
    BOOST_TEST(pollUntil([&] { return !watchdogRunning(f.root); }, std::chrono::seconds(5)));
    BOOST_TEST(countLines(f.restarts) == 1);
    BOOST_TEST(f.current() == "releases/v1.1.0");

    SelfInstance later(library().table(), f.host, f.settings(), f.release("v1.1.0"));
    auto again = later.discover();
    BOOST_TEST(again.tag.value_or("") == "v1.1.0");
    BOOST_TEST(again.kind == RRA_VERDICT_NONE);
}

BOOST_AUTO_TEST_CASE(unproven_release_is_refused_before_anything_changes) {
    // Proves a release whose binary prints another version, rejects the live config, is
    // missing, or is a hostile archive is refused with the reason, leaving current, the
    // releases and the marker untouched and never restarting.
    Fixture f;
    f.installed("v1.0.0");
    SelfInstance old(library().table(), f.host, f.settings(), f.release("v1.0.0"));
    BOOST_REQUIRE(old.created.ok());
    struct Case {
        std::string what, archive, expect;
    };
    std::string hostile = f.tmp / "hostile.tar.gz";
    writeArchive(hostile, {ArchiveEntry::file("../escape", "x")});
    std::string noBinary = f.tmp / "nobin.tar.gz";
    writeArchive(noBinary, {ArchiveEntry::file("README", "no agent here")});
    const Case cases[] = {
        {"wrong version", f.archive("a.tar.gz", fakeAgentScript("1.0.9")),
         "expected 'raspi-release-agent 1.1.0'"},
        {"config rejected", f.archive("b.tar.gz", fakeAgentScript("1.1.0", 78, "cfg-broken")),
         "cfg-broken --config=" + f.config},
        {"no binary", noBinary, "no executable bin/raspi-release-agent"},
        {"hostile", hostile, ".."},
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT(c.what) {
            auto r = old.install("v1.1.0", c.archive, std::string("v1.0.0"));
            BOOST_TEST(r.status == RRA_REFUSED);
            BOOST_TEST(r.message.find(c.expect) != std::string::npos, r.message);
            BOOST_TEST(f.current() == "releases/v1.0.0");
            BOOST_TEST(f.releases() == std::vector<std::string>{"v1.0.0"});
            BOOST_TEST(!f.marker());
        }
    }
    BOOST_TEST(!fs::exists(f.restarts));
}

BOOST_AUTO_TEST_CASE(no_confirmation_in_time_restores_the_previous_agent) {
    // Proves the watchdog puts current back, records the failure and restarts again when
    // the new agent never confirms; the old agent's next discovery reports FAILED with the
    // reason (once), and the failed release is removed.
    Fixture f;
    f.installed("v1.0.0");
    SelfInstance old(library().table(), f.host, f.settings(1), f.release("v1.0.0"));
    BOOST_REQUIRE(old.created.ok());
    auto c = old.install("v2.0.0", f.archive("v2.tar.gz", fakeAgentScript("2.0.0")),
                         std::string("v1.0.0"));
    BOOST_REQUIRE_MESSAGE(c.status == RRA_PENDING_RESTART, c.message);
    BOOST_REQUIRE(pollUntil([&] { return countLines(f.restarts) == 2; }, std::chrono::seconds(6)));
    BOOST_TEST(f.current() == "releases/v1.0.0");
    BOOST_TEST(f.markerText().find("state=failed") != std::string::npos);
    BOOST_TEST(readFile(f.runDir + "/self-watchdog.log").find("did not start, connect") !=
               std::string::npos);

    SelfInstance back(library().table(), f.host, f.settings(1), f.release("v1.0.0"));
    auto d = back.discover();
    BOOST_TEST(d.tag.value_or("") == "v1.0.0");
    BOOST_TEST(d.kind == RRA_VERDICT_FAILED);
    BOOST_TEST(d.verdictTag == "v2.0.0");
    BOOST_TEST(d.fromTag == "v1.0.0");
    BOOST_TEST(d.error.find("within 1 s") != std::string::npos, d.error);
    BOOST_TEST(!f.marker());
    BOOST_TEST(f.releases() == std::vector<std::string>{"v1.0.0"});
    BOOST_TEST(back.discover().kind == RRA_VERDICT_NONE);

    // A late confirm from the failed agent is refused: the probation is over.
    BOOST_TEST(!back.confirm("v2.0.0").ok());
}

BOOST_AUTO_TEST_CASE(first_self_update_from_the_packaged_agent_rolls_back_to_it) {
    // Proves an update from the .deb's agent records no previous release, and the rollback
    // removes current so the launcher starts the packaged binary again.
    Fixture f;
    SelfInstance deb(library().table(), f.host, f.settings(1), f.debAgent());
    BOOST_REQUIRE(deb.created.ok());
    auto c = deb.install("v2.0.0", f.archive("v2.tar.gz", fakeAgentScript("2.0.0")),
                         std::string("v0.1.0"));
    BOOST_REQUIRE_MESSAGE(c.status == RRA_PENDING_RESTART, c.message);
    BOOST_TEST(f.current() == "releases/v2.0.0");
    BOOST_REQUIRE(pollUntil([&] { return countLines(f.restarts) == 2; }, std::chrono::seconds(6)));
    BOOST_TEST(!fs::exists(f.root + "/current"));
    BOOST_TEST(!fs::is_symlink(f.root + "/current"));
    SelfInstance back(library().table(), f.host, f.settings(1), f.debAgent());
    auto d = back.discover();
    BOOST_TEST(d.tag.value_or("") == "v0.1.0");
    BOOST_TEST(d.kind == RRA_VERDICT_FAILED);
    BOOST_TEST(d.fromTag == "v0.1.0");
}

BOOST_AUTO_TEST_CASE(power_loss_during_probation_resumes_the_watch) {
    // Proves that after a reboot (marker pending on disk, no watchdog) the new agent's
    // discovery starts a watchdog without a restart, which still rolls back in time.
    Fixture f;
    f.installed("v1.0.0", false);
    f.installed("v2.0.0");
    {
        std::ofstream m(f.root + "/self-update.state");
        m << "format=1\nstate=pending\ntag=v2.0.0\nfrom_tag=v1.0.0\nprevious=releases/v1.0.0\n"
             "started_ms=1\nhealthy_within_s=1\nrestart_arg=sh\nrestart_arg=-c\n"
             "restart_arg=echo restart >> "
          << f.restarts << "\nerror=\n";
    }
    SelfInstance next(library().table(), f.host, f.settings(1), f.release("v2.0.0"));
    BOOST_REQUIRE(next.created.ok());
    auto d = next.discover();
    BOOST_TEST(d.kind == RRA_VERDICT_PENDING);
    BOOST_TEST(f.host.logged("no watchdog is watching"));
    BOOST_REQUIRE(pollUntil([&] { return countLines(f.restarts) == 1; }, std::chrono::seconds(6)));
    BOOST_TEST(f.current() == "releases/v1.0.0");
    BOOST_TEST(f.markerText().find("state=failed") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(hand_over_cut_short_is_reported_as_failed) {
    // Proves a pending marker found by the old agent (it died before the new one took over)
    // puts current back on the running release and reports FAILED, naming the interruption.
    Fixture f;
    f.installed("v1.0.0", false);
    f.installed("v2.0.0");  // switched, but the old agent came back
    {
        std::ofstream m(f.root + "/self-update.state");
        m << "format=1\nstate=pending\ntag=v2.0.0\nfrom_tag=v1.0.0\nprevious=releases/v1.0.0\n"
             "started_ms=1\nhealthy_within_s=100\nrestart_arg=true\nerror=\n";
    }
    SelfInstance old(library().table(), f.host, f.settings(), f.release("v1.0.0"));
    auto d = old.discover();
    BOOST_TEST(d.tag.value_or("") == "v1.0.0");
    BOOST_TEST(d.kind == RRA_VERDICT_FAILED);
    BOOST_TEST(d.error.find("interrupted") != std::string::npos, d.error);
    BOOST_TEST(f.current() == "releases/v1.0.0");
    BOOST_TEST(!f.marker());
    BOOST_TEST(f.releases() == std::vector<std::string>{"v1.0.0"});
}

BOOST_AUTO_TEST_CASE(second_update_is_refused_while_one_is_on_probation) {
    // Proves only one self-update is on probation at a time.
    Fixture f;
    f.installed("v1.0.0");
    SelfInstance old(library().table(), f.host, f.settings(), f.release("v1.0.0"));
    BOOST_REQUIRE(old.install("v2.0.0", f.archive("v2.tar.gz", fakeAgentScript("2.0.0")),
                              std::string("v1.0.0"))
                      .status == RRA_PENDING_RESTART);
    auto again = old.install("v3.0.0", f.archive("v3.tar.gz", fakeAgentScript("3.0.0")),
                             std::string("v1.0.0"));
    BOOST_TEST(again.status == RRA_REFUSED);
    BOOST_TEST(again.message.find("v2.0.0 is still on probation") != std::string::npos);
    SelfInstance next(library().table(), f.host, f.settings(), f.release("v2.0.0"));
    BOOST_TEST(next.confirm("v2.0.0").ok());
}

BOOST_AUTO_TEST_CASE(failed_confirm_hands_back_to_the_old_agent) {
    // Proves the engine's rollback() in the new agent (confirm failed) restores current,
    // records the failure for the old agent and asks for a restart.
    Fixture f;
    f.installed("v1.0.0");
    SelfInstance old(library().table(), f.host, f.settings(), f.release("v1.0.0"));
    BOOST_REQUIRE(old.install("v2.0.0", f.archive("v2.tar.gz", fakeAgentScript("2.0.0")),
                              std::string("v1.0.0"))
                      .status == RRA_PENDING_RESTART);
    BOOST_REQUIRE(pollUntil([&] { return countLines(f.restarts) == 1; }, std::chrono::seconds(5)));
    SelfInstance next(library().table(), f.host, f.settings(), f.release("v2.0.0"));
    BOOST_TEST(next.discover().kind == RRA_VERDICT_PENDING);
    auto r = next.rollback(std::string("v1.0.0"), "v2.0.0");
    BOOST_TEST(r.ok(), r.message);
    BOOST_TEST(f.current() == "releases/v1.0.0");
    BOOST_TEST(countLines(f.restarts) == 2);
    BOOST_TEST(pollUntil([&] { return !watchdogRunning(f.root); }, std::chrono::seconds(5)));
    SelfInstance back(library().table(), f.host, f.settings(), f.release("v1.0.0"));
    auto d = back.discover();
    BOOST_TEST(d.kind == RRA_VERDICT_FAILED);
    BOOST_TEST(d.verdictTag == "v2.0.0");
}

BOOST_AUTO_TEST_CASE(launcher_prefers_a_working_current) {
    // Proves the launcher runs current's agent when it answers --version, the packaged
    // agent when current is missing or broken, and starts a watchdog for a pending marker.
    Fixture f;
    auto launch = [&]() {
        std::string cmd = "RRA_INSTALL_ROOT=" + f.root + " RRA_PACKAGED_AGENT=" + f.packaged +
                          " RRA_WATCHDOG_DETACH=fork RUNTIME_DIRECTORY=" + f.runDir + " " +
                          kLauncher + " 2>&1";
        std::string out;
        FILE* p = ::popen(cmd.c_str(), "r");
        char buf[256];
        while (p && fgets(buf, sizeof buf, p))
            out += buf;
        if (p)
            ::pclose(p);
        return out;
    };
    fs::create_directories(f.root + "/releases");
    BOOST_TEST(launch().find("packaged-ran") != std::string::npos);
    f.installed("v1.0.0");
    BOOST_TEST(launch().find("v1.0.0-ran") != std::string::npos);
    writeFile(f.root + "/releases/v1.0.0/bin/raspi-release-agent", "#!/bin/sh\nexit 3\n", 0755);
    auto broken = launch();
    BOOST_TEST(broken.find("packaged-ran") != std::string::npos, broken);
    BOOST_TEST(broken.find("does not run") != std::string::npos, broken);

    f.installed("v2.0.0");
    {
        std::ofstream m(f.root + "/self-update.state");
        m << "format=1\nstate=pending\ntag=v2.0.0\nfrom_tag=v1.0.0\nprevious=releases/v1.0.0\n"
             "started_ms=1\nhealthy_within_s=1\nrestart_arg=sh\nrestart_arg=-c\n"
             "restart_arg=echo restart >> "
          << f.restarts << "\nerror=\n";
    }
    BOOST_TEST(launch().find("v2.0.0-ran") != std::string::npos);
    BOOST_REQUIRE(pollUntil([&] { return countLines(f.restarts) == 1; }, std::chrono::seconds(6)));
    BOOST_TEST(f.current() == "releases/v1.0.0");
}
