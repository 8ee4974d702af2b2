// End to end: the real raspi-release-agent binary, driven by the fake proxy and serving
// releases from the fake GitHub, deploys a container component with real podman:
// announcement -> podman container on the new tag -> telemetry, then a failing release is
// rolled back, and stopping the agent leaves the container running.
#define BOOST_TEST_MODULE container_e2e
#include <boost/test/unit_test.hpp>

#include "container/podman_env.hpp"
#include "fakes/github/fake_github.hpp"
#include "fakes/proxy/fake_proxy.hpp"

#include <sys/stat.h>

#include <filesystem>

using namespace rra::test;
namespace fs = std::filesystem;

namespace {

const std::string kAgent = RRA_AGENT_BINARY;
const std::string kComponent = "web";
const std::string kRepo = "acme/web";

std::string str(const Poco::JSON::Object::Ptr& o, const std::string& key) {
    if (!o || !o->has(key) || o->isNull(key))
        return "<null>";
    return o->getValue<std::string>(key);
}

// The telemetry event of `kind` for `tag`, or null.
Poco::JSON::Object::Ptr telemetry(const rra::fakes::FakeProxy& proxy, const std::string& kind,
                                  const std::string& tag) {
    for (const auto& m : proxy.messages("telemetry")) {
        if (str(m.json, "event") == kind && str(m.json, "tag") == tag)
            return m.json;
    }
    return nullptr;
}

bool hasFinal(const rra::fakes::FakeProxy& proxy, const std::string& tag) {
    return telemetry(proxy, "apply_succeeded", tag) || telemetry(proxy, "apply_failed", tag);
}

}  // namespace

BOOST_AUTO_TEST_CASE(check_config_names_a_runtime_that_cannot_be_found) {
    // Proves a container component whose runtime cannot be found is a config error: exit
    // 78 naming the file and settings.runtime.
    TempDir d;
    fs::create_directories(d.path() / "plugins");
    ::chmod(d.str("plugins").c_str(), 0755);
    fs::copy_file(std::string(RRA_PLUGIN_DIR) + "/container.so", d.path() / "plugins/container.so");
    ::chmod(d.str("plugins/container.so").c_str(), 0755);
    const std::string config = d.str("agent.json");
    writeFile(config, R"({"agent": {"plugin_dir": ")" + d.str("plugins") + R"(", "work_dir": ")" +
                          d.str("work") + R"(", "runtime_dir": ")" + d.str("run") +
                          R"("}, "proxy": {"url": "ws://127.0.0.1:9"},
 "components": [{"name": "web", "type": "container", "repo": "acme/web", "asset": "w.tar",
   "settings": {"runtime": "/nonexistent/podman"}}]})");
    auto r = run({kAgent, "--check-config", "--config=" + config}, d.str());
    BOOST_TEST(r.code == 78);
    BOOST_TEST(contains(r.err, config), r.err);
    BOOST_TEST(contains(r.err, "settings.runtime: '/nonexistent/podman' is not an executable file"),
               r.err);
}

BOOST_AUTO_TEST_CASE(daemon_deploys_container_from_announcement_to_telemetry) {
    // Proves the whole chain with real podman: a sync announcing v1 makes the agent fetch
    // the image archive from GitHub and run the container on v1 (labelled) with
    // apply_succeeded; a pushed v2 replaces it; a pushed v3 whose health command fails
    // ends with apply_failed in phase verify, rolled back to v2 with v2 running; SIGTERM
    // stops the agent and leaves the container running.
    PodmanEnv env;
    TempDir d;
    rra::fakes::FakeGithub github;
    // Tags must be SemVer for the agent; the env's images are named v1..v3.
    for (const std::string v : {"v1", "v2", "v3"})
        github.addFileRelease(kRepo, v + ".0.0", "web-" + v + ".0.0.tar", env.asset(v));

    rra::fakes::FakeProxy proxy;
    proxy.setSync({rra::Announcement{kComponent, kRepo, "v1.0.0", ""}});
    proxy.start();

    // The loader refuses plugins in a group/other-writable place: a private 0755 copy.
    fs::create_directories(d.path() / "plugins");
    ::chmod(d.str("plugins").c_str(), 0755);
    fs::copy_file(std::string(RRA_PLUGIN_DIR) + "/container.so", d.path() / "plugins/container.so");
    ::chmod(d.str("plugins/container.so").c_str(), 0755);

    const std::string config = d.str("agent.json");
    writeFile(config,
              R"({"agent": {"id": "pi-e2e", "arch": "amd64", "plugin_dir": ")" + d.str("plugins") +
                  R"(", "work_dir": ")" + d.str("work") + R"(", "runtime_dir": ")" + d.str("run") +
                  R"(", "components_dir": ")" + d.str("components.d") + R"("},
 "proxy": {"url": ")" +
                  proxy.url() +
                  R"(", "reconnect_initial_ms": 100},
 "github": {"api_url": ")" +
                  github.apiUrl() +
                  R"(", "backoff_initial_s": 1, "backoff_max_s": 2},
 "components": [{"name": ")" +
                  kComponent + R"(", "type": "container", "repo": ")" + kRepo +
                  R"(", "asset": "web-{tag}.tar", "verify_timeout_s": 6,
   "settings": {"runtime": "podman", "container": ")" +
                  env.container() + R"(", "image": ")" + env.image() +
                  R"(", "health_cmd": ["/bin/health"], "settle_s": 1, "stop_timeout_s": 2}}]})");

    auto check = run({kAgent, "--check-config", "--config=" + config}, d.str(),
                     {{"CONTAINERS_CONF", env.confPath()}});
    BOOST_REQUIRE_MESSAGE(check.code == 0, check.err);

    Child agent({kAgent, "--config=" + config}, d.str(), {{"CONTAINERS_CONF", env.confPath()}});
    BOOST_REQUIRE_MESSAGE(proxy.waitForHello(1, rra::Millis(15000)), agent.err());
    auto hello = proxy.messages("hello").front().json;
    auto comps = hello->getArray("components");
    BOOST_REQUIRE(comps && comps->size() == 1);
    BOOST_TEST(comps->getObject(0)->isNull("current"));

    // v1 from the sync.
    BOOST_REQUIRE_MESSAGE(
        proxy.waitFor([&] { return hasFinal(proxy, "v1.0.0"); }, rra::Millis(120000)), agent.err());
    auto ok1 = telemetry(proxy, "apply_succeeded", "v1.0.0");
    BOOST_REQUIRE_MESSAGE(ok1, agent.err());
    BOOST_TEST(telemetry(proxy, "apply_started", "v1.0.0"));
    BOOST_TEST(str(ok1, "from_tag") == "<null>");
    BOOST_TEST(env.status() == "running");
    BOOST_TEST(env.tagLabel() == "v1.0.0");
    BOOST_TEST(env.runningVersion() == "v1");
    BOOST_TEST(github.countRequests("/repos/" + kRepo + "/releases") >= 1u);

    // v2 pushed.
    BOOST_REQUIRE(proxy.pushRelease(rra::Announcement{kComponent, kRepo, "v2.0.0", ""}));
    BOOST_REQUIRE_MESSAGE(
        proxy.waitFor([&] { return hasFinal(proxy, "v2.0.0"); }, rra::Millis(120000)), agent.err());
    auto ok2 = telemetry(proxy, "apply_succeeded", "v2.0.0");
    BOOST_REQUIRE_MESSAGE(ok2, agent.err());
    BOOST_TEST(str(ok2, "from_tag") == "v1.0.0");
    BOOST_TEST(env.tagLabel() == "v2.0.0");
    BOOST_TEST(env.runningVersion() == "v2");

    // v3 fails its health command: back on v2.
    BOOST_REQUIRE(proxy.pushRelease(rra::Announcement{kComponent, kRepo, "v3.0.0", ""}));
    BOOST_REQUIRE_MESSAGE(
        proxy.waitFor([&] { return hasFinal(proxy, "v3.0.0"); }, rra::Millis(120000)), agent.err());
    auto failed = telemetry(proxy, "apply_failed", "v3.0.0");
    BOOST_REQUIRE_MESSAGE(failed, agent.err());
    BOOST_TEST(str(failed, "phase") == "verify");
    BOOST_TEST(str(failed, "rolled_back_to") == "v2.0.0");
    BOOST_TEST(failed->getValue<bool>("rollback_ok"));
    BOOST_TEST(contains(str(failed, "error"), "unhealthy v3"), str(failed, "error"));
    BOOST_TEST(env.status() == "running");
    BOOST_TEST(env.tagLabel() == "v2.0.0");
    BOOST_TEST(env.runningVersion() == "v2");

    const std::string id = env.containerId();
    agent.signal(SIGTERM);
    auto code = agent.wait(std::chrono::seconds(10));
    BOOST_TEST(code.has_value());
    BOOST_TEST(env.status() == "running");
    BOOST_TEST(env.containerId() == id);
    proxy.stop();
}
