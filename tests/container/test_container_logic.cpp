// Table tests of the container deployer's pure decisions: names, tag mapping, the create
// command line, parsing of runtime output, and the pruning choice.
#define BOOST_TEST_MODULE container_logic
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "container/container_logic.hpp"

using namespace rra::container;
namespace bdata = boost::unit_test::data;

namespace {

struct TagCase {
    std::string release, image;
};
std::ostream& operator<<(std::ostream& o, const TagCase& c) {
    return o << c.release;
}

struct PruneCase {
    std::string name;
    std::vector<std::string> present, history;
    std::set<std::string> protect;
    size_t keep;
    std::vector<std::string> expected;
};
std::ostream& operator<<(std::ostream& o, const PruneCase& c) {
    return o << c.name;
}

}  // namespace

BOOST_DATA_TEST_CASE(release_tags_map_to_valid_image_tags,
                     bdata::make(std::vector<TagCase>{
                         {"v1.2.3", "v1.2.3"},
                         {"1.0.0-rc.1", "1.0.0-rc.1"},
                         {"v1.0.0+build.7", "v1.0.0_build.7"},
                         {"release/2024", "release_2024"},
                         {".hidden", "_.hidden"},
                         {"-x", "_-x"},
                         {"", "_"},
                         {std::string(200, 'a'), std::string(128, 'a')},
                     }),
                     c) {
    // Proves each release tag becomes a tag podman and docker accept, unchanged when
    // already valid.
    BOOST_TEST(imageTagFor(c.release) == c.image);
}

BOOST_AUTO_TEST_CASE(names_are_checked) {
    // Proves container and image names follow the runtimes' rules, and an image with a
    // tag is refused (the plugin owns the tag) while a registry port is allowed.
    BOOST_TEST(validContainerName("web-ui"));
    BOOST_TEST(validContainerName("Web_UI.2"));
    BOOST_TEST(!validContainerName(""));
    BOOST_TEST(!validContainerName("-web"));
    BOOST_TEST(!validContainerName("web ui"));
    BOOST_TEST(!validContainerName("web/ui"));
    BOOST_TEST(imageNameProblem("localhost/web-ui").empty());
    BOOST_TEST(imageNameProblem("registry.local:5000/acme/web").empty());
    BOOST_TEST(imageNameProblem("web").empty());
    BOOST_TEST(!imageNameProblem("").empty());
    BOOST_TEST(!imageNameProblem("Acme/web").empty());
    BOOST_TEST(!imageNameProblem("acme/web:latest").empty());
    BOOST_TEST(!imageNameProblem("acme/web@sha256").empty());
    BOOST_TEST(!imageNameProblem("acme/web/").empty());
}

BOOST_AUTO_TEST_CASE(create_args_add_labels_and_default_restart_policy) {
    // Proves the create command carries name, both labels, --restart=always unless
    // run_args picks a policy (or --rm), run_args in order and the image last.
    CreateSpec spec{"web", "web-ui", "v1.2", "localhost/web:v1.2", {"-p", "8080:80"}};
    std::vector<std::string> expected{"create",
                                      "--name",
                                      "web",
                                      "--label",
                                      "io.raspi-release.component=web-ui",
                                      "--label",
                                      "io.raspi-release.tag=v1.2",
                                      "--restart=always",
                                      "-p",
                                      "8080:80",
                                      "localhost/web:v1.2"};
    BOOST_TEST(createArgs(spec) == expected, boost::test_tools::per_element());

    for (auto args : std::vector<std::vector<std::string>>{
             {"--restart=on-failure"}, {"--restart", "no"}, {"--rm"}}) {
        spec.runArgs = args;
        auto a = createArgs(spec);
        BOOST_TEST(std::count(a.begin(), a.end(), "--restart=always") == 0);
        BOOST_TEST(a.back() == "localhost/web:v1.2");
    }
    // A value that merely mentions restart is not a policy.
    spec.runArgs = {"-e", "MODE=--restart"};
    BOOST_TEST(runArgsChooseRestart(spec.runArgs) == false);
}

BOOST_AUTO_TEST_CASE(load_output_is_parsed) {
    // Proves podman's and docker's `load` outputs give the loaded references, with
    // progress lines and stderr noise ignored.
    BOOST_TEST(parseLoadedImages("Getting image source signatures\nCopying blob sha256:77\n"
                                 "Writing manifest to image destination\nStoring signatures\n"
                                 "Loaded image: localhost/app:v1\n") ==
                   (std::vector<std::string>{"localhost/app:v1"}),
               boost::test_tools::per_element());
    BOOST_TEST(parseLoadedImages("Loaded image(s): localhost/app:v1,localhost/app:latest\n") ==
                   (std::vector<std::string>{"localhost/app:v1", "localhost/app:latest"}),
               boost::test_tools::per_element());
    BOOST_TEST(parseLoadedImages("Loaded image ID: sha256:abcdef0123456789\n") ==
                   (std::vector<std::string>{"sha256:abcdef0123456789"}),
               boost::test_tools::per_element());
    BOOST_TEST(parseLoadedImages("Error: payload does not match\n").empty());
    BOOST_TEST(isImageId("sha256:abc"));
    BOOST_TEST(isImageId("c744b3aea8c6"));
    BOOST_TEST(!isImageId("localhost/app:v1"));
    BOOST_TEST(!isImageId("cafe"));
}

BOOST_AUTO_TEST_CASE(inspect_output_is_parsed) {
    // Proves the marked inspect line is found among warnings, missing labels come back
    // empty, and the tag keeps a '|' it may contain.
    auto s = parseState(
        "time=\"x\" level=warning msg=\"noise\"\n"
        "RRA|running|true|false|0|web-ui|v1.2\n");
    BOOST_REQUIRE(s.has_value());
    BOOST_TEST(s->healthy());
    BOOST_TEST(s->componentLabel == "web-ui");
    BOOST_TEST(s->tagLabel == "v1.2");
    s = parseState("RRA|exited|false|false|4|<no value>|<no value>\n");
    BOOST_REQUIRE(s.has_value());
    BOOST_TEST(!s->healthy());
    BOOST_TEST(s->restartCount == 4);
    BOOST_TEST(s->componentLabel.empty());
    BOOST_TEST(s->tagLabel.empty());
    s = parseState("RRA|restarting|true|true|1|a|weird|tag\n");
    BOOST_REQUIRE(s.has_value());
    BOOST_TEST(!s->healthy());
    BOOST_TEST(s->tagLabel == "weird|tag");
    BOOST_TEST(!parseState("running|true|false|0|a|b\n").has_value());
    BOOST_TEST(saysNoSuchContainer("Error: inspecting object: no such container web"));
    BOOST_TEST(saysNoSuchContainer("Error: No such container: web"));
    BOOST_TEST(!saysNoSuchContainer("Error: cannot connect to podman"));
}

BOOST_AUTO_TEST_CASE(image_lists_match_the_repository) {
    // Proves a listing yields the tags of our repository only, with podman's "localhost/"
    // and docker's "docker.io/library/" forms of a bare name, and untagged entries skipped.
    const std::string out =
        "RRA|localhost/web|v1\nRRA|localhost/web|v2\nRRA|localhost/other|v1\n"
        "RRA|docker.io/library/web|v3\nRRA|web|v4\nRRA|localhost/web|<none>\n"
        "RRA|localhost/webx|v5\nnoise line\n";
    BOOST_TEST(parseImageList(out, "web") == (std::vector<std::string>{"v1", "v2", "v3", "v4"}),
               boost::test_tools::per_element());
    BOOST_TEST(parseImageList(out, "localhost/web") == (std::vector<std::string>{"v1", "v2"}),
               boost::test_tools::per_element());
}

BOOST_DATA_TEST_CASE(
    pruning_choice,
    bdata::make(std::vector<PruneCase>{
        {"under keep", {"v1", "v2"}, {"v1", "v2"}, {"v2"}, 3, {}},
        {"oldest goes",
         {"v1", "v2", "v3", "v4"},
         {"v1", "v2", "v3", "v4"},
         {"v4", "v3"},
         3,
         {"v1"}},
        {"protected beyond keep", {"v1", "v2", "v3"}, {"v1", "v2", "v3"}, {"v3", "v1"}, 1, {"v2"}},
        {"install order, not name order", {"a", "b", "c"}, {"c", "a", "b"}, {"b"}, 2, {"c"}},
        {"unknown tags count as oldest", {"x", "v1", "v2"}, {"v1", "v2"}, {"v2"}, 2, {"x"}},
        {"reinstall moves to newest", {"v1", "v2", "v3"}, {"v2", "v3", "v1"}, {"v1"}, 2, {"v2"}},
    }),
    c) {
    // Proves pruning keeps `keep` tags counting the protected ones first, then the most
    // recently installed, and never removes a protected tag.
    auto p = tagsToPrune(c.present, c.history, c.protect, c.keep);
    std::sort(p.begin(), p.end());
    BOOST_TEST(p == c.expected, boost::test_tools::per_element());
    for (const auto& t : p)
        BOOST_TEST(c.protect.count(t) == 0u);
}
