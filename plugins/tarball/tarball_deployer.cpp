// The tarball deployer: extracts a release archive into install_dir/releases/<tag>,
// switches install_dir/current to it atomically, restarts, health-checks, rolls back.
#include "support/extract.hpp"
#include "support/fs.hpp"
#include "support/settings.hpp"
#include "support/subprocess.hpp"

#include <raspi_release/deployer.hpp>

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <set>

namespace rra::tarball {

namespace ps = rra::plugin_support;
using std::chrono::milliseconds;

namespace {

constexpr const char* kPartialSuffix = ".partial";
constexpr uint64_t kMaxCommandMs = 30 * 60 * 1000;

struct Settings {
    std::string installDir;
    int64_t keep = 3;
    int64_t stripComponents = 0;
    int64_t maxUnpackedBytes = int64_t(4) << 30;
    std::vector<std::string> restartCmd;
    std::vector<std::string> healthCmd;
};

// A tag becomes a directory name: nothing that could leave releases/ or hide as a dotfile.
bool validTag(const std::string& tag) {
    if (tag.empty() || tag.size() > 200 || tag[0] == '.')
        return false;
    return std::none_of(tag.begin(), tag.end(), [](char c) {
        return c == '/' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
    });
}

}  // namespace

class TarballDeployer : public sdk::Deployer {
  public:
    TarballDeployer(sdk::Config cfg, sdk::Host host, Settings s)
        : cfg_(std::move(cfg)), host_(host), s_(std::move(s)) {}

    static sdk::Result create(const sdk::Config& cfg, sdk::Host host,
                              std::unique_ptr<sdk::Deployer>& out) {
        ps::SettingsReader r(cfg.settingsJson);
        Settings s;
        s.installDir = r.requiredString("install_dir");
        if (!s.installDir.empty() && s.installDir[0] != '/')
            r.addError("install_dir", "must be an absolute path");
        while (s.installDir.size() > 1 && s.installDir.back() == '/')
            s.installDir.pop_back();
        s.keep = r.integer("keep", s.keep, 1, 1000);
        s.stripComponents = r.integer("strip_components", 0, 0, 64);
        s.maxUnpackedBytes =
            r.integer("max_unpacked_bytes", s.maxUnpackedBytes, 1, int64_t(1) << 50);
        s.restartCmd = r.argv("restart_cmd");
        s.healthCmd = r.argv("health_cmd");
        for (const auto& k : r.unknownKeys())
            host.warning("component '" + cfg.component + "': " + k + ": unknown key, ignored");
        if (r.hasErrors())
            return sdk::Result::invalidSettings(r.errorText());
        if (!cfg.validateOnly) {
            auto made = ps::fs::makeDirs(s.installDir + "/releases");
            if (!made)
                return sdk::Result::error("settings.install_dir: " + made.error().message);
        }
        out = std::make_unique<TarballDeployer>(cfg, host, std::move(s));
        return sdk::Result::ok();
    }

    sdk::Result discover(sdk::Discovery& out) override {
        removeLeftovers();
        auto link = ps::fs::readSymlink(currentLink());
        if (!link) {
            host_.error(where() + "discover: " + link.error().message +
                        "; treating as nothing installed");
            return sdk::Result::ok();
        }
        if (!*link)
            return sdk::Result::ok();
        auto tag = tagOfTarget(**link);
        if (!tag) {
            host_.error(where() + "discover: '" + currentLink() + "' points at '" + **link +
                        "', which is missing or not a complete release; treating as nothing "
                        "installed");
            return sdk::Result::ok();
        }
        out.tag = *tag;
        return sdk::Result::ok();
    }

    sdk::Result install(const sdk::InstallRequest& req) override {
        const std::string ctx = "install " + req.tag;
        if (!validTag(req.tag))
            return sdk::Result::refused(ctx + ": tag cannot be used as a directory name");
        auto made = ps::fs::makeDirs(releasesDir());
        if (!made)
            return ps::toResult(made.error(), ctx);

        // The release being replaced stays protected from pruning until the next install.
        std::optional<std::string> previous = currentTag();
        const std::string partial = partialDir(req.tag);
        if (auto rm = ps::fs::removeTree(partial); !rm)
            return ps::toResult(rm.error(), ctx);
        if (mkdir(partial.c_str(), 0755) != 0)
            return sdk::Result::error(ctx + ": mkdir '" + partial + "': " + std::strerror(errno));

        ps::ExtractOptions eo;
        eo.archivePath = req.artifactPath;
        eo.destDir = partial;
        eo.stripComponents = static_cast<int>(s_.stripComponents);
        eo.maxUnpackedBytes = static_cast<uint64_t>(s_.maxUnpackedBytes);
        eo.cancelled = [this]() { return host_.cancelled(); };
        eo.progress = [this](int pct) { host_.progress(pct * 9 / 10, "extracting"); };
        auto extracted = ps::extractArchive(eo);
        if (!extracted) {
            (void)ps::fs::removeTree(partial);
            return ps::toResult(extracted.error(), ctx);
        }
        host_.progress(90, "syncing");
        if (auto d = makeDurable(partial, req.tag); !d) {
            (void)ps::fs::removeTree(partial);
            return ps::toResult(d.error(), ctx);
        }
        {
            auto section = host_.critical();
            if (auto sw = ps::fs::switchSymlink(currentLink(), "releases/" + req.tag); !sw)
                return ps::toResult(sw.error(), ctx + ": switching current");
        }
        host_.info(where() + "installed " + req.tag + " (" + std::to_string(extracted->entries) +
                   " entries, " + std::to_string(extracted->bytes) + " bytes); current -> " +
                   "releases/" + req.tag);
        std::set<std::string> keep{req.tag};
        if (previous)
            keep.insert(*previous);
        prune(keep);
        host_.progress(95, "restarting");
        if (auto rs = restart(req.tag); !rs)
            return ps::toResult(rs.error(), ctx);
        host_.progress(100, "installed");
        return sdk::Result::ok();
    }

    sdk::Result verify(const std::string& tag, uint32_t timeoutMs) override {
        const std::string ctx = "verify " + tag;
        auto cur = currentTag();
        if (cur != tag)
            return sdk::Result::error(ctx + ": current is " + (cur ? *cur : "nothing") + ", not " +
                                      tag);
        if (s_.healthCmd.empty())
            return sdk::Result::ok();
        ps::CommandSpec spec = command(s_.healthCmd, tag);
        spec.cwd = currentLink();
        auto r = ps::retryUntilSuccess("health_cmd", spec, milliseconds(timeoutMs));
        if (!r)
            return ps::toResult(r.error(), ctx);
        return sdk::Result::ok();
    }

    sdk::Result rollback(const std::optional<std::string>& toTag,
                         const std::string& failedTag) override {
        const std::string ctx = "rollback to " + toTag.value_or("nothing");
        if (toTag) {
            if (!validTag(*toTag) || !ps::fs::isDirectory(releaseDir(*toTag)))
                return sdk::Result::error(ctx + ": release directory '" + releaseDir(*toTag) +
                                          "' is missing");
            auto section = host_.critical();
            if (auto sw = ps::fs::switchSymlink(currentLink(), "releases/" + *toTag); !sw)
                return ps::toResult(sw.error(), ctx);
        } else {
            auto section = host_.critical();
            if (auto rm = ps::fs::removeSymlink(currentLink()); !rm)
                return ps::toResult(rm.error(), ctx);
        }
        // The failed release goes out of the way so it is never mistaken for a good one.
        if (validTag(failedTag) && failedTag != toTag.value_or("")) {
            if (auto rm = ps::fs::removeTree(releaseDir(failedTag)); !rm)
                host_.warning(where() + ctx + ": " + rm.error().message);
            (void)ps::fs::removeTree(partialDir(failedTag));
        }
        host_.info(where() + "rolled back from " + failedTag + " to " + toTag.value_or("nothing"));
        // With nothing installed there is nothing to restart.
        if (toTag) {
            if (auto rs = restart(*toTag); !rs)
                return ps::toResult(rs.error(), ctx);
        }
        return sdk::Result::ok();
    }

  private:
    std::string where() const { return "component '" + cfg_.component + "': "; }
    std::string releasesDir() const { return s_.installDir + "/releases"; }
    std::string releaseDir(const std::string& tag) const { return releasesDir() + "/" + tag; }
    std::string partialDir(const std::string& tag) const {
        return releasesDir() + "/." + tag + kPartialSuffix;
    }
    std::string currentLink() const { return s_.installDir + "/current"; }

    // The tag named by a symlink target, when it is a complete release directory. Only
    // finished releases carry their plain tag name: partial ones are dot-prefixed.
    std::optional<std::string> tagOfTarget(const std::string& target) const {
        std::string rel = target;
        const std::string abs = s_.installDir + "/";
        if (rel.rfind(abs, 0) == 0)
            rel = rel.substr(abs.size());
        const std::string prefix = "releases/";
        if (rel.rfind(prefix, 0) != 0)
            return std::nullopt;
        std::string tag = rel.substr(prefix.size());
        while (!tag.empty() && tag.back() == '/')
            tag.pop_back();
        if (!validTag(tag) || !ps::fs::isDirectory(releaseDir(tag)))
            return std::nullopt;
        return tag;
    }

    std::optional<std::string> currentTag() const {
        auto link = ps::fs::readSymlink(currentLink());
        if (!link || !*link)
            return std::nullopt;
        return tagOfTarget(**link);
    }

    // Everything extracted reaches the disk before the release gets its final name.
    ps::Done makeDurable(const std::string& partial, const std::string& tag) {
        if (auto s = ps::fs::syncFilesystem(partial); !s)
            return s;
        const std::string final = releaseDir(tag);
        // Stamp the release with its install time: pruning orders by it.
        utimensat(AT_FDCWD, partial.c_str(), nullptr, 0);
        if (ps::fs::exists(final)) {
            // Reinstalling a present tag: swap in one step so `current` never dangles,
            // then drop the old tree (now under the partial name, removed at startup too).
            if (renameat2(AT_FDCWD, partial.c_str(), AT_FDCWD, final.c_str(), RENAME_EXCHANGE) != 0)
                return ps::fail("exchange '" + partial + "' with '" + final +
                                "': " + std::strerror(errno));
            if (auto f = ps::fs::fsyncPath(releasesDir()); !f)
                return f;
            (void)ps::fs::removeTree(partial);
            return {};
        }
        if (rename(partial.c_str(), final.c_str()) != 0)
            return ps::fail("rename '" + partial + "' to '" + final + "': " + std::strerror(errno));
        return ps::fs::fsyncPath(releasesDir());
    }

    // Leftovers of an interrupted run: partial extractions and switch temporaries.
    void removeLeftovers() {
        ps::fs::removeStaleSwitchTemps(currentLink());
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(releasesDir(), ec)) {
            const std::string name = e.path().filename().string();
            if (name.size() > std::strlen(kPartialSuffix) && name[0] == '.' &&
                name.compare(name.size() - std::strlen(kPartialSuffix), std::string::npos,
                             kPartialSuffix) == 0) {
                host_.info(where() + "removing leftover of an interrupted install: " + name);
                if (auto rm = ps::fs::removeTree(e.path().string()); !rm)
                    host_.warning(where() + rm.error().message);
            }
        }
    }

    // Keeps `keep` releases, newest first by install time, always including `protect`.
    void prune(const std::set<std::string>& protect) {
        struct Rel {
            std::string tag;
            std::filesystem::file_time_type time;
        };
        std::vector<Rel> others;
        size_t kept = 0;
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(releasesDir(), ec)) {
            const std::string name = e.path().filename().string();
            if (!validTag(name) || !e.is_directory(ec))
                continue;
            if (protect.count(name)) {
                ++kept;
                continue;
            }
            others.push_back({name, e.last_write_time(ec)});
        }
        std::sort(others.begin(), others.end(),
                  [](const Rel& a, const Rel& b) { return a.time > b.time; });
        for (const auto& r : others) {
            if (kept < static_cast<size_t>(s_.keep)) {
                ++kept;
                continue;
            }
            host_.info(where() + "pruning old release " + r.tag);
            if (auto rm = ps::fs::removeTree(releaseDir(r.tag)); !rm)
                host_.warning(where() + rm.error().message);
        }
    }

    ps::CommandSpec command(const std::vector<std::string>& argv, const std::string& tag) const {
        ps::CommandSpec spec;
        spec.argv = argv;
        spec.env = {{"RRA_COMPONENT", cfg_.component}, {"RRA_TAG", tag}};
        spec.timeout = milliseconds(std::min<uint64_t>(host_.remainingMs(), kMaxCommandMs));
        spec.cancelled = [this]() { return host_.cancelled(); };
        return spec;
    }

    ps::Done restart(const std::string& tag) {
        if (s_.restartCmd.empty())
            return {};
        ps::CommandSpec spec = command(s_.restartCmd, tag);
        spec.cwd = s_.installDir;
        auto r = ps::runCommand(spec);
        if (!r)
            return ps::fail("restart_cmd: " + r.error().message);
        if (r->cancelled)
            return ps::fail(ps::FailureKind::kCancelled, "restart_cmd: cancelled");
        if (!r->succeeded())
            return ps::fail("restart_cmd (" + ps::renderArgv(s_.restartCmd) +
                            ") failed: " + r->describeWithOutput());
        return {};
    }

    sdk::Config cfg_;
    sdk::Host host_;
    Settings s_;
};

}  // namespace rra::tarball

RRA_DEFINE_DEPLOYER(rra::tarball::TarballDeployer, "tarball",
                    "Extracts a release archive into install_dir/releases/<tag> and switches "
                    "install_dir/current atomically",
                    "1.0.0")
