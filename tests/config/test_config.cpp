// Proves the config contract: defaults, token sources and their checks, drop-ins, and
// that every broken config is refused with messages naming the file and the key.
#define BOOST_TEST_MODULE config
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "config/config_loader.hpp"
#include "support/test_support.hpp"

#include <sys/stat.h>

#include <filesystem>

using namespace rra;
using namespace rra::config;
using rra::test::contains;
using rra::test::TempDir;
using rra::test::writeFile;
namespace bdata = boost::unit_test::data;
namespace fs = std::filesystem;

namespace {

LoadEnvironment env(std::map<std::string, std::string> vars = {}) {
    LoadEnvironment e;
    e.binaryPath = "/opt/rra/bin/raspi-release-agent";
    e.getenv = [vars](const std::string& k) -> std::optional<std::string> {
        auto it = vars.find(k);
        if (it == vars.end())
            return std::nullopt;
        return it->second;
    };
    e.hostname = [] { return std::string("pi-test"); };
    return e;
}

// A main file whose components_dir points into the same temp dir.
std::string mainFile(const TempDir& d, const std::string& body) {
    std::string path = d.str("agent.json");
    writeFile(path, body);
    return path;
}

struct BrokenCase {
    const char* name;
    const char* mainJson;  // $D is replaced by the temp dir
    std::vector<std::pair<std::string, std::string>> dropIns;
    std::vector<std::string> expect;  // substrings of the errors
};
std::ostream& operator<<(std::ostream& os, const BrokenCase& c) {
    return os << c.name;
}

std::string subst(std::string s, const std::string& dir) {
    for (size_t p; (p = s.find("$D")) != std::string::npos;)
        s.replace(p, 2, dir);
    return s;
}

const char* kComp = R"({"name": "web", "type": "tarball", "repo": "acme/web", "asset": "w.tgz"})";

const BrokenCase kBroken[] = {
    // The contract names proxy.url as the required key; a missing section says that too.
    {"missing proxy",
     R"({"agent": {"components_dir": "$D/d"}})",
     {},
     {"agent.json: proxy.url: required"}},
    {"null proxy",
     R"({"agent": {"components_dir": "$D/d"}, "proxy": null})",
     {},
     {"agent.json: proxy.url: required"}},
    {"missing proxy.url",
     R"({"agent": {"components_dir": "$D/d"}, "proxy": {}})",
     {},
     {"agent.json: proxy.url: required"}},
    {"proxy url not ws",
     R"({"agent": {"components_dir": "$D/d"}, "proxy": {"url": "http://x"}})",
     {},
     {"proxy.url: 'http://x' must start with ws:// or wss://"}},
    {"bad component name",
     R"({"agent": {"components_dir": "$D/d"}, "proxy": {"url": "ws://p"},
        "components": [{"name": "Web UI", "type": "tarball", "repo": "acme/web", "asset": "a"}]})",
     {},
     {"agent.json: components[0].name: 'Web UI' must match"}},
    {"component keys missing",
     R"({"agent": {"components_dir": "$D/d"}, "proxy": {"url": "ws://p"}, "components": [{}]})",
     {},
     {"components[0].name: required", "components[0].type: required",
      "components[0].repo: required", "components[0].asset: required"}},
    {"duplicate across files",
     R"({"agent": {"components_dir": "$D/d"}, "proxy": {"url": "ws://p"}, "components": []})",
     {{"10-a.json", kComp}, {"50-web.json", kComp}},
     {"d/50-web.json: name: duplicate component name 'web' (already defined in"}},
    {"malformed JSON",
     "{\n  \"proxy\": {\"url\": \"ws://p\"},\n  \"agent\": {,}\n}",
     {},
     {"agent.json: malformed JSON at line 3"}},
    {"malformed drop-in",
     R"({"agent": {"components_dir": "$D/d"}, "proxy": {"url": "ws://p"}})",
     {{"20-x.json", "{\"name\": \"x\",\n\"type\" \"deb\"}"}},
     {"d/20-x.json: malformed JSON at line 2"}},
    {"wrong types",
     R"({"agent": {"components_dir": "$D/d", "max_parallel_downloads": "2"},
        "proxy": {"url": "ws://p", "heartbeat_s": "30"}, "github": {"max_attempts": 0}})",
     {},
     {"agent.max_parallel_downloads: must be an integer", "proxy.heartbeat_s: must be a number",
      "github.max_attempts: must be between 1 and 100"}},
    // Poco wraps or throws a place-less "Syntax error" on these; the key and place are named.
    {"integer beyond 64 bits",
     R"({"agent": {"components_dir": "$D/d"}, "proxy": {"url": "ws://p", "heartbeat_s": 99999999999999999999}})",
     {},
     {"agent.json: proxy.heartbeat_s: number out of range (99999999999999999999) at line 1"}},
    {"double overflow in a drop-in",
     R"({"agent": {"components_dir": "$D/d"}, "proxy": {"url": "ws://p"}})",
     {{"30-x.json", "{\"name\": \"x\",\n \"settings\": {\"keep\": 1e400}}"}},
     {"d/30-x.json: settings.keep: number out of range (1e400) at line 2, column 23"}},
    {"fractional integers",
     R"({"agent": {"components_dir": "$D/d"}, "proxy": {"url": "ws://p"},
        "github": {"max_attempts": 8.5, "backoff_max_s": 1e9}})",
     {},
     {"github.max_attempts: must be an integer", "github.backoff_max_s: must be between 1 and"}},
    {"empty paths",
     R"({"agent": {"components_dir": "", "work_dir": "", "runtime_dir": "", "plugin_dir": ""},
        "proxy": {"url": "ws://p", "ca_file": ""}, "github": {"token_file": ""}})",
     {},
     {"agent.components_dir: must not be empty", "agent.work_dir: must not be empty",
      "agent.runtime_dir: must not be empty", "agent.plugin_dir: must not be empty",
      "proxy.ca_file: must not be empty", "github.token_file: must not be empty"}},
    {"repo dot segments",
     R"({"agent": {"components_dir": "$D/d"}, "proxy": {"url": "ws://p"},
        "components": [{"name": "a", "type": "deb", "repo": "acme/.", "asset": "a"},
                       {"name": "b", "type": "deb", "repo": "../web", "asset": "b"}]})",
     {},
     {"components[0].repo: 'acme/.' must be owner/name", "components[1].repo: '../web' must be"}},
    {"drop-in that is a directory",
     R"({"agent": {"components_dir": "$D/d"}, "proxy": {"url": "ws://p"}})",
     {{"40-dir.json/x", "{}"}},
     {"d/40-dir.json: not a regular file (a directory)"}},
    {"bad repo and pin",
     R"({"agent": {"components_dir": "$D/d"}, "proxy": {"url": "ws://p"},
        "components": [{"name": "a", "type": "deb", "repo": "acme", "asset": "a", "pin": "latest"}]})",
     {},
     {"components[0].repo: 'acme' must be owner/name",
      "components[0].pin: 'latest' is not a SemVer tag (like v1.4.2): a pin names one"}},
    {"components not array",
     R"({"agent": {"components_dir": "$D/d"}, "proxy": {"url": "ws://p"}, "components": {}})",
     {},
     {"agent.json: components: must be an array"}},
    {"token file readable by others",
     R"({"agent": {"components_dir": "$D/d"}, "proxy": {"url": "ws://p"},
        "github": {"token_file": "$D/gh-open"}})",
     {},
     {"github.token_file: token file '$D/gh-open' has mode 0644: it must not be readable"}},
    {"token file empty",
     R"({"agent": {"components_dir": "$D/d"}, "proxy": {"url": "ws://p", "token_file": "$D/empty"}})",
     {},
     {"proxy.token_file: token file '$D/empty' is empty"}},
    {"token file missing",
     R"({"agent": {"components_dir": "$D/d"}, "proxy": {"url": "ws://p", "token_file": "$D/none"}})",
     {},
     {"proxy.token_file: token file '$D/none': No such file"}},
    {"bad log level",
     R"({"agent": {"components_dir": "$D/d", "log_level": "loud"}, "proxy": {"url": "ws://p"}})",
     {},
     {"agent.log_level: 'loud' is not one of"}},
    {"not an object", "[1, 2]", {}, {"agent.json: must hold a JSON object"}},
};

}  // namespace

BOOST_DATA_TEST_CASE(broken_configs_are_refused_with_file_and_key, bdata::make(kBroken), c) {
    TempDir d;
    writeFile(d.str("gh-open"), "secret-token-123\n", 0644);
    writeFile(d.str("empty"), "  \n", 0600);
    for (const auto& [name, body] : c.dropIns)
        writeFile(d.str("d/" + name), body);
    auto res = loadConfig(mainFile(d, subst(c.mainJson, d.str())), env());
    BOOST_TEST(!res.ok());
    BOOST_TEST(!res.config.has_value());
    std::string all;
    for (const auto& e : res.errors)
        all += e + "\n";
    for (const auto& want : c.expect)
        BOOST_TEST(contains(all, subst(want, d.str())), "missing '" << want << "' in:\n" << all);
    BOOST_TEST(!contains(all, "secret-token-123"), "a token leaked into an error");
}

BOOST_AUTO_TEST_CASE(minimal_config_gets_contract_defaults) {
    // Only proxy.url is required; every other key takes the contract's default.
    TempDir d;
    auto res = loadConfig(mainFile(d, R"({"proxy": {"url": "wss://releases.example.net"},
                        "agent": {"components_dir": ")" +
                                          d.str("none") + R"("}})"),
                          env({{"RUNTIME_DIRECTORY", "/run/x:/run/y"}}));
    BOOST_REQUIRE_MESSAGE(res.ok(), (res.errors.empty() ? "" : res.errors[0]));
    const Config& c = *res.config;
    BOOST_TEST(c.agent.id == "pi-test");
    BOOST_TEST(!c.agent.arch.empty());
    BOOST_TEST(c.agent.pluginDir == "/opt/rra/lib/raspi-release-agent/plugins");
    BOOST_TEST(c.agent.workDir == "/var/cache/raspi-release-agent");
    BOOST_TEST(c.agent.runtimeDir == "/run/x");
    BOOST_TEST(c.agent.maxParallelDownloads == 2);
    BOOST_TEST(c.proxy.heartbeatS == 30);
    BOOST_TEST(c.proxy.reconnectInitialMs == 1000);
    BOOST_TEST(c.proxy.reconnectMaxMs == 300000);
    BOOST_TEST(c.proxy.telemetryQueue == 1000);
    BOOST_TEST(c.github.apiUrl == "https://api.github.com");
    BOOST_TEST(c.github.backoffInitialS == 60);
    BOOST_TEST(c.github.backoffMaxS == 3600);
    BOOST_TEST(c.github.maxAttempts == 8);
    BOOST_TEST(c.github.token.empty());
    BOOST_TEST(c.components.empty());
}

BOOST_AUTO_TEST_CASE(unknown_keys_are_warnings_not_errors) {
    // Unknown keys anywhere are reported with their path but do not fail the load.
    TempDir d;
    auto res = loadConfig(mainFile(d, R"({"proxy": {"url": "ws://p", "colour": 1},
        "agent": {"components_dir": ")" + d.str("none") +
                                          R"("}, "extra": true,
        "components": [{"name": "a", "type": "deb", "repo": "o/a", "asset": "a.deb", "foo": 1,
                        "settings": {"package": "a"}}]})"),
                          env());
    BOOST_REQUIRE(res.ok());
    std::string all;
    for (const auto& w : res.warnings)
        all += w + "\n";
    BOOST_TEST(contains(all, "proxy.colour: unknown key"), all);
    BOOST_TEST(contains(all, "agent.json: extra: unknown key"), all);
    BOOST_TEST(contains(all, "components[0].foo: unknown key"), all);
    BOOST_TEST(res.config->components[0].settingsJson == R"({"package":"a"})");
}

BOOST_AUTO_TEST_CASE(token_sources_follow_contract_order) {
    // token_file wins over $CREDENTIALS_DIRECTORY, which wins over the variable; white
    // space around a token is removed.
    TempDir d;
    writeFile(d.str("tok"), "  from-file\n", 0600);
    writeFile(d.str("creds/github-token"), "from-creds\n", 0400);
    writeFile(d.str("creds/proxy-token"), "proxy-creds", 0400);
    std::string base = R"({"agent": {"components_dir": ")" + d.str("none") + R"("}, )";
    auto withFile =
        loadConfig(mainFile(d, base + R"("proxy": {"url": "ws://p"}, "github": {"token_file": ")" +
                                   d.str("tok") + R"("}})"),
                   env({{"CREDENTIALS_DIRECTORY", d.str("creds")}, {"GITHUB_TOKEN", "from-env"}}));
    BOOST_REQUIRE(withFile.ok());
    BOOST_TEST(withFile.config->github.token.reveal() == "from-file");
    BOOST_TEST(withFile.config->proxy.token.reveal() == "proxy-creds");

    auto withCreds =
        loadConfig(mainFile(d, base + R"("proxy": {"url": "ws://p"}})"),
                   env({{"CREDENTIALS_DIRECTORY", d.str("creds")}, {"GITHUB_TOKEN", "from-env"}}));
    BOOST_REQUIRE(withCreds.ok());
    BOOST_TEST(withCreds.config->github.token.reveal() == "from-creds");

    auto withEnv = loadConfig(mainFile(d, base + R"("proxy": {"url": "ws://p"}})"),
                              env({{"GITHUB_TOKEN", " from-env "}, {"RRA_PROXY_TOKEN", "p"}}));
    BOOST_REQUIRE(withEnv.ok());
    BOOST_TEST(withEnv.config->github.token.reveal() == "from-env");
    BOOST_TEST(withEnv.config->proxy.token.reveal() == "p");
}

BOOST_AUTO_TEST_CASE(drop_ins_are_read_in_name_order) {
    // Every *.json of components_dir is one component, read after the main file's, in
    // name order; other files are ignored.
    TempDir d;
    writeFile(d.str("d/20-b.json"), R"({"name": "b", "type": "deb", "repo": "o/b", "asset": "b"})");
    writeFile(d.str("d/10-a.json"), R"({"name": "a", "type": "deb", "repo": "o/a", "asset": "a"})");
    writeFile(d.str("d/README"), "not json");
    auto res =
        loadConfig(mainFile(d, R"({"proxy": {"url": "ws://p"}, "agent": {"components_dir": ")" +
                                   d.str("d") + R"("}, "components": [)" + kComp + "]}"),
                   env());
    BOOST_REQUIRE_MESSAGE(res.ok(), (res.errors.empty() ? "" : res.errors[0]));
    BOOST_REQUIRE(res.config->components.size() == 3u);
    BOOST_TEST(res.config->components[0].name == "web");
    BOOST_TEST(res.config->components[1].name == "a");
    BOOST_TEST(res.config->components[2].name == "b");
    BOOST_TEST(res.config->components[1].origin == d.str("d/10-a.json"));
}

BOOST_AUTO_TEST_CASE(diff_reports_added_removed_changed_and_inventory) {
    // Reload diff: components added/removed/changed, and inventory only when the set of
    // components or a repo changed.
    Config a, b;
    ComponentConfig x;
    x.name = "x";
    x.type = "deb";
    x.repo = "o/x";
    x.asset = "x.deb";
    ComponentConfig y = x;
    y.name = "y";
    a.components = {x, y};
    b = a;
    b.components[1].settingsJson = R"({"keep": 2})";
    auto d1 = diffConfigs(a, b);
    BOOST_TEST(d1.changed == std::vector<std::string>{"y"});
    BOOST_TEST(!d1.inventoryNeeded);
    b.components[1].repo = "o/y2";
    BOOST_TEST(diffConfigs(a, b).inventoryNeeded);
    ComponentConfig z = x;
    z.name = "z";
    b.components = {x, z};
    auto d2 = diffConfigs(a, b);
    BOOST_TEST(d2.added == std::vector<std::string>{"z"});
    BOOST_TEST(d2.removed == std::vector<std::string>{"y"});
    BOOST_TEST(d2.inventoryNeeded);
    b = a;
    b.proxy.token = Secret("new");
    auto d3 = diffConfigs(a, b);
    BOOST_TEST(d3.proxyChanged);
    BOOST_TEST(!contains(d3.describe(), "new"));
}

BOOST_AUTO_TEST_CASE(max_below_initial_is_a_warning_and_the_cap_wins) {
    // Small values are valid (contract): a backoff_max_s or reconnect_max_ms below the
    // initial delay warns and every wait is the cap (min(max, ...)), not an error.
    TempDir d;
    auto res =
        loadConfig(mainFile(d, R"({"agent": {"components_dir": ")" + d.str("none") +
                                   R"("}, "proxy": {"url": "ws://p", "reconnect_max_ms": 100},
                                     "github": {"backoff_max_s": 2}})"),
                   env());
    BOOST_REQUIRE_MESSAGE(res.ok(), (res.errors.empty() ? "" : res.errors[0]));
    BOOST_TEST(res.config->proxy.reconnectMaxMs == 100);
    BOOST_TEST(res.config->proxy.reconnectInitialMs == 100);
    BOOST_TEST(res.config->github.backoffMaxS == 2);
    BOOST_TEST(res.config->github.backoffInitialS == 2);
    std::string all;
    for (const auto& w : res.warnings)
        all += w + "\n";
    BOOST_TEST(contains(all,
                        "agent.json: proxy.reconnect_max_ms: 100 is smaller than "
                        "proxy.reconnect_initial_ms (1000): every reconnect waits 100 ms"),
               all);
    BOOST_TEST(contains(all,
                        "agent.json: github.backoff_max_s: 2 is smaller than "
                        "github.backoff_initial_s (60): every retry waits 2 s"),
               all);
}

BOOST_AUTO_TEST_CASE(whole_number_floats_are_integers) {
    // 8.0 reads as 8, as the plugins' SettingsReader reads it.
    TempDir d;
    auto res = loadConfig(mainFile(d, R"({"agent": {"components_dir": ")" + d.str("none") +
                                          R"(", "max_parallel_downloads": 3.0},
                                     "proxy": {"url": "ws://p"}, "github": {"max_attempts": 8.0}})"),
                          env());
    BOOST_REQUIRE_MESSAGE(res.ok(), (res.errors.empty() ? "" : res.errors[0]));
    BOOST_TEST(res.config->github.maxAttempts == 8);
    BOOST_TEST(res.config->agent.maxParallelDownloads == 3);
}

BOOST_AUTO_TEST_CASE(byte_order_mark_is_skipped) {
    // RFC 8259 lets parsers ignore a leading UTF-8 BOM; Windows editors write one.
    TempDir d;
    writeFile(
        d.str("d/10-a.json"),
        "\xEF\xBB\xBF{\"name\": \"a\", \"type\": \"deb\", \"repo\": \"o/a\", \"asset\": \"a\"}");
    auto res = loadConfig(mainFile(d,
                                   "\xEF\xBB\xBF{\"proxy\": {\"url\": \"ws://p\"}, \"agent\": "
                                   "{\"components_dir\": \"" +
                                       d.str("d") + "\"}}"),
                          env());
    BOOST_REQUIRE_MESSAGE(res.ok(), (res.errors.empty() ? "" : res.errors[0]));
    BOOST_TEST(res.config->components.size() == 1u);
}

BOOST_AUTO_TEST_CASE(duplicate_keys_warn_with_place) {
    // Poco keeps the last of two equal keys silently; the operator hears about it.
    TempDir d;
    auto res = loadConfig(mainFile(d, "{\"agent\": {\"components_dir\": \"" + d.str("none") +
                                          "\"},\n \"proxy\": {\"url\": \"ws://a\", \"url\": "
                                          "\"ws://b\"}}"),
                          env());
    BOOST_REQUIRE_MESSAGE(res.ok(), (res.errors.empty() ? "" : res.errors[0]));
    BOOST_TEST(res.config->proxy.url == "ws://b");
    std::string all;
    for (const auto& w : res.warnings)
        all += w + "\n";
    BOOST_TEST(contains(all,
                        "agent.json: proxy.url: duplicate key (the last value is used) at "
                        "line 2, column 29"),
               all);
}

BOOST_AUTO_TEST_CASE(token_file_writable_by_others_only_warns) {
    // The contract refuses a token file readable by group or others; one only writable
    // by them cannot leak the token, so it is a warning.
    TempDir d;
    writeFile(d.str("tok"), "secret-token-123\n", 0620);
    auto res = loadConfig(mainFile(d, R"({"agent": {"components_dir": ")" + d.str("none") +
                                          R"("}, "proxy": {"url": "ws://p", "token_file": ")" +
                                          d.str("tok") + R"("}})"),
                          env());
    BOOST_REQUIRE_MESSAGE(res.ok(), (res.errors.empty() ? "" : res.errors[0]));
    BOOST_TEST(res.config->proxy.token.reveal() == "secret-token-123");
    std::string all;
    for (const auto& w : res.warnings)
        all += w + "\n";
    BOOST_TEST(contains(all, "proxy.token_file: token file '" + d.str("tok") + "' has mode 0620"),
               all);
    BOOST_TEST(!contains(all, "secret-token-123"));
}

BOOST_AUTO_TEST_CASE(special_files_are_refused_by_name) {
    // A directory, a FIFO (which would block a plain open), a device and an oversized file
    // are refused with their name instead of hanging, eating memory or "malformed JSON".
    TempDir d;
    fs::create_directories(d.path() / "dir.json");
    BOOST_REQUIRE(::mkfifo(d.str("fifo.json").c_str(), 0600) == 0);
    writeFile(d.str("big.json"), "{\"proxy\": {\"url\": \"ws://p\"}}" + std::string(2 << 20, ' '));
    const std::pair<std::string, std::string> cases[] = {
        {d.str("dir.json"), "not a regular file (a directory)"},
        {d.str("fifo.json"), "not a regular file"},
        {"/dev/zero", "not a regular file"},
        {d.str("big.json"), "too large (2097180 bytes; the limit is 1 MiB)"},
    };
    for (const auto& [path, want] : cases) {
        auto res = loadConfig(path, env());
        BOOST_TEST_CONTEXT(path) {
            BOOST_REQUIRE(res.errors.size() == 1u);
            BOOST_TEST(res.errors[0] == path + ": " + want);
        }
    }
}
