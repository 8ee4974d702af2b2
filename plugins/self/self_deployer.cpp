// The `self` deployer: the agent updating itself. A release is extracted beside the
// running one under install_root/releases/<tag>, proven to run (--version, --check-config),
// made current atomically, and handed to rra-self-watchdog, which restarts the agent and
// puts the previous release back unless the new agent confirms within healthy_within_s.
// The verdict crosses the restart through install_root/self-update.state (handover.hpp).
#include "self/handover.hpp"
#include "support/extract.hpp"
#include "support/fs.hpp"
#include "support/settings.hpp"
#include "support/subprocess.hpp"

#include <raspi_release/deployer.hpp>

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <set>

namespace rra::self {

using std::chrono::milliseconds;

namespace {

constexpr const char* kPartialSuffix = ".partial";
constexpr const char* kAgentInRelease = "bin/raspi-release-agent";
constexpr uint64_t kCheckTimeoutMs = 60'000;
constexpr uint64_t kSpawnTimeoutMs = 30'000;

struct Settings {
    std::string installRoot = "/opt/raspi-release-agent";
    std::vector<std::string> restartCmd{"systemctl", "--no-block", "restart",
                                        "raspi-release-agent"};
    int64_t healthyWithinS = 120;
    std::string watchdog;         // rra-self-watchdog; empty: next to the running agent
    std::string detach = "auto";  // how the watchdog leaves the agent's cgroup/session
};

std::string dirName(const std::string& p) {
    auto slash = p.find_last_of('/');
    if (slash == std::string::npos)
        return ".";
    return slash == 0 ? "/" : p.substr(0, slash);
}

std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' '))
        s.pop_back();
    return s;
}

bool hasLine(const std::string& text, const std::string& line) {
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string::npos)
            end = text.size();
        if (trimmed(text.substr(pos, end - pos)) == line)
            return true;
        pos = end + 1;
    }
    return false;
}

}  // namespace

class SelfDeployer : public sdk::Deployer {
  public:
    SelfDeployer(sdk::Config cfg, sdk::Host host, Settings s)
        : cfg_(std::move(cfg)), host_(host), s_(std::move(s)) {
        if (s_.watchdog.empty())
            s_.watchdog =
                dirName(dirName(cfg_.agentPath)) + "/lib/raspi-release-agent/rra-self-watchdog";
    }

    static sdk::Result create(const sdk::Config& cfg, sdk::Host host,
                              std::unique_ptr<sdk::Deployer>& out) {
        ps::SettingsReader r(cfg.settingsJson);
        Settings s;
        s.installRoot = r.string("install_root", s.installRoot);
        if (s.installRoot.empty() || s.installRoot[0] != '/')
            r.addError("install_root", "must be an absolute path");
        while (s.installRoot.size() > 1 && s.installRoot.back() == '/')
            s.installRoot.pop_back();
        if (s.installRoot == "/")
            r.addError("install_root", "must not be /");
        auto restart = r.argv("restart_cmd");
        if (!restart.empty())
            s.restartCmd = restart;
        for (const auto& a : s.restartCmd)
            if (a.find('\n') != std::string::npos)
                r.addError("restart_cmd", "arguments must not contain a newline");
        s.healthyWithinS = r.integer("healthy_within_s", s.healthyWithinS, 1, 86400);
        s.watchdog = r.string("watchdog", "");
        if (!s.watchdog.empty() && s.watchdog[0] != '/')
            r.addError("watchdog", "must be an absolute path");
        s.detach = r.string("detach", s.detach);
        if (s.detach != "auto" && s.detach != "systemd-run" && s.detach != "fork")
            r.addError("detach", "must be \"auto\", \"systemd-run\" or \"fork\"");
        for (const auto& k : r.unknownKeys())
            host.warning("component '" + cfg.component + "': " + k + ": unknown key, ignored");
        if (r.hasErrors())
            return sdk::Result::invalidSettings(r.errorText());
        if (!cfg.validateOnly) {
            auto made = ps::fs::makeDirs(releasesDir(s.installRoot));
            if (!made)
                return sdk::Result::error("settings.install_root: " + made.error().message);
        }
        out = std::make_unique<SelfDeployer>(cfg, host, std::move(s));
        return sdk::Result::ok();
    }

    sdk::Result discover(sdk::Discovery& out) override {
        removeLeftovers();
        const auto running = runningTag();
        out.tag = running;
        auto read = readHandover(root());
        if (!read) {
            host_.error(where() + "discover: " + read.error().message + "; ignoring it");
            return sdk::Result::ok();
        }
        if (!*read)
            return sdk::Result::ok();
        const Handover h = **read;
        const uint64_t took =
            h.startedMs > 0 && nowMs() > h.startedMs ? uint64_t(nowMs() - h.startedMs) : 0;
        switch (h.state) {
            case HandoverState::kPending:
                if (running == h.tag) {
                    out.verdict = RRA_VERDICT_PENDING;
                    fillVerdict(out, h, took);
                    host_.info(where() + h.tag + " is on probation: confirm within " +
                               std::to_string(h.healthyWithinS) + " s");
                    ensureWatchdog();
                    return sdk::Result::ok();
                }
                return reportInterrupted(out, h, took, running);
            case HandoverState::kCommitted:
                // The confirming run already reported apply_succeeded.
                if (auto rm = removeHandover(root()); !rm)
                    host_.warning(where() + rm.error().message);
                return sdk::Result::ok();
            case HandoverState::kFailed:
                out.verdict = RRA_VERDICT_FAILED;
                fillVerdict(out, h, took);
                out.verdictError = h.error.empty() ? "failed after restart" : h.error;
                host_.error(where() + h.tag + " failed its probation: " + out.verdictError);
                forget(h.tag, running);
                return sdk::Result::ok();
        }
        return sdk::Result::ok();
    }

    sdk::Result install(const sdk::InstallRequest& req) override {
        const std::string ctx = "install " + req.tag;
        if (!validTag(req.tag))
            return sdk::Result::refused(ctx + ": tag cannot be used as a directory name");
        const auto running = runningTag();
        if (running == req.tag && runningFromRoot())
            return sdk::Result::refused(ctx + ": this release is the running agent");
        if (::access(s_.watchdog.c_str(), X_OK) != 0)
            return sdk::Result::refused(ctx + ": watchdog '" + s_.watchdog +
                                        "' is not executable: " + std::strerror(errno));
        if (auto h = readHandover(root()); h && *h) {
            if ((*h)->state == HandoverState::kPending)
                return sdk::Result::refused(ctx + ": " + (*h)->tag + " is still on probation");
            (void)removeHandover(root());  // a finished one nobody collected
        }
        if (auto made = ps::fs::makeDirs(releasesDir(root())); !made)
            return ps::toResult(made.error(), ctx);

        const std::string partial = partialDir(req.tag);
        if (auto rm = ps::fs::removeTree(partial); !rm)
            return ps::toResult(rm.error(), ctx);
        if (::mkdir(partial.c_str(), 0755) != 0)
            return sdk::Result::error(ctx + ": mkdir '" + partial + "': " + std::strerror(errno));
        auto cleanup = [&](const sdk::Result& r) {
            (void)ps::fs::removeTree(partial);
            return r;
        };

        ps::ExtractOptions eo;
        eo.archivePath = req.artifactPath;
        eo.destDir = partial;
        eo.cancelled = [this]() { return host_.cancelled(); };
        eo.progress = [this](int pct) { host_.progress(pct * 7 / 10, "extracting"); };
        auto extracted = ps::extractArchive(eo);
        if (!extracted)
            return cleanup(ps::toResult(extracted.error(), ctx));

        host_.progress(70, "checking the new agent");
        if (auto checked = checkNewAgent(partial, req.tag); !checked.isOk())
            return cleanup(checked);

        host_.progress(85, "syncing");
        if (auto d = makeDurable(partial, req.tag); !d)
            return cleanup(ps::toResult(d.error(), ctx));

        Handover h;
        h.tag = req.tag;
        h.fromTag = req.fromTag.value_or("");
        h.previousTarget = runningFromRoot() && running ? "releases/" + *running : "";
        h.startedMs = nowMs();
        h.healthyWithinS = s_.healthyWithinS;
        h.restartCmd = s_.restartCmd;
        {
            // Marker first, then the switch: whoever finds current on an unproven release
            // also finds the marker that says how to go back.
            auto section = host_.critical();
            if (auto w = writeHandover(root(), h); !w)
                return ps::toResult(w.error(), ctx);
            if (auto sw = ps::fs::switchSymlink(currentLink(root()), "releases/" + req.tag); !sw) {
                (void)removeHandover(root());
                return ps::toResult(sw.error(), ctx + ": switching current");
            }
        }
        host_.info(where() + "current -> releases/" + req.tag + " (previous: " +
                   (h.previousTarget.empty() ? "the packaged agent" : h.previousTarget) + ")");
        std::set<std::string> keep{req.tag};
        if (running)
            keep.insert(*running);
        prune(keep);

        host_.progress(95, "handing over to the watchdog");
        if (auto sp = spawnWatchdog(true); !sp) {
            // Nobody would restart us or watch the new agent: undo the switch now; the
            // engine's rollback() then finds everything back in place.
            (void)rollBackPending(root(), "watchdog could not be started");
            (void)removeHandover(root());
            return ps::toResult(sp.error(), ctx);
        }
        host_.progress(100, "waiting for the restart");
        return sdk::Result::pendingRestart("current is " + req.tag +
                                           "; the watchdog restarts the agent and expects it "
                                           "healthy within " +
                                           std::to_string(s_.healthyWithinS) + " s");
    }

    sdk::Result verify(const std::string& tag, uint32_t) override {
        auto running = runningTag();
        if (running != tag)
            return sdk::Result::error("verify " + tag + ": the running agent is " +
                                      running.value_or("unknown"));
        return sdk::Result::ok();
    }

    sdk::Result rollback(const std::optional<std::string>& toTag,
                         const std::string& failedTag) override {
        const std::string ctx = "rollback to " + toTag.value_or("nothing");
        const auto running = runningTag();
        auto h = readHandover(root());
        if (h && *h && (*h)->tag == failedTag && (*h)->state == HandoverState::kPending) {
            auto section = host_.critical();
            auto r =
                rollBackPending(root(), "rolled back by the agent after " + failedTag + " failed");
            if (!r)
                return ps::toResult(r.error(), ctx);
            if (running == failedTag) {
                // We are the new agent and lost our probation (confirm failed): the old one
                // must come back and report; the marker tells it what happened.
                if (auto rs = runRestart(s_.restartCmd, kSpawnTimeoutMs); !rs)
                    return ps::toResult(rs.error(), ctx);
                return sdk::Result::ok();
            }
            (void)removeHandover(root());  // the engine of this run reports the failure
        } else if (auto cur = ps::fs::readSymlink(currentLink(root()));
                   cur && *cur && running != failedTag) {
            // Make current name the agent that runs (or nothing, for the packaged one).
            const std::string want = runningFromRoot() ? "releases/" + *running : "";
            if (**cur != want) {
                auto section = host_.critical();
                auto sw = want.empty() ? ps::fs::removeSymlink(currentLink(root()))
                                       : ps::fs::switchSymlink(currentLink(root()), want);
                if (!sw)
                    return ps::toResult(sw.error(), ctx);
            }
        }
        if (validTag(failedTag) && running != failedTag)
            (void)ps::fs::removeTree(releaseDir(failedTag));
        host_.info(where() + "rolled back from " + failedTag + " to " +
                   running.value_or("nothing"));
        return sdk::Result::ok();
    }

    sdk::Result confirm(const std::string& tag) override {
        const std::string ctx = "confirm " + tag;
        auto lock = FileLock::acquire(stateLockPath(root()));
        if (!lock)
            return ps::toResult(lock.error(), ctx);
        auto h = readHandover(root());
        if (!h)
            return ps::toResult(h.error(), ctx);
        if (!*h) {
            if (runningTag() == tag)
                return sdk::Result::ok();
            return sdk::Result::error(ctx + ": no self-update of " + tag + " is on probation");
        }
        Handover m = **h;
        if (m.tag != tag)
            return sdk::Result::error(ctx + ": the release on probation is " + m.tag);
        if (m.state == HandoverState::kFailed)
            return sdk::Result::error(ctx + ": probation already ended: " + m.error);
        if (m.state == HandoverState::kPending) {
            m.state = HandoverState::kCommitted;
            if (auto w = writeHandover(root(), m); !w)
                return ps::toResult(w.error(), ctx);
        }
        host_.info(where() + tag + " is healthy; self-update committed");
        return sdk::Result::ok();
    }

  private:
    const std::string& root() const { return s_.installRoot; }
    std::string where() const { return "component '" + cfg_.component + "': "; }
    std::string releaseDir(const std::string& tag) const { return releasesDir(root()) + "/" + tag; }
    std::string partialDir(const std::string& tag) const {
        return releasesDir(root()) + "/." + tag + kPartialSuffix;
    }

    // The release directory the running agent was started from, when it is one of ours.
    std::optional<std::string> releaseOfAgent() const {
        std::error_code ec;
        auto base = std::filesystem::weakly_canonical(releasesDir(root()), ec);
        if (ec || cfg_.agentPath.empty())
            return std::nullopt;
        const std::string prefix = base.string() + "/";
        if (cfg_.agentPath.compare(0, prefix.size(), prefix) != 0)
            return std::nullopt;
        std::string rest = cfg_.agentPath.substr(prefix.size());
        auto slash = rest.find('/');
        if (slash == std::string::npos)
            return std::nullopt;
        std::string tag = rest.substr(0, slash);
        if (!validTag(tag) || rest.substr(slash + 1) != kAgentInRelease)
            return std::nullopt;
        return tag;
    }
    bool runningFromRoot() const { return releaseOfAgent().has_value(); }

    // What is applied is what runs: the release the agent was started from (current's
    // target whenever the launcher chose it), else the packaged agent's own version.
    std::optional<std::string> runningTag() const {
        if (auto t = releaseOfAgent())
            return t;
        if (cfg_.agentVersion.empty())
            return std::nullopt;
        return "v" + cfg_.agentVersion;
    }

    void fillVerdict(sdk::Discovery& out, const Handover& h, uint64_t took) const {
        out.verdictTag = h.tag;
        out.verdictFromTag = h.fromTag;
        out.verdictDurationMs = took;
    }

    // A pending marker while another agent than the new one runs: the hand-over was cut
    // short (the agent died before the switch took effect, or a rollback was interrupted
    // before it was recorded). Put current on what runs and report the failure.
    sdk::Result reportInterrupted(sdk::Discovery& out, const Handover& h, uint64_t took,
                                  const std::optional<std::string>& running) {
        const std::string reason = "self-update interrupted: the agent came back as " +
                                   running.value_or("unknown") + " before " + h.tag + " confirmed";
        auto r = rollBackPending(root(), reason);
        if (!r)
            host_.error(where() + r.error().message);
        out.verdict = RRA_VERDICT_FAILED;
        fillVerdict(out, h, took);
        out.verdictError = r && *r ? (*r)->error : reason;
        host_.warning(where() + out.verdictError);
        forget(h.tag, running);
        return sdk::Result::ok();
    }

    // The verdict is handed to the engine once: the marker goes, and so does the failed
    // release (never mistaken for a good one later).
    void forget(const std::string& failedTag, const std::optional<std::string>& running) {
        if (auto rm = removeHandover(root()); !rm)
            host_.warning(where() + rm.error().message);
        auto cur = ps::fs::readSymlink(currentLink(root()));
        bool isCurrent = cur && *cur && **cur == "releases/" + failedTag;
        if (running != failedTag && !isCurrent)
            if (auto rm = ps::fs::removeTree(releaseDir(failedTag)); !rm)
                host_.warning(where() + rm.error().message);
    }

    // The new agent runs on probation but nobody watches (power cut, watchdog killed):
    // start one without a restart, so the deadline holds again.
    void ensureWatchdog() {
        if (watchdogAlive(root()))
            return;
        host_.warning(where() + "no watchdog is watching the probation; starting one");
        if (auto sp = spawnWatchdog(false); !sp)
            host_.error(where() + sp.error().message);
    }

    ps::Done spawnWatchdog(bool restartFirst) {
        ps::CommandSpec spec;
        spec.argv = {s_.watchdog, "--install-root=" + root(), "--detach=" + s_.detach};
        if (restartFirst)
            spec.argv.push_back("--restart-first");
        if (!cfg_.runtimeDir.empty())
            spec.argv.push_back("--log=" + cfg_.runtimeDir + "/self-watchdog.log");
        spec.timeout = milliseconds(kSpawnTimeoutMs);
        auto r = ps::runCommand(spec);
        if (!r)
            return ps::fail("watchdog: " + r.error().message);
        if (!r->succeeded())
            return ps::fail("watchdog (" + ps::renderArgv(spec.argv) +
                            ") failed: " + r->describeWithOutput());
        return {};
    }

    // The new binary must run here and accept the live config before it may take over.
    sdk::Result checkNewAgent(const std::string& dir, const std::string& tag) {
        const std::string ctx = "install " + tag;
        const std::string bin = dir + "/" + kAgentInRelease;
        struct stat st {};
        if (::stat(bin.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || !(st.st_mode & S_IXUSR))
            return sdk::Result::refused(ctx + ": the release has no executable " + kAgentInRelease);
        const std::string version = tag.size() > 1 && tag[0] == 'v' ? tag.substr(1) : tag;
        auto run = [&](std::vector<std::string> argv, const char* what) -> sdk::Result {
            ps::CommandSpec spec;
            spec.argv = std::move(argv);
            spec.cwd = dir;
            spec.timeout = milliseconds(std::min<uint64_t>(host_.remainingMs(), kCheckTimeoutMs));
            spec.cancelled = [this]() { return host_.cancelled(); };
            auto r = ps::runCommand(spec);
            if (!r)
                return sdk::Result::refused(ctx + ": " + what + ": " + r.error().message);
            if (r->cancelled)
                return sdk::Result::cancelled(ctx + ": " + what + ": cancelled");
            if (!r->succeeded())
                return sdk::Result::refused(ctx + ": " + what +
                                            " failed: " + r->describeWithOutput());
            if (std::string(what) == "--version" &&
                !hasLine(r->tail, "raspi-release-agent " + version))
                return sdk::Result::refused(ctx + ": --version printed '" + trimmed(r->tail) +
                                            "', expected 'raspi-release-agent " + version + "'");
            return sdk::Result::ok();
        };
        if (auto v = run({bin, "--version"}, "--version"); !v.isOk())
            return v;
        return run({bin, "--check-config", "--config=" + cfg_.configPath}, "--check-config");
    }

    ps::Done makeDurable(const std::string& partial, const std::string& tag) {
        if (auto s = ps::fs::syncFilesystem(partial); !s)
            return s;
        const std::string final = releaseDir(tag);
        // A leftover of the same tag (a failed earlier attempt) is never the running one.
        if (auto rm = ps::fs::removeTree(final); !rm)
            return rm;
        if (::rename(partial.c_str(), final.c_str()) != 0)
            return ps::fail("rename '" + partial + "' to '" + final + "': " + std::strerror(errno));
        return ps::fs::fsyncPath(releasesDir(root()));
    }

    void removeLeftovers() {
        ps::fs::removeStaleSwitchTemps(currentLink(root()));
        (void)::unlink((handoverPath(root()) + ".tmp").c_str());
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(releasesDir(root()), ec)) {
            const std::string name = e.path().filename().string();
            const size_t n = std::strlen(kPartialSuffix);
            if (name.size() > n && name[0] == '.' &&
                name.compare(name.size() - n, std::string::npos, kPartialSuffix) == 0) {
                host_.info(where() + "removing leftover of an interrupted install: " + name);
                if (auto rm = ps::fs::removeTree(e.path().string()); !rm)
                    host_.warning(where() + rm.error().message);
            }
        }
    }

    // Only releases/<tag> directories other than the new, the running and current's
    // target: nothing else under install_root, and never a path dpkg owns.
    void prune(std::set<std::string> keep) {
        if (auto cur = ps::fs::readSymlink(currentLink(root())); cur && *cur) {
            const std::string prefix = "releases/";
            if ((*cur)->compare(0, prefix.size(), prefix) == 0)
                keep.insert((*cur)->substr(prefix.size()));
        }
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(releasesDir(root()), ec)) {
            const std::string name = e.path().filename().string();
            if (!validTag(name) || keep.count(name) || !e.is_directory(ec) || e.is_symlink(ec))
                continue;
            host_.info(where() + "pruning old release " + name);
            if (auto rm = ps::fs::removeTree(e.path().string()); !rm)
                host_.warning(where() + rm.error().message);
        }
    }

    sdk::Config cfg_;
    sdk::Host host_;
    Settings s_;
};

}  // namespace rra::self

RRA_DEFINE_DEPLOYER(rra::self::SelfDeployer, "self",
                    "Updates the agent itself: releases under install_root, an atomic current "
                    "link, and a watchdog that restores the previous agent unless the new one "
                    "becomes healthy in time",
                    "1.0.0")
