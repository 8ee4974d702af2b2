// The container deployer: loads a release's image archive into podman (or docker), swaps
// the managed container for one on the new image, health-checks it through `exec`, puts
// the previous image back on failure and prunes old images. Talks to the runtime only
// through its CLI: argv (no shell), a timeout per call, captured output, cancellation.
//
// Settings (config.md, "container"): runtime, container, image, run_args, health_cmd, keep;
// added here: settle_s (3) how long a new container must stay up before it counts as
// running, stop_timeout_s (10) passed to `stop -t`. `container` defaults to the component
// name and `image` to "localhost/<component>". With podman, `--restart=always` brings the
// container back after a reboot only when podman-restart.service is enabled.
#include "container/container_logic.hpp"
#include "support/fs.hpp"
#include "support/settings.hpp"
#include "support/subprocess.hpp"

#include <raspi_release/deployer.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

namespace rra::container {

namespace ps = rra::plugin_support;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

constexpr uint64_t kCommandCapMs = 5 * 60 * 1000;
constexpr uint64_t kLoadCapMs = 60 * 60 * 1000;
constexpr size_t kLogLines = 20;
constexpr uint64_t kReportReserveMs = 2000;
constexpr uint64_t kMinAttemptMs = 500;

struct Settings {
    std::string runtime;  // absolute path of the runtime program
    std::string container;
    std::string image;
    std::vector<std::string> runArgs;
    std::vector<std::string> healthCmd;
    int64_t keep = 3;
    int64_t settleS = 3;
    int64_t stopTimeoutS = 10;
};

// "podman"/"docker" looked up in PATH, or an absolute path to an executable.
std::optional<std::string> resolveRuntime(const std::string& runtime, std::string& problem) {
    if (runtime.find('/') != std::string::npos) {
        if (runtime[0] != '/') {
            problem = "'" + runtime + "' must be 'podman', 'docker' or an absolute path";
            return std::nullopt;
        }
        if (access(runtime.c_str(), X_OK) != 0 || ps::fs::isDirectory(runtime)) {
            problem = "'" + runtime + "' is not an executable file";
            return std::nullopt;
        }
        return runtime;
    }
    if (runtime != "podman" && runtime != "docker") {
        problem = "'" + runtime + "' must be 'podman', 'docker' or an absolute path";
        return std::nullopt;
    }
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
    size_t start = 0;
    while (start <= dirs.size()) {
        size_t end = dirs.find(':', start);
        if (end == std::string::npos)
            end = dirs.size();
        std::string dir = dirs.substr(start, end - start);
        if (!dir.empty()) {
            std::string candidate = dir + "/" + runtime;
            if (access(candidate.c_str(), X_OK) == 0 && !ps::fs::isDirectory(candidate))
                return candidate;
        }
        start = end + 1;
    }
    problem = "'" + runtime + "' not found in PATH (" + dirs + ")";
    return std::nullopt;
}

}  // namespace

class ContainerDeployer : public sdk::Deployer {
  public:
    ContainerDeployer(sdk::Config cfg, sdk::Host host, Settings s)
        : cfg_(std::move(cfg)), host_(host), s_(std::move(s)) {}

    static sdk::Result create(const sdk::Config& cfg, sdk::Host host,
                              std::unique_ptr<sdk::Deployer>& out) {
        ps::SettingsReader r(cfg.settingsJson);
        Settings s;
        const std::string runtime = r.string("runtime", "podman");
        s.container = r.string("container", cfg.component);
        s.image = r.string("image", "localhost/" + cfg.component);
        s.runArgs = r.argv("run_args");
        s.healthCmd = r.argv("health_cmd");
        s.keep = r.integer("keep", s.keep, 1, 1000);
        s.settleS = r.integer("settle_s", s.settleS, 0, 600);
        s.stopTimeoutS = r.integer("stop_timeout_s", s.stopTimeoutS, 0, 3600);
        if (runtime.empty()) {
            r.addError("runtime", "must not be empty");
        } else {
            std::string problem;
            if (auto path = resolveRuntime(runtime, problem))
                s.runtime = *path;
            else
                r.addError("runtime", problem);
        }
        if (!validContainerName(s.container))
            r.addError("container", "'" + s.container +
                                        "' is not a valid container name "
                                        "([a-zA-Z0-9][a-zA-Z0-9_.-]*)");
        if (auto problem = imageNameProblem(s.image); !problem.empty())
            r.addError("image", "'" + s.image + "' " + problem);
        for (const auto& k : r.unknownKeys())
            host.warning("component '" + cfg.component + "': " + k + ": unknown key, ignored");
        if (r.hasErrors())
            return sdk::Result::invalidSettings(r.errorText());
        out = std::make_unique<ContainerDeployer>(cfg, host, std::move(s));
        return sdk::Result::ok();
    }

    sdk::Result discover(sdk::Discovery& out) override {
        const std::string ctx = "discover";
        if (auto fin = finishInterruptedSwap(); !fin)
            return ps::toResult(fin.error(), ctx);
        auto st = inspect(s_.container);
        if (!st)
            return ps::toResult(st.error(), ctx);
        if (!*st)
            return sdk::Result::ok();
        const ContainerState& c = **st;
        if (c.componentLabel != cfg_.component || c.tagLabel.empty()) {
            host_.warning(where() + "container '" + s_.container + "' is not labelled " +
                          kComponentLabel + "=" + cfg_.component + " with a " + kTagLabel +
                          " (found '" + c.componentLabel + "'); treating as nothing installed");
            return sdk::Result::ok();
        }
        out.tag = c.tagLabel;
        return sdk::Result::ok();
    }

    sdk::Result install(const sdk::InstallRequest& req) override {
        const std::string ctx = "install " + req.tag;
        // Someone else's container under our name is not ours to replace.
        auto before = inspect(s_.container);
        if (!before)
            return ps::toResult(before.error(), ctx);
        std::optional<std::string> previous = req.fromTag;
        if (*before) {
            const auto& b = **before;
            if (!b.componentLabel.empty() && b.componentLabel != cfg_.component)
                return sdk::Result::refused(ctx + ": container '" + s_.container +
                                            "' belongs to component '" + b.componentLabel + "'");
            if (b.componentLabel == cfg_.component && !b.tagLabel.empty())
                previous = b.tagLabel;
        }

        host_.progress(5, "loading image");
        auto loaded = loadAndTag(req.artifactPath, req.tag);
        if (!loaded) {
            // Nothing about the running container changed: the artifact is refused.
            if (loaded.error().kind == ps::FailureKind::kError)
                return sdk::Result::refused(ctx + ": " + loaded.error().message);
            return ps::toResult(loaded.error(), ctx);
        }
        host_.progress(60, "creating container");
        const std::string ref = imageRef(req.tag);
        if (auto made = createNext(ref, req.tag); !made) {
            if (!previous || imageTagFor(*previous) != imageTagFor(req.tag))
                (void)removeImageTag(imageTagFor(req.tag));
            if (made.error().kind == ps::FailureKind::kError)
                return sdk::Result::refused(ctx + ": " + made.error().message);
            return ps::toResult(made.error(), ctx);
        }
        host_.progress(75, "replacing container");
        if (auto sw = swapInNext(); !sw)
            return ps::toResult(sw.error(), ctx);
        host_.info(where() + "container '" + s_.container + "' runs " + ref);
        remember(imageTagFor(req.tag));
        std::set<std::string> protect{imageTagFor(req.tag)};
        if (previous)
            protect.insert(imageTagFor(*previous));
        prune(protect);
        host_.progress(100, "installed");
        return sdk::Result::ok();
    }

    sdk::Result verify(const std::string& tag, uint32_t timeoutMs) override {
        const std::string ctx = "verify " + tag;
        // The host's deadline for this hook is usually the same timeout: stop early enough
        // to collect the container log and report why, instead of being cut off.
        const uint64_t budget = std::min<uint64_t>(timeoutMs, host_.remainingMs());
        const uint64_t reserve = std::min<uint64_t>(kReportReserveMs, budget / 5);
        timeoutMs = static_cast<uint32_t>(budget - reserve);
        const auto deadline = Clock::now() + milliseconds(timeoutMs);
        auto st = inspect(s_.container);
        if (!st)
            return ps::toResult(st.error(), ctx);
        if (!*st)
            return sdk::Result::error(ctx + ": container '" + s_.container + "' does not exist");
        if ((*st)->tagLabel != tag)
            return sdk::Result::error(ctx + ": container '" + s_.container + "' runs tag '" +
                                      (*st)->tagLabel + "', not " + tag);
        const auto settleEnd = std::min(deadline, Clock::now() + std::chrono::seconds(s_.settleS));
        if (auto settled = settle(settleEnd); !settled)
            return ps::toResult(settled.error(), ctx);
        if (s_.healthCmd.empty())
            return sdk::Result::ok();
        if (auto h = healthLoop(deadline, timeoutMs); !h)
            return ps::toResult(h.error(), ctx);
        return sdk::Result::ok();
    }

    sdk::Result rollback(const std::optional<std::string>& toTag,
                         const std::string& failedTag) override {
        const std::string ctx = "rollback to " + toTag.value_or("nothing");
        if (toTag) {
            if (auto img = ensureImage(*toTag); !img)
                return ps::toResult(img.error(), ctx);
            if (auto made = createNext(imageRef(*toTag), *toTag); !made)
                return ps::toResult(made.error(), ctx);
            if (auto sw = swapInNext(); !sw)
                return ps::toResult(sw.error(), ctx);
        } else {
            auto section = host_.critical();
            Uninterruptible guard(*this);
            if (auto rm = removeContainer(s_.container); !rm)
                return ps::toResult(rm.error(), ctx);
        }
        // The failed image goes so it is never mistaken for a good one.
        if (!failedTag.empty() && imageTagFor(failedTag) != imageTagFor(toTag.value_or(""))) {
            forget(imageTagFor(failedTag));
            if (auto rm = removeImageTag(imageTagFor(failedTag)); !rm)
                host_.warning(where() + ctx + ": " + rm.error().message);
        }
        host_.info(where() + "rolled back from " + failedTag + " to " + toTag.value_or("nothing"));
        if (toTag) {
            // A restored container that does not stay up is reported, not hidden.
            const auto end = Clock::now() + std::chrono::milliseconds(std::min<uint64_t>(
                                                uint64_t(s_.settleS) * 1000, host_.remainingMs()));
            if (auto settled = settle(end); !settled)
                return ps::toResult(settled.error(), ctx);
        }
        return sdk::Result::ok();
    }

  private:
    std::string where() const { return "component '" + cfg_.component + "': "; }
    std::string nextName() const { return s_.container + kNextSuffix; }
    std::string imageRef(const std::string& releaseTag) const {
        return s_.image + ":" + imageTagFor(releaseTag);
    }
    std::string historyPath() const { return cfg_.stateDir + "/container-image-history"; }

    // Marks the runtime calls of a critical section: not cancelled, not cut by the hook's
    // deadline (each still has its own timeout).
    class Uninterruptible {
      public:
        explicit Uninterruptible(ContainerDeployer& d) : d_(d) { d_.uninterruptible_ = true; }
        ~Uninterruptible() { d_.uninterruptible_ = false; }
        Uninterruptible(const Uninterruptible&) = delete;
        Uninterruptible& operator=(const Uninterruptible&) = delete;

      private:
        ContainerDeployer& d_;
    };

    // One runtime CLI call, bounded by `capMs` and the hook's remaining time.
    ps::Outcome<ps::CommandResult> cli(std::vector<std::string> args,
                                       uint64_t capMs = kCommandCapMs, size_t tailLines = 50) {
        ps::CommandSpec spec;
        spec.argv.push_back(s_.runtime);
        spec.argv.insert(spec.argv.end(), args.begin(), args.end());
        spec.timeout = milliseconds(std::max<uint64_t>(1, std::min(host_.remainingMs(), capMs)));
        spec.cancelled = [this]() { return host_.cancelled(); };
        if (uninterruptible_) {
            // Half a swap is worse than a late hook: only the per-call cap bounds it.
            spec.timeout = milliseconds(capMs);
            spec.cancelled = nullptr;
        }
        spec.tailLines = tailLines;
        auto r = ps::runCommand(spec);
        if (!r)
            return ps::fail("runtime '" + s_.runtime + "': " + r.error().message);
        if (r->cancelled)
            return ps::fail(ps::FailureKind::kCancelled, ps::renderArgv(spec.argv) + ": cancelled");
        return r;
    }

    // A failed call as an error naming the command.
    ps::Done checked(const std::vector<std::string>& args, uint64_t capMs = kCommandCapMs) {
        auto r = cli(args, capMs);
        if (!r)
            return tl::unexpected(r.error());
        if (!r->succeeded())
            return ps::fail(ps::renderArgv(args) + " failed: " + r->describeWithOutput());
        return {};
    }

    // The container's state; nullopt when it does not exist.
    ps::Outcome<std::optional<ContainerState>> inspect(const std::string& name) {
        auto r = cli({"container", "inspect", "--format", stateFormat(), name});
        if (!r)
            return tl::unexpected(r.error());
        if (!r->succeeded()) {
            if (saysNoSuchContainer(r->tail))
                return std::optional<ContainerState>();
            return ps::fail("container inspect '" + name + "' failed: " + r->describeWithOutput());
        }
        auto st = parseState(r->tail);
        if (!st)
            return ps::fail("container inspect '" + name + "': unexpected output: " + r->tail);
        return std::optional<ContainerState>(*st);
    }

    std::string containerLogs() {
        auto r = cli({"logs", "--tail", std::to_string(kLogLines), s_.container}, 30000, kLogLines);
        if (!r || r->tail.empty())
            return "(no container log)";
        return r->tail;
    }

    // `load` + tag `<image>:<tag>`. Any failure before the container is touched.
    ps::Done loadAndTag(const std::string& archive, const std::string& releaseTag) {
        auto r = cli({"load", "-i", archive}, kLoadCapMs);
        if (!r)
            return tl::unexpected(r.error());
        if (!r->succeeded())
            return ps::fail("'" + archive + "' is not an image archive the runtime can load: " +
                            r->describeWithOutput());
        auto refs = parseLoadedImages(r->tail);
        if (refs.empty())
            return ps::fail("'" + archive + "': the runtime loaded no image: " + r->tail);
        if (refs.size() > 1)
            host_.warning(where() + "'" + archive + "' holds " + std::to_string(refs.size()) +
                          " images; using " + refs.front());
        const std::string target = imageRef(releaseTag);
        if (refs.front() != target) {
            if (auto t = checked({"tag", refs.front(), target}); !t)
                return t;
            // The archive's own name would keep the image alive after pruning.
            if (!isImageId(refs.front())) {
                auto u = cli({"rmi", refs.front()});
                if (!u || !u->succeeded())
                    host_.debug(where() + "could not untag " + refs.front());
            }
        }
        host_.info(where() + "loaded " + refs.front() + " from '" + archive + "' as " + target);
        return {};
    }

    std::string listImagesOutput() {
        auto r = cli({"images", "--format", imageListFormat(), "--filter", "reference=" + s_.image},
                     kCommandCapMs, 1000);
        return r && r->succeeded() ? r->tail : std::string();
    }

    // The image of `releaseTag` in storage, loaded again from its asset when gone.
    ps::Done ensureImage(const std::string& releaseTag) {
        auto r = cli({"image", "inspect", "--format", std::string(kMarker) + "{{.Id}}",
                      imageRef(releaseTag)});
        if (!r)
            return tl::unexpected(r.error());
        if (r->succeeded())
            return {};
        host_.info(where() + imageRef(releaseTag) + " is not in storage; fetching its asset");
        std::string path;
        auto fetched = host_.fetchAsset(releaseTag, path);
        if (!fetched.isOk())
            return ps::fail("image " + imageRef(releaseTag) +
                            " is gone and its asset cannot be fetched: " + fetched.message);
        return loadAndTag(path, releaseTag);
    }

    ps::Done removeContainer(const std::string& name) {
        auto st = inspect(name);
        if (!st)
            return tl::unexpected(st.error());
        if (!*st)
            return {};
        if ((*st)->running)
            (void)cli({"stop", "-t", std::to_string(s_.stopTimeoutS), name},
                      uint64_t(s_.stopTimeoutS) * 1000 + 60000);
        return checked({"rm", "-f", name});
    }

    // The new container is created under a side name first, so bad run_args or an image
    // without a command are found while the running container is still untouched.
    ps::Done createNext(const std::string& ref, const std::string& releaseTag) {
        if (auto rm = removeContainer(nextName()); !rm)
            return rm;
        CreateSpec spec{nextName(), cfg_.component, releaseTag, ref, s_.runArgs};
        auto r = cli(createArgs(spec));
        if (!r)
            return tl::unexpected(r.error());
        if (!r->succeeded()) {
            (void)cli({"rm", "-f", nextName()});
            return ps::fail("creating a container from " + ref +
                            " failed: " + r->describeWithOutput());
        }
        return {};
    }

    // Stop+remove the managed container, give the side container its name, start it.
    ps::Done swapInNext() {
        auto section = host_.critical();
        Uninterruptible guard(*this);
        if (auto rm = removeContainer(s_.container); !rm)
            return rm;
        if (auto mv = checked({"rename", nextName(), s_.container}); !mv)
            return mv;
        auto r = cli({"start", s_.container});
        if (!r)
            return tl::unexpected(r.error());
        if (!r->succeeded())
            return ps::fail("starting container '" + s_.container + "' failed: " +
                            r->describeWithOutput() + "; container log: " + containerLogs());
        return {};
    }

    // A crash between removing the old container and renaming the new one leaves only the
    // side container: finish the hand-over so the system has one managed container.
    ps::Done finishInterruptedSwap() {
        auto next = inspect(nextName());
        if (!next)
            return tl::unexpected(next.error());
        if (!*next)
            return {};
        auto main = inspect(s_.container);
        if (!main)
            return tl::unexpected(main.error());
        if (*main) {
            host_.info(where() + "removing leftover container '" + nextName() + "'");
            return checked({"rm", "-f", nextName()});
        }
        host_.warning(where() + "finishing an interrupted container swap: '" + nextName() +
                      "' becomes '" + s_.container + "'");
        auto section = host_.critical();
        Uninterruptible guard(*this);
        if (auto mv = checked({"rename", nextName(), s_.container}); !mv)
            return mv;
        return checked({"start", s_.container});
    }

    // Until `end`: the container stays running without a restart.
    ps::Done settle(Clock::time_point end) {
        std::optional<int64_t> baseline;
        for (;;) {
            auto st = inspect(s_.container);
            if (!st)
                return tl::unexpected(st.error());
            if (!*st)
                return ps::fail("container '" + s_.container + "' disappeared");
            const ContainerState& c = **st;
            if (!baseline)
                baseline = c.restartCount;
            if (!c.healthy() || c.restartCount > 0 || c.restartCount != *baseline)
                return ps::fail("container '" + s_.container + "' is not running (status " +
                                c.status + ", restarted " + std::to_string(c.restartCount) +
                                " times); container log: " + containerLogs());
            if (Clock::now() >= end)
                return {};
            if (auto w = wait(std::min(end, Clock::now() + milliseconds(250))); !w)
                return w;
        }
    }

    // health_cmd through `exec` once a second until it passes or the deadline; the
    // container must stay up meanwhile.
    ps::Done healthLoop(Clock::time_point deadline, uint32_t budgetMs) {
        std::vector<std::string> args{"exec", s_.container};
        args.insert(args.end(), s_.healthCmd.begin(), s_.healthCmd.end());
        int attempts = 0;
        std::string last = "never ran";
        for (;;) {
            auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
            if (left.count() <= 0 && attempts > 0)
                break;
            ++attempts;
            auto r = cli(args, static_cast<uint64_t>(std::max<int64_t>(1, left.count())));
            if (!r)
                return tl::unexpected(r.error());
            if (r->succeeded())
                return {};
            // An attempt cut short by the deadline says less than the failure before it.
            if (!r->timedOut || attempts == 1)
                last = r->describeWithOutput();
            auto st = inspect(s_.container);
            if (!st)
                return tl::unexpected(st.error());
            if (!*st || !(*st)->healthy())
                return ps::fail("container '" + s_.container + "' stopped during health_cmd (" +
                                (*st ? (*st)->status : std::string("gone")) +
                                "); container log: " + containerLogs());
            // No attempt is started that would have less than kMinAttemptMs to run.
            auto next = Clock::now() + std::chrono::seconds(1);
            if (next + milliseconds(kMinAttemptMs) >= deadline)
                break;
            if (auto w = wait(next); !w)
                return w;
        }
        return ps::fail(ps::FailureKind::kTimeout,
                        "health_cmd (" + ps::renderArgv(s_.healthCmd) +
                            ") did not succeed within " + std::to_string(budgetMs) + " ms (" +
                            std::to_string(attempts) + " attempts): " + last +
                            "; container log: " + containerLogs());
    }

    ps::Done wait(Clock::time_point until) {
        while (Clock::now() < until) {
            if (host_.cancelled())
                return ps::fail(ps::FailureKind::kCancelled, "cancelled");
            std::this_thread::sleep_for(
                std::min<Clock::duration>(milliseconds(50), until - Clock::now()));
        }
        return {};
    }

    ps::Done removeImageTag(const std::string& imageTag) {
        auto r = cli({"rmi", s_.image + ":" + imageTag});
        if (!r)
            return tl::unexpected(r.error());
        if (!r->succeeded())
            return ps::fail("removing image " + s_.image + ":" + imageTag +
                            " failed: " + r->describeWithOutput());
        return {};
    }

    // Install order of image tags, oldest first: pruning keeps the newest.
    std::vector<std::string> history() const {
        std::vector<std::string> tags;
        std::ifstream in(historyPath());
        std::string line;
        while (std::getline(in, line)) {
            if (!line.empty())
                tags.push_back(line);
        }
        return tags;
    }
    void writeHistory(const std::vector<std::string>& tags) {
        const std::string tmp = historyPath() + ".tmp";
        {
            std::ofstream out(tmp, std::ios::trunc);
            for (const auto& t : tags)
                out << t << "\n";
            if (!out) {
                host_.warning(where() + "cannot write '" + tmp + "'");
                return;
            }
        }
        if (std::rename(tmp.c_str(), historyPath().c_str()) != 0)
            host_.warning(where() + "cannot replace '" + historyPath() + "'");
    }
    void remember(const std::string& imageTag) {
        auto tags = history();
        tags.erase(std::remove(tags.begin(), tags.end(), imageTag), tags.end());
        tags.push_back(imageTag);
        writeHistory(tags);
    }
    void forget(const std::string& imageTag) {
        auto tags = history();
        tags.erase(std::remove(tags.begin(), tags.end(), imageTag), tags.end());
        writeHistory(tags);
    }

    // Keeps `keep` image tags of `image`, never one in `protect` (the new and the previous).
    void prune(const std::set<std::string>& protect) {
        const auto present = parseImageList(listImagesOutput(), s_.image);
        const auto hist = history();
        for (const auto& t : tagsToPrune(present, hist, protect, static_cast<size_t>(s_.keep))) {
            host_.info(where() + "pruning old image " + s_.image + ":" + t);
            if (auto rm = removeImageTag(t); !rm)
                host_.warning(where() + rm.error().message);
            else
                forget(t);
        }
    }

    sdk::Config cfg_;
    sdk::Host host_;
    Settings s_;
    bool uninterruptible_ = false;
};

}  // namespace rra::container

RRA_DEFINE_DEPLOYER(rra::container::ContainerDeployer, "container",
                    "Runs a release's container image (podman or docker) as one managed "
                    "container, swapped per release and rolled back to the previous image",
                    "1.0.0")
