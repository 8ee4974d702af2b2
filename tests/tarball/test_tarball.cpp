// Tests of the tarball deployer plugin through its real C ABI: install/switch/verify,
// rollback, pruning, discovery, hostile archives, free space, kill -9 at random moments.
#define BOOST_TEST_MODULE tarball
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "plugin_support/archive_builder.hpp"
#include "plugin_support/plugin_harness.hpp"

#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <random>
#include <thread>

using namespace rra::test;
namespace bdata = boost::unit_test::data;

namespace {

const std::string kPlugin = RRA_PLUGIN_DIR "/tarball.so";

PluginLibrary& library() {
    static PluginLibrary lib(kPlugin);
    return lib;
}

// A release archive whose files all name the tag, so a half-switched tree is obvious.
std::vector<ArchiveEntry> release(const std::string& tag, int files = 3,
                                  const std::string& prefix = "") {
    std::vector<ArchiveEntry> e;
    e.push_back(ArchiveEntry::dir(prefix + "bin"));
    e.push_back(ArchiveEntry::file(prefix + "bin/app", "#!/bin/sh\necho " + tag + "\n", 0755));
    e.push_back(ArchiveEntry::file(prefix + "VERSION", tag + "\n"));
    for (int i = 0; i < files; ++i)
        e.push_back(ArchiveEntry::file(prefix + "data/f" + std::to_string(i),
                                       tag + ":" + std::to_string(i)));
    return e;
}

std::string jsonArgv(const std::vector<std::string>& argv) {
    std::string out = "[";
    for (const auto& a : argv) {
        if (out.size() > 1)
            out += ",";
        std::string esc;
        for (char c : a) {
            if (c == '"' || c == '\\')
                esc += '\\';
            esc += c;
        }
        out += "\"" + esc + "\"";
    }
    return out + "]";
}

struct Fixture {
    ScratchDir tmp;
    std::string installDir = tmp / "app";
    std::string outside = tmp / "outside";
    std::string state = tmp / "state";
    TestHost host;

    Fixture() {
        std::filesystem::create_directories(outside);
        std::filesystem::create_directories(state);
        writeFile(outside + "/secret", "untouched");
    }
    std::string settings(const std::string& extra = "") const {
        return "{\"install_dir\":\"" + installDir + "\"" + (extra.empty() ? "" : "," + extra) + "}";
    }
    std::string archive(const std::string& name, const std::vector<ArchiveEntry>& entries,
                        Compression c = Compression::kGzip, bool zip = false) {
        std::string p = tmp / name;
        writeArchive(p, entries, c, zip);
        return p;
    }
    std::string current() const {
        std::error_code ec;
        auto t = std::filesystem::read_symlink(installDir + "/current", ec);
        return ec ? "" : t.string();
    }
    std::vector<std::string> releases() const {
        std::vector<std::string> out;
        for (auto& e : std::filesystem::directory_iterator(installDir + "/releases"))
            out.push_back(e.path().filename().string());
        std::sort(out.begin(), out.end());
        return out;
    }
};

}  // namespace

BOOST_AUTO_TEST_CASE(settings_are_validated_by_key) {
    // Proves every invalid key is named in one error, unknown keys warn, and validate_only
    // leaves the file system alone.
    Fixture f;
    PluginInstance bad(library().table(), f.host,
                       "{\"keep\":0,\"restart_cmd\":\"restart\",\"strip_components\":-1,"
                       "\"colour\":\"red\"}",
                       f.state);
    BOOST_TEST(bad.created.status == RRA_INVALID_SETTINGS);
    BOOST_TEST(bad.created.message.find("settings.install_dir: required") != std::string::npos);
    BOOST_TEST(bad.created.message.find("settings.keep:") != std::string::npos);
    BOOST_TEST(bad.created.message.find("settings.restart_cmd:") != std::string::npos);
    BOOST_TEST(bad.created.message.find("settings.strip_components:") != std::string::npos);
    BOOST_TEST(f.host.logged("settings.colour: unknown key"));

    PluginInstance relative(library().table(), f.host, "{\"install_dir\":\"opt/app\"}", f.state);
    BOOST_TEST(relative.created.message == "settings.install_dir: must be an absolute path");

    PluginInstance check(library().table(), f.host, f.settings(), f.state, true);
    BOOST_TEST(check.created.ok());
    BOOST_TEST(!std::filesystem::exists(f.installDir));
}

BOOST_AUTO_TEST_CASE(install_switches_and_health_passes) {
    // Proves an install extracts into releases/<tag>, switches current inside a critical
    // section, runs restart_cmd, and verify runs health_cmd in current with RRA_* set.
    Fixture f;
    const std::string restarts = f.tmp / "restarts.log";
    const std::string extra =
        "\"restart_cmd\":" + jsonArgv({"sh", "-c", "echo $RRA_COMPONENT $RRA_TAG >> " + restarts}) +
        ",\"health_cmd\":" +
        jsonArgv({"sh", "-c", "test \"$(cat VERSION)\" = \"$RRA_TAG\" && ./bin/app"});
    PluginInstance p(library().table(), f.host, f.settings(extra), f.state);
    BOOST_REQUIRE_MESSAGE(p.created.ok(), p.created.message);
    BOOST_TEST(!p.discoveredTag().has_value());

    auto c = p.install("v1", f.archive("v1.tar.gz", release("v1")));
    BOOST_REQUIRE_MESSAGE(c.ok(), c.message);
    BOOST_TEST(f.current() == "releases/v1");
    BOOST_TEST(readFile(f.installDir + "/current/data/f2") == "v1:2");
    BOOST_TEST(f.host.criticalSections.load() >= 1);
    BOOST_TEST(f.host.criticalDepth.load() == 0);
    BOOST_TEST(readFile(restarts) == "demo v1\n");
    auto v = p.verify("v1", 5000);
    BOOST_TEST(v.ok(), v.message);
    BOOST_TEST(p.discoveredTag().value_or("") == "v1");
    struct stat st {};
    BOOST_REQUIRE(stat((f.installDir + "/current/bin/app").c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 0777) == 0755u);
}

BOOST_AUTO_TEST_CASE(failing_health_rolls_back_to_previous) {
    // Proves a failing health_cmd fails verify with its output in the message, and rollback
    // puts current back on the previous release, deletes the failed one and restarts.
    Fixture f;
    const std::string restarts = f.tmp / "restarts.log";
    const std::string extra =
        "\"restart_cmd\":" + jsonArgv({"sh", "-c", "echo $RRA_TAG >> " + restarts}) +
        ",\"health_cmd\":" +
        jsonArgv({"sh", "-c",
                  "echo checking $RRA_TAG; grep -q v1 VERSION || "
                  "{ echo health-broken-marker >&2; exit 3; }"});
    PluginInstance p(library().table(), f.host, f.settings(extra), f.state);
    BOOST_REQUIRE(p.created.ok());
    BOOST_REQUIRE(p.install("v1", f.archive("v1.tar.gz", release("v1"))).ok());
    BOOST_REQUIRE(p.verify("v1", 3000).ok());
    BOOST_REQUIRE(p.install("v2", f.archive("v2.tar.gz", release("v2")), "v1").ok());
    BOOST_TEST(f.current() == "releases/v2");

    const auto start = std::chrono::steady_clock::now();
    auto v = p.verify("v2", 1500);
    const auto took = std::chrono::steady_clock::now() - start;
    BOOST_TEST(v.status == RRA_ERROR);
    BOOST_TEST(v.message.find("health-broken-marker") != std::string::npos, v.message);
    BOOST_TEST(v.message.find("exit code 3") != std::string::npos, v.message);
    BOOST_TEST(v.message.find("2 attempts") != std::string::npos, v.message);
    BOOST_TEST((took < std::chrono::seconds(3)));

    auto r = p.rollback(std::string("v1"), "v2");
    BOOST_REQUIRE_MESSAGE(r.ok(), r.message);
    BOOST_TEST(f.current() == "releases/v1");
    BOOST_TEST(f.releases() == std::vector<std::string>{"v1"});
    BOOST_TEST(readFile(restarts) == "v1\nv2\nv1\n");
    BOOST_TEST(p.discoveredTag().value_or("") == "v1");
}

BOOST_AUTO_TEST_CASE(failed_first_install_leaves_nothing_current) {
    // Proves rolling back a first install to nothing removes current and the release.
    Fixture f;
    PluginInstance p(library().table(), f.host, f.settings("\"health_cmd\":[\"false\"]"), f.state);
    BOOST_REQUIRE(p.created.ok());
    BOOST_REQUIRE(p.install("v1", f.archive("v1.tar.gz", release("v1"))).ok());
    BOOST_TEST(p.verify("v1", 200).status == RRA_ERROR);
    auto r = p.rollback(std::nullopt, "v1");
    BOOST_REQUIRE_MESSAGE(r.ok(), r.message);
    BOOST_TEST(!std::filesystem::exists(f.installDir + "/current"));
    BOOST_TEST(!std::filesystem::is_symlink(f.installDir + "/current"));
    BOOST_TEST(f.releases().empty());
    BOOST_TEST(!p.discoveredTag().has_value());
}

BOOST_AUTO_TEST_CASE(health_cmd_is_retried_until_it_passes) {
    // Proves verify retries health_cmd (once a second) and succeeds on a later attempt.
    Fixture f;
    const std::string counter = f.tmp / "attempts";
    PluginInstance p(
        library().table(), f.host,
        f.settings("\"health_cmd\":" +
                   jsonArgv({"sh", "-c",
                             "echo x >> " + counter + "; test $(wc -l < " + counter + ") -ge 2"})),
        f.state);
    BOOST_REQUIRE(p.install("v1", f.archive("v1.tar.gz", release("v1"))).ok());
    auto v = p.verify("v1", 5000);
    BOOST_TEST(v.ok(), v.message);
    BOOST_TEST(readFile(counter) == "x\nx\n");
}

BOOST_AUTO_TEST_CASE(failing_restart_cmd_fails_install_with_output) {
    // Proves a failing restart_cmd fails the install (for the host to roll back) and its
    // output ends up in the error.
    Fixture f;
    PluginInstance p(
        library().table(), f.host,
        f.settings("\"restart_cmd\":" + jsonArgv({"sh", "-c", "echo restart-exploded; exit 7"})),
        f.state);
    auto c = p.install("v1", f.archive("v1.tar.gz", release("v1")));
    BOOST_TEST(c.status == RRA_ERROR);
    BOOST_TEST(c.message.find("restart-exploded") != std::string::npos, c.message);
    BOOST_TEST(c.message.find("exit code 7") != std::string::npos, c.message);
}

BOOST_AUTO_TEST_CASE(formats_and_strip_components) {
    // Proves tar.xz, tar.zst, plain tar and zip all install, with strip_components applied.
    Fixture f;
    PluginInstance p(library().table(), f.host, f.settings("\"strip_components\":1"), f.state);
    struct Case {
        std::string tag;
        Compression c;
        bool zip;
    };
    for (const auto& k : std::vector<Case>{{"v1", Compression::kXz, false},
                                           {"v2", Compression::kZstd, false},
                                           {"v3", Compression::kNone, false},
                                           {"v4", Compression::kNone, true}}) {
        auto c = p.install(
            k.tag, f.archive(k.tag + ".archive", release(k.tag, 2, "pkg-1.0/"), k.c, k.zip));
        BOOST_TEST(c.ok(), k.tag << ": " << c.message);
        BOOST_TEST(readFile(f.installDir + "/current/VERSION") == k.tag + "\n");
        BOOST_TEST(std::filesystem::exists(f.installDir + "/current/data/f1"));
    }
}

BOOST_AUTO_TEST_CASE(setuid_and_setgid_are_cleared) {
    // Proves setuid/setgid bits in the archive never reach the disk; exec bits do.
    Fixture f;
    PluginInstance p(library().table(), f.host, f.settings(), f.state);
    auto c = p.install("v1", f.archive("v1.tar.gz", {ArchiveEntry::file("suid", "x", 04755),
                                                     ArchiveEntry::file("sgid", "x", 02755)}));
    BOOST_REQUIRE_MESSAGE(c.ok(), c.message);
    for (const char* name : {"suid", "sgid"}) {
        struct stat st {};
        BOOST_REQUIRE(stat((f.installDir + "/current/" + name).c_str(), &st) == 0);
        BOOST_TEST((st.st_mode & 07777) == 0755u, name);
    }
}

namespace {

struct Hostile {
    std::string name;
    std::vector<ArchiveEntry> entries;  // "@OUT@" in names/targets: the outside directory
    std::string extraSettings;
    std::string expect;  // part of the refusal message
};

std::ostream& operator<<(std::ostream& os, const Hostile& h) {
    return os << h.name;
}

std::vector<Hostile> hostileArchives() {
    using E = ArchiveEntry;
    E bomb = E::file("bomb", "");
    bomb.zeros = 64u << 20;
    return {
        {"dotdot", {E::file("ok", "1"), E::file("../../../outside/pwned", "x")}, "", "'..'"},
        {"absolute", {E::file("@OUT@/pwned", "x")}, "", "absolute"},
        {"symlink_escape_then_write",
         {E::symlink("evil", "../../../outside"), E::file("evil/pwned", "x")},
         "",
         "leads outside"},
        {"symlink_absolute",
         {E::symlink("evil", "@OUT@"), E::file("evil/pwned", "x")},
         "",
         "leads outside"},
        {"symlink_to_dot_then_up",
         {E::dir("sub"), E::symlink("sub/x", "../d/.."), E::symlink("d", "."), E::file("a", "1")},
         "",
         "leads outside"},
        {"hardlink_outside", {E::hardLink("h", "../../../outside/secret")}, "", "hard link"},
        {"hardlink_absolute", {E::hardLink("h", "@OUT@/secret")}, "", "hard link"},
        {"hardlink_through_symlink",
         {E::symlink("s", "sub"), E::dir("sub"), E::hardLink("h", "s/../../x")},
         "",
         "hard link"},
        {"char_device", {E::special("null", AE_IFCHR)}, "", "device nodes"},
        {"block_device", {E::special("sda", AE_IFBLK)}, "", "device nodes"},
        {"fifo", {E::special("pipe", AE_IFIFO)}, "", "device nodes"},
        {"gzip_bomb",
         {E::file("small", "1"), bomb},
         "\"max_unpacked_bytes\":8388608",
         "max_unpacked_bytes"},
        {"not_an_archive", {}, "", "not a readable archive"},
    };
}

std::string substitute(std::string s, const std::string& out) {
    auto pos = s.find("@OUT@");
    if (pos != std::string::npos)
        s.replace(pos, 5, out);
    return s;
}

}  // namespace

BOOST_DATA_TEST_CASE(hostile_archive_is_refused, bdata::make(hostileArchives()), h) {
    // Proves each hostile archive is refused as a whole (RRA_REFUSED), writes nothing outside
    // releases/ and leaves the previous release current and intact.
    Fixture f;
    PluginInstance p(library().table(), f.host, f.settings(h.extraSettings), f.state);
    BOOST_REQUIRE(p.install("v1", f.archive("v1.tar.gz", release("v1"))).ok());

    std::vector<ArchiveEntry> entries = h.entries;
    for (auto& e : entries) {
        e.name = substitute(e.name, f.outside);
        e.link = substitute(e.link, f.outside);
    }
    std::string artifact = f.tmp / "hostile.tar.gz";
    if (h.name == "not_an_archive")
        writeFile(artifact, "this is not an archive at all, just text\n");
    else
        writeArchive(artifact, entries);
    const auto before = listTree(f.tmp.path());

    auto c = p.install("v2", artifact, "v1");
    BOOST_TEST(c.status == RRA_REFUSED, c.message);
    BOOST_TEST(c.message.find(h.expect) != std::string::npos, c.message);
    BOOST_TEST(listTree(f.tmp.path()) == before, "file system changed");
    BOOST_TEST(readFile(f.outside + "/secret") == "untouched");
    BOOST_TEST(f.current() == "releases/v1");
    BOOST_TEST(f.releases() == std::vector<std::string>{"v1"});
    BOOST_TEST(p.discoveredTag().value_or("") == "v1");
}

namespace {

// A small tmpfs, unmounted at scope exit.
struct SmallMount {
    std::string path;
    bool mounted = false;
    SmallMount(const std::string& p, const std::string& size) : path(p) {
        std::filesystem::create_directories(p);
        mounted = mount("tmpfs", p.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
    }
    ~SmallMount() {
        if (mounted)
            umount2(path.c_str(), MNT_DETACH);
    }
};

}  // namespace

BOOST_AUTO_TEST_CASE(archive_larger_than_free_space_is_refused) {
    // Proves an archive that unpacks to more than the free space is refused with a
    // "needs N MiB, has M MiB" message, leaving the previous release current.
    if (geteuid() != 0) {
        BOOST_TEST_MESSAGE("skipped: mounting a tmpfs needs root");
        return;
    }
    Fixture f;
    SmallMount small(f.tmp / "small", "8m");
    BOOST_REQUIRE_MESSAGE(small.mounted, "mount tmpfs failed");
    const std::string installDir = small.path + "/app";
    PluginInstance p(library().table(), f.host, "{\"install_dir\":\"" + installDir + "\"}",
                     f.state);
    BOOST_REQUIRE(p.install("v1", f.archive("v1.tar.gz", release("v1"))).ok());
    ArchiveEntry big = ArchiveEntry::file("big", "");
    big.zeros = 16u << 20;
    auto c = p.install("v2", f.archive("v2.tar.gz", {ArchiveEntry::file("a", "1"), big}), "v1");
    BOOST_TEST(c.status == RRA_REFUSED, c.message);
    BOOST_TEST(c.message.find("needs 17 MiB, has") != std::string::npos, c.message);
    BOOST_TEST(std::filesystem::read_symlink(installDir + "/current").string() == "releases/v1");
    BOOST_TEST(listTree(installDir + "/releases").size() ==
               listTree(installDir + "/releases/v1").size() + 1);
}

BOOST_AUTO_TEST_CASE(pruning_keeps_current_and_previous) {
    // Proves cleanup keeps `keep` releases (newest first) and never current or the
    // previous good release, even with keep = 1.
    Fixture f;
    PluginInstance p(library().table(), f.host, f.settings("\"keep\":2"), f.state);
    std::optional<std::string> from;
    for (const char* tag : {"v1", "v2", "v3", "v4"}) {
        auto c = p.install(tag, f.archive(std::string(tag) + ".tgz", release(tag)), from);
        BOOST_REQUIRE_MESSAGE(c.ok(), c.message);
        from = tag;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // distinct mtimes
    }
    BOOST_TEST(f.releases() == (std::vector<std::string>{"v3", "v4"}));

    Fixture g;
    PluginInstance one(library().table(), g.host, g.settings("\"keep\":1"), g.state);
    BOOST_REQUIRE(one.install("v1", g.archive("v1.tgz", release("v1"))).ok());
    BOOST_REQUIRE(one.install("v2", g.archive("v2.tgz", release("v2")), "v1").ok());
    BOOST_TEST(g.releases() == (std::vector<std::string>{"v1", "v2"}));
    BOOST_REQUIRE(one.rollback(std::string("v1"), "v2").ok());
    BOOST_TEST(g.releases() == std::vector<std::string>{"v1"});
}

BOOST_AUTO_TEST_CASE(reinstalling_the_current_tag_swaps_atomically) {
    // Proves installing the tag that is already current replaces its content in place.
    Fixture f;
    PluginInstance p(library().table(), f.host, f.settings(), f.state);
    BOOST_REQUIRE(p.install("v1", f.archive("a.tgz", release("v1"))).ok());
    auto entries = release("v1");
    entries.push_back(ArchiveEntry::file("extra", "new"));
    auto c = p.install("v1", f.archive("b.tgz", entries), "v1");
    BOOST_REQUIRE_MESSAGE(c.ok(), c.message);
    BOOST_TEST(readFile(f.installDir + "/current/extra") == "new");
    BOOST_TEST(f.releases() == std::vector<std::string>{"v1"});
}

BOOST_AUTO_TEST_CASE(discovery_cleans_leftovers_and_rejects_dangling_current) {
    // Proves discovery removes .partial leftovers and reports a current pointing at a
    // missing release as an error, treated as nothing installed.
    Fixture f;
    PluginInstance p(library().table(), f.host, f.settings(), f.state);
    std::filesystem::create_directories(f.installDir + "/releases/.v9.partial/bin");
    std::filesystem::create_symlink("releases/v9", f.installDir + "/current");
    BOOST_TEST(!p.discoveredTag().has_value());
    BOOST_TEST(f.host.logged("missing or not a complete release"));
    BOOST_TEST(!std::filesystem::exists(f.installDir + "/releases/.v9.partial"));

    std::filesystem::remove(f.installDir + "/current");
    std::filesystem::create_symlink("releases/.v9.partial", f.installDir + "/current");
    BOOST_TEST(!p.discoveredTag().has_value());
}

BOOST_AUTO_TEST_CASE(cancelled_install_touches_nothing) {
    // Proves a cancelled install stops, removes its partial directory and keeps current.
    Fixture f;
    PluginInstance p(library().table(), f.host, f.settings(), f.state);
    BOOST_REQUIRE(p.install("v1", f.archive("v1.tgz", release("v1"))).ok());
    f.host.cancel = true;
    auto c = p.install("v2", f.archive("v2.tgz", release("v2")), "v1");
    BOOST_TEST(c.status == RRA_CANCELLED, c.message);
    BOOST_TEST(f.current() == "releases/v1");
    BOOST_TEST(f.releases() == std::vector<std::string>{"v1"});
}

BOOST_AUTO_TEST_CASE(kill_9_at_random_moments_leaves_a_complete_current) {
    // Proves that killing the installing process with SIGKILL at 50 random moments always
    // leaves current on a complete release, and that discovery agrees with it.
    Fixture f;
    const int kFiles = 200;
    const std::vector<std::string> tags{"v1", "v2", "v3"};
    std::map<std::string, std::string> archives;
    std::map<std::string, std::vector<std::string>> expected;
    for (const auto& t : tags) {
        archives[t] = f.archive(t + ".tgz", release(t, kFiles));
    }
    {
        PluginInstance p(library().table(), f.host, f.settings(), f.state);
        BOOST_REQUIRE(p.install("v1", archives["v1"]).ok());
        for (const auto& t : tags) {
            BOOST_REQUIRE(p.install(t, archives[t]).ok());
            expected[t] = listTree(f.installDir + "/current/");
        }
    }
    const unsigned seed =
        static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count());
    BOOST_TEST_MESSAGE("kill -9 seed " << seed);
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> delayMs(0, 120);

    for (int round = 0; round < 50; ++round) {
        pid_t child = fork();
        BOOST_REQUIRE(child >= 0);
        if (child == 0) {
            TestHost host;
            PluginInstance p(library().table(), host, f.settings(), f.state);
            for (size_t i = static_cast<size_t>(round);; ++i) {
                const std::string& t = tags[i % tags.size()];
                if (!p.install(t, archives[t]).ok())
                    _exit(3);
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(delayMs(rng)));
        kill(child, SIGKILL);
        int status = 0;
        waitpid(child, &status, 0);
        BOOST_REQUIRE_MESSAGE(WIFSIGNALED(status), "round " << round << ": child exited early");

        const std::string target = f.current();
        BOOST_REQUIRE_MESSAGE(target.rfind("releases/v", 0) == 0,
                              "round " << round << ": current -> '" << target << "'");
        const std::string tag = target.substr(std::string("releases/").size());
        BOOST_REQUIRE_MESSAGE(listTree(f.installDir + "/current/") == expected[tag],
                              "round " << round << ": " << tag << " incomplete");
        BOOST_REQUIRE(readFile(f.installDir + "/current/data/f" + std::to_string(kFiles - 1)) ==
                      tag + ":" + std::to_string(kFiles - 1));

        TestHost host;
        PluginInstance p(library().table(), host, f.settings(), f.state);
        BOOST_REQUIRE_EQUAL(p.discoveredTag().value_or("none"), tag);
        for (const auto& name : f.releases())
            BOOST_REQUIRE_MESSAGE(name[0] != '.', "leftover " << name << " after discovery");
    }
}
