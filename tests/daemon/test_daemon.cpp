// Runs the real raspi-release-agent binary: --check-config exit codes and messages, the
// daemon staying up and logging its plugins and components, SIGHUP reloads (valid and
// invalid), and a prompt exit on SIGTERM.
#define BOOST_TEST_MODULE daemon
#include <boost/test/unit_test.hpp>

#include "support/test_support.hpp"

#include <filesystem>

using namespace rra::test;
namespace fs = std::filesystem;

namespace {

const std::string kAgent = RRA_AGENT_BINARY;

// A temp dir holding a private, 0755 copy of the scripted test plugin.
struct Fixture {
    TempDir d;
    Fixture() {
        fs::create_directories(d.path() / "plugins");
        ::chmod((d.path() / "plugins").c_str(), 0755);
        fs::copy_file(std::string(RRA_TEST_PLUGIN_DIR) + "/scripted.so",
                      d.path() / "plugins/scripted.so");
        ::chmod((d.path() / "plugins/scripted.so").c_str(), 0755);
    }
    // A config for the scripted plugin with `components` (JSON array body).
    std::string config(const std::string& components, const std::string& extraAgent = "") {
        std::string path = d.str("agent.json");
        writeFile(path, R"({"agent": {"id": "pi-test", "plugin_dir": ")" + d.str("plugins") +
                            R"(", "work_dir": ")" + d.str("work") + R"(", "runtime_dir": ")" +
                            d.str("run") + R"(", "components_dir": ")" + d.str("components.d") +
                            "\"" + extraAgent +
                            R"(}, "proxy": {"url": "ws://127.0.0.1:9", "reconnect_initial_ms": 100},
                "github": {"api_url": "http://127.0.0.1:9"}, "components": [)" +
                            components + "]}");
        return path;
    }
};

std::string comp(const std::string& name, const std::string& type = "scripted",
                 const std::string& settings = "{}") {
    return R"({"name": ")" + name + R"(", "type": ")" + type + R"(", "repo": "acme/)" + name +
           R"(", "asset": "x.tgz", "settings": )" + settings + "}";
}

}  // namespace

BOOST_AUTO_TEST_CASE(version_and_help_exit_zero) {
    // --version prints the version; --help describes the options.
    TempDir d;
    auto v = run({kAgent, "--version"}, d.str());
    BOOST_TEST(v.code == 0);
    BOOST_TEST(contains(v.out, "raspi-release-agent "), v.out);
    auto h = run({kAgent, "--help"}, d.str());
    BOOST_TEST(h.code == 0);
    BOOST_TEST(contains(h.out, "--check-config"), h.out);
}

BOOST_AUTO_TEST_CASE(check_config_accepts_shipped_example) {
    // The example config in conf/ is valid with the built plugins (tarball, deb).
    TempDir d;
    auto r = run({kAgent, "--check-config",
                  std::string("--config=") + RRA_SOURCE_DIR + "/conf/example.json"},
                 d.str());
    BOOST_TEST(r.code == 0, r.err);
    BOOST_TEST(contains(r.out, "configuration OK"), r.out);
}

BOOST_AUTO_TEST_CASE(shipped_default_config_asks_for_proxy_url) {
    // The packaged agent.json fails until the operator sets proxy.url, and says so.
    TempDir d;
    auto r = run(
        {kAgent, "--check-config", std::string("--config=") + RRA_SOURCE_DIR + "/conf/agent.json"},
        d.str());
    BOOST_TEST(r.code == 78);
    BOOST_TEST(contains(r.err, "agent.json: proxy.url: required"), r.err);
}

BOOST_AUTO_TEST_CASE(unknown_option_is_a_usage_error_64) {
    // 78 means "fix the config file"; a wrong command line is EX_USAGE.
    TempDir d;
    auto r = run({kAgent, "--no-such-option"}, d.str());
    BOOST_TEST(r.code == 64);
    BOOST_TEST(contains(r.err, "no-such-option"), r.err);
    r = run({kAgent, "--check-config", "--config"}, d.str());
    BOOST_TEST(r.code == 64);
}

BOOST_AUTO_TEST_CASE(check_config_names_missing_proxy_section_as_proxy_url) {
    // The contract's required key is proxy.url; a config without a proxy section says so.
    Fixture f;
    std::string path = f.d.str("agent.json");
    writeFile(path, R"({"agent": {"components_dir": ")" + f.d.str("components.d") + R"("}})");
    auto r = run({kAgent, "--check-config", "--config=" + path}, f.d.str());
    BOOST_TEST(r.code == 78);
    BOOST_TEST(contains(r.err, path + ": proxy.url: required"), r.err);
}

BOOST_AUTO_TEST_CASE(check_config_names_unknown_settings_keys_by_file_and_path) {
    // Unknown keys inside `settings`, found by the real tarball plugin, are warnings that
    // name the file and the key path like the loader's own; the exit code stays 0.
    Fixture f;
    std::string path = f.d.str("agent.json");
    std::string dropIn = f.d.str("components.d/50-api.json");
    writeFile(path, R"({"agent": {"id": "pi-test", "work_dir": ")" + f.d.str("work") +
                        R"(", "runtime_dir": ")" + f.d.str("run") + R"(", "components_dir": ")" +
                        f.d.str("components.d") + R"("}, "proxy": {"url": "ws://127.0.0.1:9"},
                "components": [{"name": "web", "type": "tarball", "repo": "acme/web",
                  "asset": "w.tgz", "settings": {"install_dir": ")" +
                        f.d.str("web") + R"(", "colour": 1}}]})");
    writeFile(dropIn, R"({"name": "api", "type": "tarball", "repo": "acme/api", "asset": "a.tgz",
                  "settings": {"install_dir": ")" +
                          f.d.str("api") + R"(", "keep2": 3}})");
    auto r = run({kAgent, "--check-config", "--config=" + path}, f.d.str());
    BOOST_TEST(r.code == 0, r.err);
    BOOST_TEST(contains(r.err, path + ": components[0].settings.colour: unknown key"), r.err);
    BOOST_TEST(contains(r.err, dropIn + ": settings.keep2: unknown key"), r.err);
}

BOOST_AUTO_TEST_CASE(check_config_reports_each_problem_with_78) {
    // Broken configs exit 78 and name file and key, including the checks that need
    // plugins: unknown type and settings the plugin refuses.
    struct Case {
        std::string components;
        std::string expect;
    };
    const Case cases[] = {
        {comp("web", "nosuchtype"), "components[0].type: no loadable plugin for type 'nosuchtype'"},
        {comp("web", "scripted", R"({"bad_setting": 1})"),
         "components[0].settings.bad_setting: not allowed"},
        {comp("web", "scripted", R"({"bad_setting": 1})"),
         "components[0].settings.other: also wrong"},
        {comp("Bad Name"), "components[0].name: 'Bad Name' must match"},
    };
    for (const auto& c : cases) {
        Fixture f;
        auto r = run({kAgent, "--check-config", "--config=" + f.config(c.components)}, f.d.str());
        BOOST_TEST_CONTEXT(c.expect) {
            BOOST_TEST(r.code == 78);
            BOOST_TEST(contains(r.err, f.d.str("agent.json")), r.err);
            BOOST_TEST(contains(r.err, c.expect), r.err);
        }
    }
    // Token file readable by others.
    Fixture f;
    writeFile(f.d.str("gh-token"), "ghp_dont_print_me", 0644);
    std::string path = f.config(comp("web"));
    std::string text = readFile(path);
    text.replace(text.find(R"("api_url")"), 0,
                 R"("token_file": ")" + f.d.str("gh-token") + R"(", )");
    writeFile(path, text);
    auto r = run({kAgent, "--check-config", "--config=" + path}, f.d.str());
    BOOST_TEST(r.code == 78);
    BOOST_TEST(contains(r.err, "github.token_file: token file '" + f.d.str("gh-token") +
                                   "' has mode 0644"),
               r.err);
    BOOST_TEST(!contains(r.err + r.out, "ghp_dont_print_me"));
    // Malformed JSON names the line.
    writeFile(path, "{\n \"proxy\": {\"url\": \"ws://x\"}\n \"agent\": {}\n}");
    r = run({kAgent, "--check-config", "--config=" + path}, f.d.str());
    BOOST_TEST(r.code == 78);
    BOOST_TEST(contains(r.err, "malformed JSON at line 3"), r.err);
}

BOOST_AUTO_TEST_CASE(daemon_runs_reloads_and_stops_on_sigterm) {
    // The daemon stays up and logs its plugins and components; SIGHUP with a valid change
    // swaps the config and logs the diff; SIGHUP with a broken file keeps the old config;
    // SIGTERM ends it with exit 0 within 2 s.
    Fixture f;
    std::string path = f.config(comp("alpha"));
    Child agent({kAgent, "--config=" + path}, f.d.str(), {{"GITHUB_TOKEN", "ghp_never_logged"}});
    BOOST_REQUIRE(waitUntil([&] { return contains(agent.err(), "component 'alpha'"); }));
    BOOST_TEST(contains(agent.err(), "plugin 'scripted' loaded from"), agent.err());
    BOOST_TEST(agent.running());

    f.config(comp("alpha") + "," + comp("beta"));
    agent.signal(SIGHUP);
    BOOST_REQUIRE_MESSAGE(
        waitUntil([&] { return contains(agent.err(), "configuration reloaded: added: beta"); }),
        agent.err());

    writeFile(path, "{ broken");
    agent.signal(SIGHUP);
    BOOST_REQUIRE_MESSAGE(waitUntil([&] { return contains(agent.err(), "reload rejected"); }),
                          agent.err());
    BOOST_TEST(contains(agent.err(), "malformed JSON at line 1"));
    BOOST_TEST(agent.running());

    // A reload with a component of unknown type is rejected as a whole.
    f.config(comp("alpha") + "," + comp("gamma", "nosuchtype"));
    agent.signal(SIGHUP);
    BOOST_REQUIRE(waitUntil(
        [&] { return contains(agent.err(), "no loadable plugin for type 'nosuchtype'"); }));
    BOOST_TEST(agent.running());

    auto t0 = std::chrono::steady_clock::now();
    agent.signal(SIGTERM);
    auto code = agent.wait(std::chrono::seconds(5));
    auto took = std::chrono::steady_clock::now() - t0;
    BOOST_REQUIRE(code.has_value());
    BOOST_TEST(*code == 0);
    BOOST_TEST((took < std::chrono::seconds(2)));
    BOOST_TEST(!contains(agent.err(), "ghp_never_logged"));
}

BOOST_AUTO_TEST_CASE(daemon_refuses_invalid_config_with_78) {
    // An invalid config at start-up exits 78 (systemd does not restart-loop on it).
    Fixture f;
    auto r = run({kAgent, "--config=" + f.config(comp("x", "nosuchtype"))}, f.d.str());
    BOOST_TEST(r.code == 78);
    BOOST_TEST(contains(r.err, "no loadable plugin"), r.err);
}
