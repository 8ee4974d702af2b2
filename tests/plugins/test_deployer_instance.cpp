// Proves the wrapper of a plugin instance: settings errors come back with the component,
// hooks work through the C table, an exception inside a plugin becomes an error value,
// and a hook that never returns retires the instance without blocking the caller.
#include <boost/test/unit_test.hpp>

#include "plugins/deployer_instance.hpp"

#include <sys/stat.h>

#include <chrono>
#include <filesystem>

namespace fs = std::filesystem;
using namespace rra;
using namespace rra::plugins;

namespace {

std::shared_ptr<LoadedPlugin> scripted() {
    static auto p = [] {
        auto r = loadPlugin(std::string(RRA_TEST_PLUGIN_DIR) + "/scripted.so");
        BOOST_REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message()));
        return *r;
    }();
    return p;
}

struct Ctx {
    fs::path dir;
    Ctx() {
        char tmpl[] = "/tmp/rra-inst-XXXXXX";
        dir = ::mkdtemp(tmpl);
    }
    ~Ctx() { fs::remove_all(dir); }
    InstanceContext make(const std::string& settings, bool validateOnly = false) const {
        InstanceContext c;
        c.component = "web-ui";
        c.repo = "acme/web-ui";
        c.arch = "arm64";
        c.settingsJson = settings;
        c.stateDir = (dir / "state").string();
        c.runtimeDir = (dir / "run").string();
        c.validateOnly = validateOnly;
        return c;
    }
};

}  // namespace

BOOST_AUTO_TEST_CASE(invalid_settings_name_component_and_keys) {
    // The plugin's settings validation reaches the caller with the component's name.
    Ctx ctx;
    auto inst = DeployerInstance::create(scripted(), ctx.make(R"({"bad_setting": 1})", true));
    BOOST_REQUIRE(!inst);
    BOOST_TEST(inst.error().message().find("component 'web-ui'") != std::string::npos);
    BOOST_TEST(inst.error().message().find("settings.bad_setting") != std::string::npos);
    BOOST_TEST(!fs::exists(ctx.dir / "state"), "validate-only must not create the state dir");
}

BOOST_AUTO_TEST_CASE(hooks_round_trip_through_the_c_table) {
    // install, discover, rollback go through the ABI and see the plugin's effects.
    Ctx ctx;
    auto inst = DeployerInstance::create(scripted(), ctx.make("{}"));
    BOOST_REQUIRE_MESSAGE(inst.has_value(), (inst ? "" : inst.error().message()));
    auto d0 = (*inst)->discover(Millis(5000));
    BOOST_REQUIRE(d0.has_value());
    BOOST_TEST(!d0->tag.has_value());
    BOOST_TEST((*inst)->install("v1.0.0", "/dev/null", std::nullopt, false, Millis(5000)).ok());
    BOOST_TEST((*inst)->verify("v1.0.0", Millis(5000)).ok());
    auto d1 = (*inst)->discover(Millis(5000));
    BOOST_REQUIRE(d1.has_value());
    BOOST_TEST(d1->tag.value_or("") == "v1.0.0");
    BOOST_TEST((*inst)->rollback(std::nullopt, "v1.0.0", Millis(5000)).ok());
    BOOST_TEST(!(*inst)->discover(Millis(5000))->tag.has_value());
}

BOOST_AUTO_TEST_CASE(exception_in_plugin_becomes_error_value) {
    // A C++ exception inside a hook never crosses the ABI: it is an error with a message.
    Ctx ctx;
    auto inst = DeployerInstance::create(scripted(), ctx.make(R"({"throw_in": ["verify"]})"));
    BOOST_REQUIRE(inst.has_value());
    auto r = (*inst)->verify("v1.0.0", Millis(5000));
    BOOST_TEST(r.status == RRA_ERROR);
    BOOST_TEST(r.message.find("scripted throw in verify") != std::string::npos, r.message);
    BOOST_TEST(!(*inst)->degraded());
}

BOOST_AUTO_TEST_CASE(hung_hook_retires_instance_after_deadline_and_grace) {
    // A hook that ignores its deadline and cancellation is abandoned after the grace
    // period: the caller gets control back, the instance is degraded and never called again.
    Ctx ctx;
    DeployerInstance::setGraceAfterDeadline(Millis(200));
    auto inst = DeployerInstance::create(scripted(), ctx.make(R"({"hang_in": ["install"]})"));
    BOOST_REQUIRE(inst.has_value());
    auto t0 = std::chrono::steady_clock::now();
    auto r = (*inst)->install("v1.0.0", "/dev/null", std::nullopt, false, Millis(300));
    auto took = std::chrono::steady_clock::now() - t0;
    BOOST_TEST(r.timedOut);
    BOOST_TEST(!r.ok());
    BOOST_TEST((took < std::chrono::seconds(3)));
    BOOST_TEST((*inst)->degraded());
    auto again = (*inst)->verify("v1.0.0", Millis(1000));
    BOOST_TEST(again.timedOut);
    BOOST_TEST(again.message.find("degraded") != std::string::npos);
    DeployerInstance::setGraceAfterDeadline(Millis(5000));
}

BOOST_AUTO_TEST_CASE(plugin_failure_message_reaches_caller) {
    // A failing hook's own message is what the caller sees.
    Ctx ctx;
    auto inst = DeployerInstance::create(scripted(), ctx.make(R"({"fail_in": ["install"]})"));
    BOOST_REQUIRE(inst.has_value());
    auto r = (*inst)->install("v2.0.0", "/dev/null", std::string("v1.0.0"), false, Millis(5000));
    BOOST_TEST(r.status == RRA_ERROR);
    BOOST_TEST(r.message == "scripted failure in install");
}
