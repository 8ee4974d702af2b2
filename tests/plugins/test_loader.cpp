// Proves the loader accepts a good plugin and refuses each broken one with a message that
// names the file (and the versions where they matter), without stopping the others.
#define BOOST_TEST_MODULE plugins
#include <boost/test/unit_test.hpp>

#include "plugins/plugin_loader.hpp"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace fs = std::filesystem;
using namespace rra::plugins;

namespace {

const std::string kDir = RRA_TEST_PLUGIN_DIR;

// A private copy of some test plugins in a fresh 0755 directory.
struct PluginDir {
    fs::path dir;
    explicit PluginDir(std::initializer_list<const char*> names) {
        char tmpl[] = "/tmp/rra-plugins-XXXXXX";
        dir = ::mkdtemp(tmpl);
        ::chmod(dir.c_str(), 0755);
        for (const char* n : names) {
            fs::copy_file(kDir + "/" + n + ".so", dir / (std::string(n) + ".so"));
            ::chmod((dir / (std::string(n) + ".so")).c_str(), 0755);
        }
    }
    ~PluginDir() { fs::remove_all(dir); }
    std::string file(const char* n) const { return (dir / (std::string(n) + ".so")).string(); }
};

bool contains(const std::string& hay, const std::string& needle) {
    return hay.find(needle) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_CASE(good_plugin_loads_with_its_name) {
    // A well-formed plugin is accepted and exposes its deployer name and hooks.
    PluginDir d({"scripted"});
    auto p = loadPlugin(d.file("scripted"));
    BOOST_REQUIRE_MESSAGE(p.has_value(), (p ? "" : p.error().message()));
    BOOST_TEST((*p)->name() == "scripted");
    BOOST_TEST((*p)->table().install != nullptr);
}

struct BrokenCase {
    const char* file;
    const char* expect;
};
std::ostream& operator<<(std::ostream& os, const BrokenCase& c) {
    return os << c.file;
}

BOOST_AUTO_TEST_CASE(each_broken_plugin_is_refused_naming_the_file) {
    // Every kind of broken table is refused, and the message names the file and why.
    const BrokenCase cases[] = {
        {"broken_no_entry", "no entry symbol rra_plugin_entry_v1"},
        {"broken_abi_major", "ABI version 2.0"},
        {"broken_short_table", "short table"},
        {"broken_null_table", "returned no table"},
        {"broken_no_install", "lacks a required hook"},
    };
    for (const auto& c : cases) {
        PluginDir d({c.file});
        auto p = loadPlugin(d.file(c.file));
        BOOST_TEST_CONTEXT(c.file) {
            BOOST_REQUIRE(!p.has_value());
            BOOST_TEST(contains(p.error().message(), d.file(c.file)), p.error().message());
            BOOST_TEST(contains(p.error().message(), c.expect), p.error().message());
        }
    }
}

BOOST_AUTO_TEST_CASE(abi_mismatch_names_both_versions) {
    // The ABI error tells the operator which versions disagree.
    PluginDir d({"broken_abi_major"});
    auto p = loadPlugin(d.file("broken_abi_major"));
    BOOST_REQUIRE(!p);
    BOOST_TEST(contains(p.error().message(), "agent supports 1.0"), p.error().message());
}

BOOST_AUTO_TEST_CASE(world_writable_file_or_directory_is_refused) {
    // A plugin file, or its directory, writable by group or others is never loaded.
    {
        PluginDir d({"scripted"});
        ::chmod(d.file("scripted").c_str(), 0666);
        auto p = loadPlugin(d.file("scripted"));
        BOOST_REQUIRE(!p);
        BOOST_TEST(contains(p.error().message(), "writable by group or others"),
                   p.error().message());
        BOOST_TEST(contains(p.error().message(), d.file("scripted")), p.error().message());
    }
    {
        PluginDir d({"scripted"});
        ::chmod(d.dir.c_str(), 0777);
        auto report = loadPluginDir(d.dir.string());
        BOOST_TEST(report.byName.empty());
        BOOST_REQUIRE(report.errors.size() == 1u);
        BOOST_TEST(contains(report.errors[0].message(), "plugin directory"));
        BOOST_TEST(contains(report.errors[0].message(), d.dir.string()));
    }
}

BOOST_AUTO_TEST_CASE(directory_scan_skips_broken_and_duplicate_plugins) {
    // A directory with good, broken and duplicate plugins loads the good one only and
    // reports every other file.
    PluginDir d({"scripted", "scripted_twin", "broken_no_entry", "broken_abi_major"});
    auto report = loadPluginDir(d.dir.string());
    BOOST_TEST(report.byName.size() == 1u);
    BOOST_TEST(report.byName.count("scripted") == 1u);
    BOOST_REQUIRE(report.errors.size() == 3u);
    bool dup = false;
    for (const auto& e : report.errors)
        if (contains(e.message(), "duplicate deployer name 'scripted'"))
            dup = true;
    BOOST_TEST(dup);
}

BOOST_AUTO_TEST_CASE(missing_directory_is_reported) {
    // A plugin directory that does not exist is an error the agent can report.
    auto report = loadPluginDir("/nonexistent/rra-plugins");
    BOOST_TEST(report.byName.empty());
    BOOST_REQUIRE(report.errors.size() == 1u);
    BOOST_TEST(contains(report.errors[0].message(), "/nonexistent/rra-plugins"));
}
