// Tests of the deb deployer plugin through its real C ABI against the real dpkg in a
// throwaway root: install, upgrade, failing postinst + rollback, repair, removal, lock.
#define BOOST_TEST_MODULE deb
#include <boost/test/unit_test.hpp>

#include "plugin_support/archive_builder.hpp"
#include "plugin_support/plugin_harness.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

using namespace rra::test;

namespace {

const std::string kPlugin = RRA_PLUGIN_DIR "/deb.so";
const std::string kPackage = "rra-demo";

PluginLibrary& library() {
    static PluginLibrary lib(kPlugin);
    return lib;
}

bool canRun() {
    if (geteuid() != 0) {
        BOOST_TEST_MESSAGE("skipped: dpkg into a throwaway root needs root");
        return false;
    }
    return true;
}

int sh(const std::string& cmd) {
    return std::system(cmd.c_str());
}

struct Fixture {
    ScratchDir tmp;
    std::string root = tmp / "root";
    std::string state = tmp / "state";
    TestHost host;

    Fixture() {
        for (const char* d : {"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers"})
            std::filesystem::create_directories(root + "/" + d);
        writeFile(root + "/var/lib/dpkg/status", "");
        std::filesystem::create_directories(state);
    }
    std::string settings(const std::string& extra = "") const {
        return "{\"package\":\"" + kPackage + "\",\"dpkg_root\":\"" + root + "\"" +
               (extra.empty() ? "" : "," + extra) + "}";
    }
    // A .deb of version `version` built with dpkg-deb; `postinst` is its script body.
    std::string buildDeb(const std::string& version, const std::string& postinst = "exit 0",
                         const std::string& package = kPackage) {
        const std::string dir = tmp / ("build-" + package + "-" + version);
        std::filesystem::create_directories(dir + "/DEBIAN");
        std::filesystem::create_directories(dir + "/usr/share/" + package);
        std::filesystem::create_directories(dir + "/etc");
        writeFile(dir + "/DEBIAN/control",
                  "Package: " + package + "\nVersion: " + version +
                      "\nArchitecture: all\nMaintainer: Test <t@example.com>\n"
                      "Description: test package\n");
        writeFile(dir + "/DEBIAN/conffiles", "/etc/" + package + ".conf\n");
        writeFile(dir + "/DEBIAN/postinst",
                  "#!/bin/sh\necho postinst " + version + "\n" + postinst + "\n", 0755);
        writeFile(dir + "/etc/" + package + ".conf", "shipped " + version + "\n");
        writeFile(dir + "/usr/share/" + package + "/VERSION", version + "\n");
        const std::string deb = tmp / (package + "_" + version + ".deb");
        BOOST_REQUIRE(sh("dpkg-deb -Zgzip --root-owner-group --build " + dir + " " + deb +
                         " >/dev/null") == 0);
        return deb;
    }
    std::string status() const {
        const std::string out = tmp / "status.out";
        sh("dpkg-query --admindir=" + root + "/var/lib/dpkg -W -f='${Status} ${Version}' " +
           kPackage + " > " + out + " 2>/dev/null");
        return readFile(out);
    }
};

}  // namespace

BOOST_AUTO_TEST_CASE(settings_are_validated_by_key) {
    // Proves missing/invalid keys are named, unknown keys warn, validate_only is side-effect
    // free even for a missing root.
    Fixture f;
    PluginInstance bad(library().table(), f.host,
                       "{\"dpkg_root\":\"relative\",\"tag_prefix\":3,\"extra\":1}", f.state);
    BOOST_TEST(bad.created.status == RRA_INVALID_SETTINGS);
    BOOST_TEST(bad.created.message ==
               "settings.package: required; settings.dpkg_root: must be an absolute path; "
               "settings.tag_prefix: must be a string");
    BOOST_TEST(f.host.logged("settings.extra: unknown key"));
    PluginInstance name(library().table(), f.host, "{\"package\":\"Bad Name\"}", f.state);
    BOOST_TEST(name.created.status == RRA_INVALID_SETTINGS);
    PluginInstance check(library().table(), f.host,
                         "{\"package\":\"x1\",\"dpkg_root\":\"/nonexistent/root\"}", f.state, true);
    BOOST_TEST(check.created.ok(), check.created.message);
}

BOOST_AUTO_TEST_CASE(install_upgrade_fail_and_roll_back) {
    // Proves v1 install, v2 upgrade (local conffile kept, no prompt), v3 with a failing
    // postinst fails with its output, and rollback reinstalls the cached v2; discovery is
    // right after each step.
    if (!canRun())
        return;
    Fixture f;
    PluginInstance p(library().table(), f.host,
                     f.settings("\"health_cmd\":[\"sh\",\"-c\",\"test -n \\\"$RRA_TAG\\\"\"]"),
                     f.state);
    BOOST_REQUIRE_MESSAGE(p.created.ok(), p.created.message);
    BOOST_TEST(!p.discoveredTag().has_value());

    auto c = p.install("v1.0.0", f.buildDeb("1.0.0-1"));
    BOOST_REQUIRE_MESSAGE(c.ok(), c.message);
    BOOST_TEST(p.discoveredTag().value_or("") == "v1.0.0");
    BOOST_TEST(p.verify("v1.0.0", 5000).ok());
    BOOST_TEST(std::filesystem::exists(f.root + "/var/log/dpkg.log"));
    writeFile(f.root + "/etc/rra-demo.conf", "local edit\n");

    c = p.install("v2.0.0", f.buildDeb("1:2.0.0-3"), std::string("v1.0.0"));
    BOOST_REQUIRE_MESSAGE(c.ok(), c.message);
    BOOST_TEST(p.discoveredTag().value_or("") == "v2.0.0");
    BOOST_TEST(p.verify("v2.0.0", 5000).ok());
    BOOST_TEST(readFile(f.root + "/etc/rra-demo.conf") == "local edit\n");
    BOOST_TEST(readFile(f.root + "/usr/share/rra-demo/VERSION") == "1:2.0.0-3\n");

    c = p.install("v3.0.0", f.buildDeb("1:3.0.0-1", "echo postinst-exploded >&2; exit 1"),
                  std::string("v2.0.0"));
    BOOST_TEST(c.status == RRA_ERROR);
    BOOST_TEST(c.message.find("postinst-exploded") != std::string::npos, c.message);
    auto v = p.verify("v3.0.0", 1000);
    BOOST_TEST(v.status == RRA_ERROR);
    BOOST_TEST(v.message.find("half-configured") != std::string::npos, v.message);

    auto r = p.rollback(std::string("v2.0.0"), "v3.0.0");
    BOOST_REQUIRE_MESSAGE(r.ok(), r.message);
    BOOST_TEST(f.host.fetched.empty());
    BOOST_TEST(f.status() == "install ok installed 1:2.0.0-3");
    BOOST_TEST(p.discoveredTag().value_or("") == "v2.0.0");
    BOOST_TEST(p.verify("v2.0.0", 5000).ok());
}

BOOST_AUTO_TEST_CASE(rollback_fetches_previous_deb_when_not_cached) {
    // Proves rollback asks the host for the previous tag's asset when the .deb is not in
    // the state directory (installed by other means).
    if (!canRun())
        return;
    Fixture f;
    const std::string v2 = f.buildDeb("2.0.0-1");
    BOOST_REQUIRE(sh("dpkg --root=" + f.root + " --log=" + f.tmp.path() +
                     "/dpkg.log --force-script-chrootless -i " + v2 + " >/dev/null") == 0);
    PluginInstance p(library().table(), f.host, f.settings(), f.state);
    BOOST_TEST(p.discoveredTag().value_or("") == "v2.0.0");
    auto c = p.install("v3.0.0", f.buildDeb("3.0.0-1", "exit 1"), std::string("v2.0.0"));
    BOOST_TEST(c.status == RRA_ERROR);

    auto missing = p.rollback(std::string("v2.0.0"), "v3.0.0");
    BOOST_TEST(missing.status == RRA_ERROR);
    BOOST_TEST(missing.message.find("no asset for v2.0.0") != std::string::npos, missing.message);

    f.host.assets["v2.0.0"] = v2;
    auto r = p.rollback(std::string("v2.0.0"), "v3.0.0");
    BOOST_REQUIRE_MESSAGE(r.ok(), r.message);
    BOOST_TEST(f.host.fetched == (std::vector<std::string>{"v2.0.0", "v2.0.0"}));
    BOOST_TEST(f.status() == "install ok installed 2.0.0-1");
    BOOST_TEST(p.discoveredTag().value_or("") == "v2.0.0");
}

BOOST_AUTO_TEST_CASE(discovery_repairs_half_configured_package) {
    // Proves discovery finishes an interrupted configuration with dpkg --configure -a and
    // reports it.
    if (!canRun())
        return;
    Fixture f;
    const std::string flag = f.tmp / "allow";
    PluginInstance p(library().table(), f.host, f.settings(), f.state);
    auto c = p.install("v1.0.0", f.buildDeb("1.0.0-1", "test -e " + flag));
    BOOST_TEST(c.status == RRA_ERROR);
    BOOST_TEST(f.status() == "install ok half-configured 1.0.0-1");
    std::optional<std::string> tag;
    BOOST_TEST(p.discover(tag).status == RRA_ERROR);  // the postinst still fails

    writeFile(flag, "");
    TestHost host;
    PluginInstance fresh(library().table(), host, f.settings(), f.state);
    BOOST_TEST(fresh.discoveredTag().value_or("") == "v1.0.0");
    BOOST_TEST(host.logged("dpkg --configure -a"));
    BOOST_TEST(f.status() == "install ok installed 1.0.0-1");
}

BOOST_AUTO_TEST_CASE(rollback_to_nothing_removes_the_package) {
    // Proves rolling back a first install removes the package.
    if (!canRun())
        return;
    Fixture f;
    PluginInstance p(library().table(), f.host, f.settings(), f.state);
    BOOST_REQUIRE(p.install("v1.0.0", f.buildDeb("1.0.0-1")).ok());
    auto r = p.rollback(std::nullopt, "v1.0.0");
    BOOST_REQUIRE_MESSAGE(r.ok(), r.message);
    BOOST_TEST(!p.discoveredTag().has_value());
    BOOST_TEST(!std::filesystem::exists(f.root + "/usr/share/rra-demo/VERSION"));
}

BOOST_AUTO_TEST_CASE(wrong_package_and_unasked_downgrade_are_refused) {
    // Proves a .deb of another package, a version that does not match the tag, and a
    // downgrade outside pins/rollbacks are refused without touching the root.
    if (!canRun())
        return;
    Fixture f;
    PluginInstance p(library().table(), f.host, f.settings(), f.state);
    BOOST_TEST(p.install("v1.0.0", f.buildDeb("1.0.0-1", "exit 0", "other-pkg")).status ==
               RRA_REFUSED);
    BOOST_TEST(p.install("v1.0.0", f.buildDeb("1.0.1-1")).status == RRA_REFUSED);
    BOOST_TEST(f.status().empty());
    BOOST_REQUIRE(p.install("v2.0.0", f.buildDeb("2.0.0-1")).ok());
    const std::string v1 = f.buildDeb("1.0.0-1");
    auto down = p.install("v1.0.0", v1, std::string("v2.0.0"));
    BOOST_TEST(down.status == RRA_REFUSED, down.message);
    BOOST_TEST(p.discoveredTag().value_or("") == "v2.0.0");
    BOOST_TEST(p.install("v1.0.0", v1, std::string("v2.0.0"), true).ok());
    BOOST_TEST(p.discoveredTag().value_or("") == "v1.0.0");
}

BOOST_AUTO_TEST_CASE(waits_while_dpkg_is_locked) {
    // Proves install waits while another process holds the dpkg lock, and gives up at the
    // deadline naming the lock.
    if (!canRun())
        return;
    Fixture f;
    const std::string deb = f.buildDeb("1.0.0-1");
    const std::string lock = f.root + "/var/lib/dpkg/lock-frontend";
    int fd = open(lock.c_str(), O_RDWR | O_CREAT, 0640);
    BOOST_REQUIRE(fd >= 0);
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    BOOST_REQUIRE(fcntl(fd, F_SETLK, &fl) == 0);

    {
        TestHost host;
        host.remainingMs = 1500;
        PluginInstance p(library().table(), host, f.settings(), f.state);
        auto c = p.install("v1.0.0", deb);
        BOOST_TEST(c.status == RRA_ERROR);
        BOOST_TEST(c.message.find("lock") != std::string::npos, c.message);
    }

    PluginInstance p(library().table(), f.host, f.settings(), f.state);
    std::thread release([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(1500));
        close(fd);
    });
    const auto start = std::chrono::steady_clock::now();
    auto c = p.install("v1.0.0", deb);
    const auto took = std::chrono::steady_clock::now() - start;
    release.join();
    BOOST_TEST(c.ok(), c.message);
    BOOST_TEST((took >= std::chrono::milliseconds(1400)));
    BOOST_TEST(f.host.logged("dpkg is locked by another process"));
    BOOST_TEST(p.discoveredTag().value_or("") == "v1.0.0");
}
