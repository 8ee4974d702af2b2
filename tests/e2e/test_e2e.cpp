// The whole mission with the real raspi-release-agent binary against the loopback fake
// proxy and fake GitHub, with the real tarball deployer: discovery, hello, sync-driven and
// notification-driven deploys, coalescing, rollback with fallback to the next newest,
// telemetry, SIGHUP adding and removing components, proxy restart, a GitHub rate limit in
// the middle of a deployment, and SIGTERM in the middle of a download.
#define BOOST_TEST_MODULE e2e
#include <boost/test/unit_test.hpp>

#include "fakes/github/fake_github.hpp"
#include "fakes/proxy/fake_proxy.hpp"
#include "support/test_support.hpp"

#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/StreamSocket.h>

#include <atomic>
#include <thread>

using namespace rra;
using namespace rra::test;
using rra::fakes::FakeGithub;
using rra::fakes::FakeProxy;

namespace {

const std::string kAgent = RRA_AGENT_BINARY;
const std::string kToken = "ghp_e2e_secret_never_logged";

std::string field(const Poco::JSON::Object::Ptr& o, const std::string& key) {
    if (!o || !o->has(key))
        return "<missing>";
    if (o->isNull(key))
        return "<null>";
    return o->get(key).toString();
}

// A tarball release of component `name`: bin/health exits `healthExit` after `sleepS`.
std::string makeRelease(const TempDir& d, const std::string& name, const std::string& tag,
                        int healthExit = 0, double sleepS = 0) {
    std::string src = d.str("src/" + name + "-" + tag);
    writeFile(src + "/VERSION", tag + "\n");
    writeFile(src + "/bin/health",
              "#!/bin/sh\nsleep " + std::to_string(sleepS) + "\necho health of " + tag + "\nexit " +
                  std::to_string(healthExit) + "\n",
              0755);
    std::string out = d.str("assets/" + name + "-" + tag + ".tar.gz");
    fs::create_directories(d.path() / "assets");
    std::string cmd = "tar -C '" + src + "' -czf '" + out + "' .";
    BOOST_REQUIRE(std::system(cmd.c_str()) == 0);
    return readFile(out);
}

struct Mission {
    TempDir d;
    FakeProxy proxy;
    FakeGithub github;
    std::unique_ptr<Child> agent;
    std::string configPath;

    Mission() {
        proxy.start();
        fs::create_directories(d.path() / "components.d");
    }

    void publish(const std::string& name, const std::string& tag, int healthExit = 0,
                 double sleepS = 0) {
        fakes::FakeRelease r;
        r.tag = tag;
        fakes::FakeAsset a;
        a.name = name + "-" + tag + ".tar.gz";
        a.content = makeRelease(d, name, tag, healthExit, sleepS);
        r.assets.push_back(a);
        github.addRelease("acme/" + name, r);
    }

    static std::string component(const std::string& name) {
        return R"({"name": ")" + name + R"(", "type": "tarball", "repo": "acme/)" + name +
               R"(", "asset": ")" + name + R"(-{tag}.tar.gz", "verify_timeout_s": 5,
                  "settings": {"install_dir": "INSTALL/)" +
               name + R"(", "health_cmd": ["./bin/health"]}})";
    }

    void writeConfig(const std::vector<std::string>& names, const std::string& apiUrl = "") {
        std::string comps;
        for (const auto& n : names)
            comps += (comps.empty() ? "" : ",") + component(n);
        for (size_t p; (p = comps.find("INSTALL")) != std::string::npos;)
            comps.replace(p, 7, d.str("opt"));
        configPath = d.str("agent.json");
        writeFile(configPath,
                  R"({"agent": {"id": "pi-e2e", "plugin_dir": ")" + std::string(RRA_PLUGIN_DIR) +
                      R"(", "work_dir": ")" + d.str("work") + R"(", "runtime_dir": ")" +
                      d.str("run") + R"(", "components_dir": ")" + d.str("components.d") +
                      R"(", "log_level": "debug"},
             "proxy": {"url": ")" +
                      proxy.url() + R"(", "reconnect_initial_ms": 100,
                       "reconnect_max_ms": 500, "heartbeat_s": 1},
             "github": {"api_url": ")" +
                      (apiUrl.empty() ? github.apiUrl() : apiUrl) +
                      R"(", "backoff_initial_s": 1, "backoff_max_s": 2, "max_attempts": 4},
             "components": [)" +
                      comps + "]}");
    }

    void startAgent() {
        agent = std::make_unique<Child>(
            std::vector<std::string>{kAgent, "--config=" + configPath}, d.str(),
            std::map<std::string, std::string>{{"GITHUB_TOKEN", kToken}});
    }

    std::string current(const std::string& name) const {
        std::error_code ec;
        auto t = fs::read_symlink(d.path() / "opt" / name / "current", ec);
        return ec ? "<none>" : t.filename().string();
    }

    // Telemetry received so far, as "event component tag" lines.
    std::vector<std::string> events() const {
        std::vector<std::string> out;
        for (const auto& m : proxy.messages("telemetry"))
            out.push_back(field(m.json, "event") + " " + field(m.json, "component") + " " +
                          field(m.json, "tag"));
        return out;
    }
    Poco::JSON::Object::Ptr event(const std::string& kind, const std::string& name,
                                  const std::string& tag) const {
        for (const auto& m : proxy.messages("telemetry"))
            if (field(m.json, "event") == kind && field(m.json, "component") == name &&
                field(m.json, "tag") == tag)
                return m.json;
        return nullptr;
    }
    bool waitEvent(const std::string& kind, const std::string& name, const std::string& tag,
                   Millis timeout = Millis(20000)) {
        return proxy.waitFor([&] { return event(kind, name, tag) != nullptr; }, timeout);
    }
    std::string log() const { return agent ? agent->err() : ""; }

    ~Mission() {
        if (agent && agent->running()) {
            agent->signal(SIGTERM);
            agent->wait(std::chrono::seconds(10));
        }
        if (agent) {
            BOOST_TEST(!contains(agent->err(), kToken), "the GitHub token reached the log");
            // Poco renders a format/argument type mismatch as [ERRFMT] instead of failing.
            BOOST_TEST(!contains(agent->err(), "[ERRFMT]"), "a log line lost its values");
        }
        proxy.stop();
    }
};

Announcement ann(const std::string& name, const std::string& tag) {
    return Announcement{name, "acme/" + name, tag, "2026-12-01T10:00:00Z"};
}

}  // namespace

BOOST_AUTO_TEST_CASE(discovery_hello_sync_and_release_deploys) {
    // Nothing installed: hello says current null; a sync with v1.0.0 and v1.1.0 applies only
    // the newest; a release notification then deploys v1.2.0; telemetry carries the contract's
    // fields; a restarted agent discovers v1.2.0 and reports it in its hello.
    Mission m;
    m.publish("web", "v1.0.0");
    m.publish("web", "v1.1.0");
    m.publish("web", "v1.2.0");
    m.proxy.setSync({ann("web", "v1.0.0"), ann("web", "v1.1.0")});
    m.writeConfig({"web"});
    m.startAgent();
    BOOST_REQUIRE_MESSAGE(m.proxy.waitForHello(1, Millis(10000)), m.log());
    auto hello = m.proxy.messages("hello")[0].json;
    BOOST_TEST(field(hello, "agent_id") == "pi-e2e");
    BOOST_TEST(field(hello, "protocol") == "1");
    auto comps = hello->getArray("components");
    BOOST_REQUIRE(comps->size() == 1u);
    BOOST_TEST(field(comps->getObject(0), "current") == "<null>");
    BOOST_TEST(field(comps->getObject(0), "kind") == "tarball");

    BOOST_REQUIRE_MESSAGE(m.waitEvent("apply_succeeded", "web", "v1.1.0"), m.log());
    BOOST_TEST(m.current("web") == "v1.1.0");
    BOOST_TEST(!m.event("apply_started", "web", "v1.0.0"),
               "an older tag of the same sync was applied");
    auto ok = m.event("apply_succeeded", "web", "v1.1.0");
    BOOST_TEST(field(ok, "from_tag") == "<null>");
    BOOST_TEST(ok->has("duration_ms"));
    BOOST_TEST(ok->has("id"));
    BOOST_TEST(contains(field(ok, "at"), "Z"));

    BOOST_REQUIRE(m.proxy.pushRelease(ann("web", "v1.2.0")));
    BOOST_REQUIRE_MESSAGE(m.waitEvent("apply_succeeded", "web", "v1.2.0"), m.log());
    BOOST_TEST(field(m.event("apply_started", "web", "v1.2.0"), "from_tag") == "v1.1.0");
    BOOST_TEST(m.current("web") == "v1.2.0");
    // The GitHub token went to the API with every request.
    for (const auto& r : m.github.requests())
        BOOST_TEST(r.header("authorization") == "Bearer " + kToken);

    m.agent->signal(SIGTERM);
    BOOST_REQUIRE(m.agent->wait(std::chrono::seconds(10)).value_or(-1) == 0);
    m.startAgent();
    BOOST_REQUIRE(m.proxy.waitForHello(2, Millis(10000)));
    auto hello2 = m.proxy.messages("hello")[1].json;
    BOOST_TEST(field(hello2->getArray("components")->getObject(0), "current") == "v1.2.0");
}

BOOST_AUTO_TEST_CASE(announcements_during_a_slow_apply_are_coalesced_to_the_newest) {
    // While v1.0.0 verifies slowly, v1.1.0 .. v1.4.0 are announced: exactly one further apply
    // follows, of v1.4.0.
    Mission m;
    m.publish("web", "v1.0.0", 0, 1.5);
    for (const char* t : {"v1.1.0", "v1.2.0", "v1.3.0", "v1.4.0"})
        m.publish("web", t);
    m.proxy.setSync({ann("web", "v1.0.0")});
    m.writeConfig({"web"});
    m.startAgent();
    BOOST_REQUIRE(m.waitEvent("apply_started", "web", "v1.0.0"));
    for (const char* t : {"v1.1.0", "v1.2.0", "v1.3.0", "v1.4.0"})
        m.proxy.pushRelease(ann("web", t));
    BOOST_REQUIRE_MESSAGE(m.waitEvent("apply_succeeded", "web", "v1.4.0"), m.log());
    std::vector<std::string> expected = {"apply_started web v1.0.0", "apply_succeeded web v1.0.0",
                                         "apply_started web v1.4.0", "apply_succeeded web v1.4.0"};
    BOOST_TEST(m.events() == expected, boost::test_tools::per_element());
    BOOST_TEST(m.current("web") == "v1.4.0");
}

BOOST_AUTO_TEST_CASE(failure_rolls_back_then_falls_back_to_next_newest) {
    // On v1.0.0, a sync announces v2.0.0 (health fails) and v1.5.0 (good): v2.0.0 is applied,
    // fails in verify, is rolled back to v1.0.0 (reported), then v1.5.0 is applied. A later
    // announcement of v2.0.0 is ignored (remembered as failed).
    Mission m;
    m.publish("web", "v1.0.0");
    m.publish("web", "v1.5.0");
    m.publish("web", "v2.0.0", 3);
    m.proxy.setSync({ann("web", "v1.0.0")});
    m.writeConfig({"web"});
    m.startAgent();
    BOOST_REQUIRE(m.waitEvent("apply_succeeded", "web", "v1.0.0"));
    m.proxy.setSync({ann("web", "v2.0.0"), ann("web", "v1.5.0"), ann("web", "v1.0.0")});
    BOOST_REQUIRE(m.proxy.pushSync());
    BOOST_REQUIRE_MESSAGE(m.waitEvent("apply_succeeded", "web", "v1.5.0", Millis(30000)), m.log());
    auto failed = m.event("apply_failed", "web", "v2.0.0");
    BOOST_REQUIRE(failed);
    BOOST_TEST(field(failed, "phase") == "verify");
    BOOST_TEST(field(failed, "rolled_back_to") == "v1.0.0");
    BOOST_TEST(field(failed, "rollback_ok") == "true");
    BOOST_TEST(contains(field(failed, "error"), "health of v2.0.0"), field(failed, "error"));
    std::vector<std::string> expected = {"apply_started web v1.0.0", "apply_succeeded web v1.0.0",
                                         "apply_started web v2.0.0", "apply_failed web v2.0.0",
                                         "apply_started web v1.5.0", "apply_succeeded web v1.5.0"};
    BOOST_TEST(m.events() == expected, boost::test_tools::per_element());

    m.proxy.pushRelease(ann("web", "v2.0.0"));
    std::this_thread::sleep_for(std::chrono::milliseconds(800));  // give it a chance to misbehave
    BOOST_TEST(m.events().size() == expected.size());
    BOOST_TEST(m.current("web") == "v1.5.0");

    // The operator's view: --status of the running agent names the current tag, the failed
    // one, the proxy connection and the GitHub quota the fake reported.
    fs::create_directories(m.d.path() / "status");
    fs::create_directories(m.d.path() / "status2");
    std::string text;
    BOOST_TEST(
        waitUntil(
            [&] {
                auto st = run({kAgent, "--status", "--config=" + m.configPath}, m.d.str("status"));
                text = st.out + st.err;
                return st.code == 0 && contains(text, "current:    v1.5.0") &&
                       contains(text, "failed:     v2.0.0") && contains(text, "in flight:  none");
            },
            Millis(5000)),
        text);
    BOOST_TEST(contains(text, "agent pi-e2e"), text);
    BOOST_TEST(contains(text, "proxy: connected"), text);
    BOOST_TEST(contains(text, "github quota: "), text);
    BOOST_TEST(!contains(text, kToken));
    m.agent->signal(SIGTERM);
    BOOST_REQUIRE(m.agent->wait(std::chrono::seconds(10)).value_or(-1) == 0);
    // Once it has stopped, the last status is flagged as history with a non-zero exit.
    auto st = run({kAgent, "--status", "--config=" + m.configPath}, m.d.str("status2"));
    BOOST_TEST(st.code != 0);
    BOOST_TEST(contains(st.out, "NOT RUNNING"), st.out + st.err);
}

BOOST_AUTO_TEST_CASE(sighup_adds_and_removes_components_and_sends_inventory) {
    // A component added by reload is discovered and announced in an inventory, then deployed
    // from the proxy's answer; a removed one is no longer managed (nothing uninstalled).
    Mission m;
    m.publish("web", "v1.0.0");
    m.publish("api", "v3.0.0");
    m.proxy.setSync({ann("web", "v1.0.0"), ann("api", "v3.0.0")});
    m.writeConfig({"web"});
    m.startAgent();
    BOOST_REQUIRE(m.waitEvent("apply_succeeded", "web", "v1.0.0"));
    m.writeConfig({"web", "api"});
    m.agent->signal(SIGHUP);
    BOOST_REQUIRE_MESSAGE(m.proxy.waitForMessages("inventory", 1, Millis(10000)), m.log());
    auto inv = m.proxy.messages("inventory")[0].json;
    BOOST_TEST(inv->getArray("components")->size() == 2u);
    BOOST_REQUIRE_MESSAGE(m.waitEvent("apply_succeeded", "api", "v3.0.0"), m.log());
    BOOST_TEST(m.current("api") == "v3.0.0");

    m.writeConfig({"api"});
    m.agent->signal(SIGHUP);
    BOOST_REQUIRE(m.proxy.waitForMessages("inventory", 2, Millis(10000)));
    auto inv2 = m.proxy.messages("inventory")[1].json;
    BOOST_TEST(inv2->getArray("components")->size() == 1u);
    BOOST_TEST(m.current("web") == "v1.0.0", "a removed component must stay installed");
    m.publish("web", "v1.1.0");
    m.proxy.pushRelease(ann("web", "v1.1.0"));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    BOOST_TEST(!m.event("apply_started", "web", "v1.1.0"), "an unmanaged component was deployed");
}

BOOST_AUTO_TEST_CASE(proxy_restart_reconnects_and_resyncs) {
    // The proxy goes away and comes back on the same port: the agent reconnects by itself,
    // says hello again, and a release published meanwhile arrives in the new sync.
    Mission m;
    m.publish("web", "v1.0.0");
    m.publish("web", "v1.1.0");
    m.proxy.setSync({ann("web", "v1.0.0")});
    m.writeConfig({"web"});
    m.startAgent();
    BOOST_REQUIRE(m.waitEvent("apply_succeeded", "web", "v1.0.0"));
    m.proxy.stop();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    m.proxy.setSync({ann("web", "v1.1.0")});
    m.proxy.start();
    BOOST_REQUIRE_MESSAGE(m.proxy.waitForHello(2, Millis(15000)), m.log());
    auto hello = m.proxy.messages("hello").back().json;
    BOOST_TEST(field(hello->getArray("components")->getObject(0), "current") == "v1.0.0");
    BOOST_REQUIRE_MESSAGE(m.waitEvent("apply_succeeded", "web", "v1.1.0"), m.log());
}

BOOST_AUTO_TEST_CASE(github_rate_limit_in_the_middle_of_a_deployment_is_waited_out) {
    // GitHub answers the release lookup with 429 + retry-after: 1; the agent waits at least
    // that long, retries, and the deployment succeeds.
    Mission m;
    m.publish("web", "v1.0.0");
    m.github.script(
        "/repos/acme/web/releases/tags/v1.0.0",
        fakes::ScriptedResponse{429, {{"retry-after", "1"}}, "{\"message\": \"slow down\"}"});
    m.proxy.setSync({ann("web", "v1.0.0")});
    m.writeConfig({"web"});
    m.startAgent();
    BOOST_REQUIRE_MESSAGE(m.waitEvent("apply_succeeded", "web", "v1.0.0", Millis(30000)), m.log());
    auto reqs = m.github.requests();
    std::vector<fakes::RecordedRequest> lookups;
    for (const auto& r : reqs)
        if (contains(r.uri, "/releases/tags/v1.0.0"))
            lookups.push_back(r);
    BOOST_TEST(lookups.size() >= 2u);
    auto dur = std::stoll(field(m.event("apply_succeeded", "web", "v1.0.0"), "duration_ms"));
    BOOST_TEST(dur >= 1000, "retried before retry-after: " << dur << " ms");
}

BOOST_AUTO_TEST_CASE(sigterm_in_the_middle_of_a_download_exits_promptly) {
    // GitHub accepts the connection and never answers; SIGTERM still ends the agent
    // within 10 s with exit 0, and nothing is installed.
    Mission m;
    Poco::Net::ServerSocket silent(Poco::Net::SocketAddress("127.0.0.1", 0));
    std::atomic<bool> stop{false};
    std::vector<Poco::Net::StreamSocket> held;
    std::thread acceptor([&] {
        while (!stop) {
            if (silent.poll(Poco::Timespan(0, 100000), Poco::Net::Socket::SELECT_READ))
                held.push_back(silent.acceptConnection());
        }
    });
    m.proxy.setSync({ann("web", "v1.0.0")});
    m.writeConfig({"web"}, "http://127.0.0.1:" + std::to_string(silent.address().port()));
    m.startAgent();
    BOOST_REQUIRE(m.waitEvent("apply_started", "web", "v1.0.0"));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    auto t0 = std::chrono::steady_clock::now();
    m.agent->signal(SIGTERM);
    auto code = m.agent->wait(std::chrono::seconds(12));
    auto took = std::chrono::steady_clock::now() - t0;
    stop = true;
    acceptor.join();
    BOOST_REQUIRE_MESSAGE(code.has_value(), m.log());
    BOOST_TEST(*code == 0);
    BOOST_TEST((took < std::chrono::seconds(10)));
    BOOST_TEST(m.current("web") == "<none>");
}
