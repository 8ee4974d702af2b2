// Pure decisions of the container deployer: settings checks, image-tag mapping, the
// `create` command line, parsing of runtime CLI output and the pruning choice. No I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace rra::container {

inline constexpr const char* kComponentLabel = "io.raspi-release.component";
inline constexpr const char* kTagLabel = "io.raspi-release.tag";
// Prefix of every line the plugin asks the runtime to print, so that warnings the runtime
// writes to stderr (captured in the same stream) never get parsed as data.
inline constexpr const char* kMarker = "RRA|";
// Suffix of the container an install creates next to the running one before the swap.
inline constexpr const char* kNextSuffix = "-rra-next";

// Container names as podman and docker accept them: [a-zA-Z0-9][a-zA-Z0-9_.-]*.
bool validContainerName(const std::string& name);
// An image repository name without a tag or digest: lowercase, [a-z0-9._/:-], no tag
// after the last '/'. Empty string when fine, otherwise the problem.
std::string imageNameProblem(const std::string& image);

// A release tag as an image tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}): other characters
// (e.g. '+' of SemVer build metadata, '/') become '_'. The label keeps the real tag.
std::string imageTagFor(const std::string& releaseTag);

// True when run_args already chooses a restart policy (or asks for --rm, which the
// runtimes refuse together with --restart=always).
bool runArgsChooseRestart(const std::vector<std::string>& runArgs);

struct CreateSpec {
    std::string containerName;
    std::string component;
    std::string releaseTag;
    std::string imageRef;  // "<image>:<image tag>"
    std::vector<std::string> runArgs;
};
// Arguments after the runtime program: create --name N --label ... [--restart=always]
// <run_args> <image>.
std::vector<std::string> createArgs(const CreateSpec& spec);

// The image reference a `load` printed ("Loaded image: ref", "Loaded image(s): a,b",
// docker's "Loaded image ID: sha256:..."): every reference, in order.
std::vector<std::string> parseLoadedImages(const std::string& output);
// True for an image ID ("sha256:...", or bare hex) rather than a name.
bool isImageId(const std::string& ref);

struct ContainerState {
    std::string status;  // "running", "exited", "stopped", "created", "restarting", ...
    bool running = false;
    bool restarting = false;
    int64_t restartCount = 0;
    std::string componentLabel;
    std::string tagLabel;
    bool healthy() const { return running && !restarting && status == "running"; }
};
// The Go template for `<runtime> container inspect --format` matching parseState().
std::string stateFormat();
std::optional<ContainerState> parseState(const std::string& output);
// True when the runtime's error output says the container does not exist.
bool saysNoSuchContainer(const std::string& output);

// The Go template for `<runtime> images --format` matching parseImageList().
std::string imageListFormat();
// The tags of repository `image` in an `images` listing. Podman shows a name without a
// registry as "localhost/<name>", docker as "docker.io/library/<name>" or plain: all match.
std::vector<std::string> parseImageList(const std::string& output, const std::string& image);

// Which image tags to remove so that `keep` remain, never one in `protect`. `present` are
// the image tags in storage; `history` the image tags in install order, oldest first
// (tags not in it count as older than any in it). The newest unprotected tags fill the
// places left after the protected ones.
std::vector<std::string> tagsToPrune(const std::vector<std::string>& present,
                                     const std::vector<std::string>& history,
                                     const std::set<std::string>& protect, size_t keep);

}  // namespace rra::container
