// Proves a third party can build a deployer from the installed SDK alone: the SDK is
// installed into a temporary prefix, the example plugin in sdk/examples is configured
// and built against that prefix only, and the agent's loader then loads and drives it.
#define BOOST_TEST_MODULE sdk
#include <boost/test/unit_test.hpp>

#include "plugins/deployer_instance.hpp"
#include "support/test_support.hpp"

using namespace rra;
using namespace rra::test;

BOOST_AUTO_TEST_CASE(example_plugin_builds_against_installed_sdk_and_loads) {
    TempDir d;
    const std::string cmake = RRA_CMAKE_COMMAND;
    auto inst =
        run({cmake, "--install", RRA_BINARY_DIR, "--component", "sdk", "--prefix", d.str("prefix")},
            d.str());
    BOOST_REQUIRE_MESSAGE(inst.code == 0, inst.out + inst.err);
    BOOST_TEST(fs::exists(d.path() / "prefix/include/raspi_release/deployer.h"));
    BOOST_TEST(fs::exists(d.path() / "prefix/share/pkgconfig/raspi-release-sdk.pc"));

    auto conf = run({cmake, "-S", std::string(RRA_SOURCE_DIR) + "/sdk/examples/hello-deployer",
                     "-B", d.str("build"), "-DCMAKE_PREFIX_PATH=" + d.str("prefix")},
                    d.str(), {}, std::chrono::seconds(120));
    BOOST_REQUIRE_MESSAGE(conf.code == 0, conf.out + conf.err);
    auto build = run({cmake, "--build", d.str("build")}, d.str(), {}, std::chrono::seconds(180));
    BOOST_REQUIRE_MESSAGE(build.code == 0, build.out + build.err);

    fs::create_directories(d.path() / "plugins");
    ::chmod(d.str("plugins").c_str(), 0755);
    fs::copy_file(d.path() / "build/hello.so", d.path() / "plugins/hello.so");
    ::chmod(d.str("plugins/hello.so").c_str(), 0755);
    auto report = plugins::loadPluginDir(d.str("plugins"));
    BOOST_REQUIRE(report.errors.empty());
    BOOST_REQUIRE(report.byName.count("hello") == 1u);

    fs::create_directories(d.path() / "target");
    writeFile(d.str("asset"), "release bytes");
    plugins::InstanceContext ctx;
    ctx.component = "hello";
    ctx.settingsJson = R"({"target_dir": ")" + d.str("target") + "\"}";
    ctx.stateDir = d.str("state");
    auto deployer = plugins::DeployerInstance::create(report.byName["hello"], ctx);
    BOOST_REQUIRE_MESSAGE(deployer.has_value(), (deployer ? "" : deployer.error().message()));
    BOOST_TEST(
        (*deployer)->install("v1.0.0", d.str("asset"), std::nullopt, false, Millis(5000)).ok());
    BOOST_TEST((*deployer)->verify("v1.0.0", Millis(5000)).ok());
    BOOST_TEST((*deployer)->discover(Millis(5000))->tag.value_or("") == "v1.0.0");
    BOOST_TEST(readFile(d.str("target/current")) == "release bytes");
}
