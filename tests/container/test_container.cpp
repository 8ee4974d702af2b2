// Tests of the container deployer plugin with real podman, through its real C ABI: install,
// upgrade, failed health -> rollback, refused assets, a container that exits at once,
// pruning, discovery, cancellation and settings errors.
#define BOOST_TEST_MODULE container
#include <boost/test/unit_test.hpp>

#include "container/podman_env.hpp"
#include "plugin_support/plugin_harness.hpp"

#include <chrono>
#include <thread>

using namespace rra::test;

namespace {

const std::string kPlugin = RRA_PLUGIN_DIR "/container.so";

PluginLibrary& library() {
    static PluginLibrary lib(kPlugin);
    return lib;
}

// Seconds since `start`, for bounded-duration checks.
double secondsSince(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

struct Fixture {
    PodmanEnv env;
    TempDir state;
    TestHost host;

    std::string settings(const std::string& extra = "") const {
        return "{\"runtime\":\"podman\",\"container\":\"" + env.container() + "\",\"image\":\"" +
               env.image() + "\",\"settle_s\":1,\"stop_timeout_s\":2" +
               (extra.empty() ? "" : "," + extra) + "}";
    }
    std::string withHealth(const std::string& extra = "") const {
        return settings("\"health_cmd\":[\"/bin/health\"]" + (extra.empty() ? "" : "," + extra));
    }
};

}  // namespace

BOOST_AUTO_TEST_CASE(settings_are_validated_by_key) {
    // Proves a runtime that cannot be found, a bad container name and an image carrying a
    // tag are each named by key, unknown keys warn, and defaults need only the runtime.
    TempDir state;
    TestHost host;
    PluginInstance missing(library().table(), host,
                           "{\"runtime\":\"/nonexistent/bin/podman\",\"container\":\"bad name\","
                           "\"image\":\"acme/app:latest\",\"keep\":0,\"colour\":\"red\"}",
                           state.str());
    BOOST_TEST(missing.created.status == RRA_INVALID_SETTINGS);
    BOOST_TEST(contains(missing.created.message,
                        "settings.runtime: '/nonexistent/bin/podman' is not an executable file"));
    BOOST_TEST(contains(missing.created.message, "settings.container: 'bad name'"));
    BOOST_TEST(contains(missing.created.message, "settings.image: 'acme/app:latest'"));
    BOOST_TEST(contains(missing.created.message, "settings.keep:"));
    BOOST_TEST(host.logged("settings.colour: unknown key"));

    PluginInstance other(library().table(), host, "{\"runtime\":\"nerdctl\"}", state.str());
    BOOST_TEST(other.created.status == RRA_INVALID_SETTINGS);
    BOOST_TEST(contains(other.created.message, "settings.runtime: 'nerdctl' must be"));

    // A bare name is looked up in PATH: with an empty PATH, podman cannot be found.
    TempDir emptyBin;
    const std::string savedPath = std::getenv("PATH") ? std::getenv("PATH") : "";
    ::setenv("PATH", emptyBin.str().c_str(), 1);
    PluginInstance noPath(library().table(), host, "{}", state.str(), true);
    ::setenv("PATH", savedPath.c_str(), 1);
    BOOST_TEST(noPath.created.status == RRA_INVALID_SETTINGS);
    BOOST_TEST(contains(noPath.created.message, "settings.runtime: 'podman' not found in PATH"));

    if (!findInPath("podman").empty()) {
        PluginInstance defaults(library().table(), host, "{}", state.str(), true);
        BOOST_TEST(defaults.created.ok(), defaults.created.message);
    }
}

BOOST_AUTO_TEST_CASE(install_upgrade_failed_health_rolls_back) {
    // Proves the main path with real podman: v1 installs (running, labelled, restart
    // policy always), v2 replaces it, v3 whose health command fails is reported with the
    // health output and container log, and rollback puts v2 back; discovery after each.
    Fixture f;
    PluginInstance p(library().table(), f.host, f.withHealth(), f.state.str());
    BOOST_REQUIRE_MESSAGE(p.created.ok(), p.created.message);
    BOOST_TEST(!p.discoveredTag().has_value());

    auto c = p.install("v1", f.env.asset("v1"));
    BOOST_REQUIRE_MESSAGE(c.ok(), c.message);
    BOOST_TEST(f.host.criticalSections.load() >= 1);
    BOOST_TEST(f.host.criticalDepth.load() == 0);
    BOOST_TEST(f.env.status() == "running");
    BOOST_TEST(f.env.tagLabel() == "v1");
    BOOST_TEST(f.env.inspect("{{index .Config.Labels \"io.raspi-release.component\"}}") == "demo");
    BOOST_TEST(f.env.inspect("{{.HostConfig.RestartPolicy.Name}}") == "always");
    BOOST_TEST(f.env.runningVersion() == "v1");
    BOOST_TEST(p.discoveredTag().value_or("") == "v1");
    c = p.verify("v1", 20000);
    BOOST_REQUIRE_MESSAGE(c.ok(), c.message);

    c = p.install("v2", f.env.asset("v2"), std::string("v1"));
    BOOST_REQUIRE_MESSAGE(c.ok(), c.message);
    BOOST_TEST(p.discoveredTag().value_or("") == "v2");
    BOOST_TEST(f.env.runningVersion() == "v2");
    c = p.verify("v2", 20000);
    BOOST_REQUIRE_MESSAGE(c.ok(), c.message);
    // Verify of a tag the container does not run fails at once.
    c = p.verify("v1", 20000);
    BOOST_TEST(c.status == RRA_ERROR);
    BOOST_TEST(contains(c.message, "runs tag 'v2', not v1"), c.message);

    c = p.install("v3", f.env.asset("v3"), std::string("v2"));
    BOOST_REQUIRE_MESSAGE(c.ok(), c.message);
    BOOST_TEST(p.discoveredTag().value_or("") == "v3");
    auto started = std::chrono::steady_clock::now();
    c = p.verify("v3", 3000);
    const double took = secondsSince(started);
    BOOST_TEST(c.status == RRA_ERROR);
    BOOST_TEST(contains(c.message, "health_cmd (/bin/health) did not succeed"), c.message);
    BOOST_TEST(contains(c.message, "unhealthy v3"), c.message);
    BOOST_TEST(contains(c.message, "container log:"), c.message);
    BOOST_TEST(contains(c.message, "serving v3"), c.message);
    BOOST_TEST(took < 15.0);

    c = p.rollback(std::string("v2"), "v3");
    BOOST_REQUIRE_MESSAGE(c.ok(), c.message);
    BOOST_TEST(p.discoveredTag().value_or("") == "v2");
    BOOST_TEST(f.env.status() == "running");
    BOOST_TEST(f.env.runningVersion() == "v2");
    c = p.verify("v2", 20000);
    BOOST_TEST(c.ok(), c.message);
    // The failed image is gone; v1 and v2 stay (keep 3).
    BOOST_TEST(f.env.imageTags() == (std::vector<std::string>{"v1", "v2"}),
               boost::test_tools::per_element());
    // The archive's own name was dropped: only the managed repository holds the images.
    BOOST_TEST(f.env.podman({"image", "exists", f.env.buildRef("v2")}).code != 0);
}

BOOST_AUTO_TEST_CASE(not_an_image_is_refused_and_container_untouched) {
    // Proves an asset that is no image archive is refused (RRA_REFUSED, a clear message)
    // before the running container is touched: same container ID, still running v1.
    Fixture f;
    PluginInstance p(library().table(), f.host, f.settings(), f.state.str());
    BOOST_REQUIRE_MESSAGE(p.created.ok(), p.created.message);
    auto c = p.install("v1", f.env.asset("v1"));
    BOOST_REQUIRE_MESSAGE(c.ok(), c.message);
    const std::string id = f.env.containerId();
    BOOST_REQUIRE(!id.empty());

    c = p.install("v2", f.env.asset("junk"), std::string("v1"));
    BOOST_TEST(c.status == RRA_REFUSED);
    BOOST_TEST(contains(c.message, "install v2: '" + f.env.asset("junk") +
                                       "' is not an image archive the runtime can load"),
               c.message);
    BOOST_TEST(f.env.containerId() == id);
    BOOST_TEST(f.env.status() == "running");
    BOOST_TEST(p.discoveredTag().value_or("") == "v1");

    // A missing asset file is refused the same way.
    c = p.install("v2", f.env.asset("does-not-exist"), std::string("v1"));
    BOOST_TEST(c.status == RRA_REFUSED);
    BOOST_TEST(f.env.containerId() == id);
}

BOOST_AUTO_TEST_CASE(oci_archive_installs_like_docker_archive) {
    // Proves an OCI-layout archive (podman save --format oci-archive) installs and runs
    // as well as a docker-archive one, and an upgrade between the formats works.
    Fixture f;
    PluginInstance p(library().table(), f.host, f.withHealth(), f.state.str());
    auto c = p.install("v1", f.env.asset("v1-oci"));
    BOOST_REQUIRE_MESSAGE(c.ok(), c.message);
    BOOST_TEST(f.env.runningVersion() == "v1");
    BOOST_TEST(p.verify("v1", 20000).ok());
    c = p.install("v2", f.env.asset("v2"), std::string("v1"));
    BOOST_REQUIRE_MESSAGE(c.ok(), c.message);
    BOOST_TEST(f.env.runningVersion() == "v2");
    BOOST_TEST(p.discoveredTag().value_or("") == "v2");
}

BOOST_AUTO_TEST_CASE(bad_run_args_are_refused_before_the_swap) {
    // Proves run_args the runtime rejects make install refuse while the old container
    // keeps running, with the runtime's complaint in the message.
    Fixture f;
    {
        PluginInstance p(library().table(), f.host, f.settings(), f.state.str());
        BOOST_REQUIRE(p.install("v1", f.env.asset("v1")).ok());
    }
    const std::string id = f.env.containerId();
    PluginInstance bad(library().table(), f.host,
                       f.settings("\"run_args\":[\"--no-such-flag-for-podman\"]"), f.state.str());
    BOOST_REQUIRE_MESSAGE(bad.created.ok(), bad.created.message);
    auto c = bad.install("v2", f.env.asset("v2"), std::string("v1"));
    BOOST_TEST(c.status == RRA_REFUSED);
    BOOST_TEST(contains(c.message, "no-such-flag-for-podman"), c.message);
    BOOST_TEST(f.env.containerId() == id);
    BOOST_TEST(f.env.runningVersion() == "v1");
    BOOST_TEST(f.env.inspect("{{.Id}}", f.env.container() + "-rra-next").empty());
}

BOOST_AUTO_TEST_CASE(container_exiting_at_once_fails_verify_and_is_restored) {
    // Proves a container that exits right after start (and is restarted by the always
    // policy) fails verify quickly with its log line, and rollback restores v1 running.
    Fixture f;
    PluginInstance p(library().table(), f.host, f.withHealth(), f.state.str());
    BOOST_REQUIRE(p.install("v1", f.env.asset("v1")).ok());
    BOOST_REQUIRE(p.verify("v1", 20000).ok());

    auto c = p.install("crash", f.env.asset("crash"), std::string("v1"));
    BOOST_REQUIRE_MESSAGE(c.ok(), c.message);
    auto started = std::chrono::steady_clock::now();
    c = p.verify("crash", 30000);
    BOOST_TEST(c.status == RRA_ERROR);
    BOOST_TEST(contains(c.message, "is not running"), c.message);
    BOOST_TEST(contains(c.message, "boom: cannot start crash"), c.message);
    BOOST_TEST(secondsSince(started) < 10.0);

    c = p.rollback(std::string("v1"), "crash");
    BOOST_REQUIRE_MESSAGE(c.ok(), c.message);
    BOOST_TEST(f.env.status() == "running");
    BOOST_TEST(f.env.runningVersion() == "v1");
    BOOST_TEST(p.discoveredTag().value_or("") == "v1");
}

BOOST_AUTO_TEST_CASE(pruning_keeps_keep_images_and_never_running_or_previous) {
    // Proves pruning after each install keeps `keep` images, newest installs first, and
    // that with keep=1 the running and the previous image both survive.
    Fixture f;
    PluginInstance p(library().table(), f.host, f.settings("\"keep\":2"), f.state.str());
    BOOST_REQUIRE(p.install("v1", f.env.asset("v1")).ok());
    BOOST_REQUIRE(p.install("v2", f.env.asset("v2"), std::string("v1")).ok());
    BOOST_TEST(f.env.imageTags() == (std::vector<std::string>{"v1", "v2"}),
               boost::test_tools::per_element());
    BOOST_REQUIRE(p.install("v3", f.env.asset("v3"), std::string("v2")).ok());
    BOOST_TEST(f.env.imageTags() == (std::vector<std::string>{"v2", "v3"}),
               boost::test_tools::per_element());
    BOOST_TEST(f.host.logged("pruning old image " + f.env.image() + ":v1"));

    PluginInstance one(library().table(), f.host, f.settings("\"keep\":1"), f.state.str());
    BOOST_REQUIRE(one.install("v1", f.env.asset("v1"), std::string("v3")).ok());
    // keep=1, yet v1 runs and v3 was running before: both stay, v2 goes.
    BOOST_TEST(f.env.imageTags() == (std::vector<std::string>{"v1", "v3"}),
               boost::test_tools::per_element());
    BOOST_TEST(f.env.runningVersion() == "v1");
}

BOOST_AUTO_TEST_CASE(rollback_reloads_a_pruned_image_from_its_asset) {
    // Proves rollback to a tag whose image is no longer in storage fetches its asset from
    // the host, loads it and runs it; rollback to nothing removes the container.
    Fixture f;
    PluginInstance p(library().table(), f.host, f.settings(), f.state.str());
    BOOST_REQUIRE(p.install("v1", f.env.asset("v1")).ok());
    BOOST_REQUIRE(p.install("v2", f.env.asset("v2"), std::string("v1")).ok());
    BOOST_REQUIRE(f.env.podman({"rmi", f.env.image() + ":v1"}).code == 0);
    f.host.assets["v1"] = f.env.asset("v1");

    auto c = p.rollback(std::string("v1"), "v2");
    BOOST_REQUIRE_MESSAGE(c.ok(), c.message);
    BOOST_TEST(f.host.fetched == (std::vector<std::string>{"v1"}),
               boost::test_tools::per_element());
    BOOST_TEST(f.env.runningVersion() == "v1");
    BOOST_TEST(p.discoveredTag().value_or("") == "v1");

    c = p.rollback(std::nullopt, "v1");
    BOOST_REQUIRE_MESSAGE(c.ok(), c.message);
    BOOST_TEST(f.env.status().empty());
    BOOST_TEST(!p.discoveredTag().has_value());
}

BOOST_AUTO_TEST_CASE(discovery_reads_labels_of_stopped_and_foreign_containers) {
    // Proves discovery reports the tag of a stopped managed container, ignores (and install
    // refuses to replace) a container of another component under the same name, and
    // finishes a swap interrupted between removing the old and renaming the new one.
    Fixture f;
    PluginInstance p(library().table(), f.host, f.settings(), f.state.str());
    BOOST_REQUIRE(p.install("v1", f.env.asset("v1")).ok());
    BOOST_REQUIRE(f.env.podman({"stop", "-t", "2", f.env.container()}).code == 0);
    BOOST_TEST(f.env.status() != "running");
    BOOST_TEST(p.discoveredTag().value_or("") == "v1");

    // Interrupted swap: only the side container exists.
    BOOST_REQUIRE(
        f.env.podman({"rename", f.env.container(), f.env.container() + "-rra-next"}).code == 0);
    BOOST_TEST(p.discoveredTag().value_or("") == "v1");
    BOOST_TEST(f.env.status() == "running");
    BOOST_TEST(f.env.inspect("{{.Id}}", f.env.container() + "-rra-next").empty());

    // Another component's container under our name.
    BOOST_REQUIRE(f.env.podman({"rm", "-f", "-t", "0", f.env.container()}).code == 0);
    auto r = f.env.podman({"run", "-d", "--name", f.env.container(), "--label",
                           "io.raspi-release.component=someone-else", "--label",
                           "io.raspi-release.tag=v9", f.env.image() + ":v1"});
    BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
    BOOST_TEST(!p.discoveredTag().has_value());
    BOOST_TEST(f.host.logged("treating as nothing installed"));
    auto c = p.install("v2", f.env.asset("v2"));
    BOOST_TEST(c.status == RRA_REFUSED);
    BOOST_TEST(contains(c.message, "belongs to component 'someone-else'"), c.message);
    BOOST_TEST(f.env.tagLabel() == "v9");
}

BOOST_AUTO_TEST_CASE(verify_stops_on_cancellation) {
    // Proves a verify waiting on a failing health command returns RRA_CANCELLED soon after
    // the host raises the cancellation flag, long before its timeout, and that a cancelled
    // install does not touch the running container.
    Fixture f;
    PluginInstance p(library().table(), f.host, f.withHealth(), f.state.str());
    BOOST_REQUIRE(p.install("v3", f.env.asset("v3")).ok());
    std::thread canceller([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(2500));
        f.host.cancel = true;
    });
    auto started = std::chrono::steady_clock::now();
    auto c = p.verify("v3", 120000);
    const double took = secondsSince(started);
    canceller.join();
    BOOST_TEST(c.status == RRA_CANCELLED, c.message);
    BOOST_TEST(took < 10.0);

    // An install cancelled before it starts leaves the running container alone.
    const std::string id = f.env.containerId();
    c = p.install("v1", f.env.asset("v1"), std::string("v3"));
    BOOST_TEST(c.status == RRA_CANCELLED, c.message);
    BOOST_TEST(f.env.containerId() == id);
    BOOST_TEST(f.env.tagLabel() == "v3");
}
