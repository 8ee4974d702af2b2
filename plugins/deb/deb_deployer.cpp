// The deb deployer: installs a release's .deb with the real dpkg (optionally into an
// alternate root), discovers the installed version with dpkg-query, repairs interrupted
// configuration, and rolls back by reinstalling the previous .deb (cached or fetched).
#include "support/fs.hpp"
#include "support/settings.hpp"
#include "support/subprocess.hpp"

#include <raspi_release/deployer.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

namespace rra::deb {

namespace ps = rra::plugin_support;
using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr uint64_t kMaxCommandMs = 30 * 60 * 1000;

struct Settings {
    std::string package;
    std::string dpkgRoot;
    std::string tagPrefix = "v";
    std::vector<std::string> healthCmd;
};

bool validPackageName(const std::string& n) {
    if (n.size() < 2 || !(std::islower(static_cast<unsigned char>(n[0])) ||
                          std::isdigit(static_cast<unsigned char>(n[0]))))
        return false;
    return std::all_of(n.begin(), n.end(), [](char c) {
        return std::islower(static_cast<unsigned char>(c)) ||
               std::isdigit(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
    });
}

// "1:2.3.4-1" -> "2.3.4": the part of a Debian version a release tag carries.
std::string upstreamVersion(const std::string& v) {
    std::string s = v;
    auto colon = s.find(':');
    if (colon != std::string::npos)
        s = s.substr(colon + 1);
    auto dash = s.rfind('-');
    if (dash != std::string::npos)
        s = s.substr(0, dash);
    return s;
}

// What dpkg-query reports about the package.
struct PackageState {
    bool known = false;  // dpkg has a record of it
    std::string status;  // "install ok installed"
    std::string version;
    bool installed() const { return status == "install ok installed"; }
    // Interrupted unpack/configure that `dpkg --configure -a` can finish.
    bool needsRepair() const {
        for (const char* s : {" half-configured", " unpacked", " half-installed",
                              " triggers-awaited", " triggers-pending"})
            if (status.size() >= std::string(s).size() &&
                status.compare(status.size() - std::string(s).size(), std::string::npos, s) == 0)
                return true;
        return false;
    }
    bool absent() const {
        return !known || status.find("not-installed") != std::string::npos ||
               status.find("config-files") != std::string::npos;
    }
};

bool lockedOutput(const std::string& out) {
    return out.find("locked by another process") != std::string::npos ||
           out.find("database is locked") != std::string::npos ||
           out.find("unable to lock") != std::string::npos;
}

}  // namespace

class DebDeployer : public sdk::Deployer {
  public:
    DebDeployer(sdk::Config cfg, sdk::Host host, Settings s)
        : cfg_(std::move(cfg)), host_(host), s_(std::move(s)) {}

    static sdk::Result create(const sdk::Config& cfg, sdk::Host host,
                              std::unique_ptr<sdk::Deployer>& out) {
        ps::SettingsReader r(cfg.settingsJson);
        Settings s;
        s.package = r.requiredString("package");
        if (!s.package.empty() && !validPackageName(s.package))
            r.addError("package", "'" + s.package + "' is not a valid Debian package name");
        s.dpkgRoot = r.string("dpkg_root", "");
        if (!s.dpkgRoot.empty() && s.dpkgRoot[0] != '/')
            r.addError("dpkg_root", "must be an absolute path");
        while (s.dpkgRoot.size() > 1 && s.dpkgRoot.back() == '/')
            s.dpkgRoot.pop_back();
        s.tagPrefix = r.string("tag_prefix", "v");
        s.healthCmd = r.argv("health_cmd");
        for (const auto& k : r.unknownKeys())
            host.warning("component '" + cfg.component + "': " + k + ": unknown key, ignored");
        if (r.hasErrors())
            return sdk::Result::invalidSettings(r.errorText());
        if (!cfg.validateOnly && !s.dpkgRoot.empty() &&
            !ps::fs::isDirectory(s.dpkgRoot + "/var/lib/dpkg"))
            return sdk::Result::error("settings.dpkg_root: '" + s.dpkgRoot +
                                      "/var/lib/dpkg' does not exist");
        out = std::make_unique<DebDeployer>(cfg, host, std::move(s));
        return sdk::Result::ok();
    }

    sdk::Result discover(sdk::Discovery& out) override {
        auto st = query();
        if (!st)
            return ps::toResult(st.error(), "discover");
        if (st->needsRepair()) {
            host_.warning(where() + "package " + s_.package + " was left '" + st->status +
                          "' by an interrupted run; repairing with dpkg --configure -a");
            auto fixed = dpkg({"--force-confdef", "--force-confold", "--configure", "-a"},
                              "dpkg --configure -a");
            if (!fixed)
                return ps::toResult(fixed.error(), "discover: repair");
            st = query();
            if (!st)
                return ps::toResult(st.error(), "discover");
            host_.info(where() + "repaired: " + s_.package + " is now '" + st->status + "'");
        }
        if (st->absent())
            return sdk::Result::ok();
        if (!st->installed())
            return sdk::Result::error("discover: package " + s_.package + " is '" + st->status +
                                      "' at " + st->version);
        out.tag = s_.tagPrefix + upstreamVersion(st->version);
        return sdk::Result::ok();
    }

    sdk::Result install(const sdk::InstallRequest& req) override {
        const std::string ctx = "install " + req.tag;
        auto info = debFields(req.artifactPath);
        if (!info)
            return ps::toResult(info.error(), ctx);
        if (info->first != s_.package)
            return sdk::Result::refused(ctx + ": '" + req.artifactPath + "' is package '" +
                                        info->first + "', not '" + s_.package + "'");
        if (upstreamVersion(info->second) != tagVersion(req.tag))
            return sdk::Result::refused(ctx + ": package version " + info->second +
                                        " does not match the tag");
        auto st = query();
        if (!st)
            return ps::toResult(st.error(), ctx);
        if (st->installed() && !req.isDowngrade && versionLess(info->second, st->version))
            return sdk::Result::refused(ctx + ": " + info->second +
                                        " is older than the installed " + st->version +
                                        "; downgrades happen only for pins and "
                                        "rollbacks");
        if (auto r = installDeb(req.artifactPath); !r)
            return ps::toResult(r.error(), ctx);
        keepForRollback(req.artifactPath, req.tag, req.fromTag);
        return sdk::Result::ok();
    }

    sdk::Result verify(const std::string& tag, uint32_t timeoutMs) override {
        const std::string ctx = "verify " + tag;
        const auto start = SteadyClock::now();
        auto st = query();
        if (!st)
            return ps::toResult(st.error(), ctx);
        if (!st->installed() || upstreamVersion(st->version) != tagVersion(tag))
            return sdk::Result::error(ctx + ": package " + s_.package + " is '" +
                                      (st->known ? st->status : "not installed") + "' at " +
                                      (st->version.empty() ? "no version" : st->version) +
                                      ", expected 'install ok installed' at " + tagVersion(tag));
        if (s_.healthCmd.empty())
            return sdk::Result::ok();
        ps::CommandSpec spec;
        spec.argv = s_.healthCmd;
        spec.cwd = "/";
        spec.env = {{"RRA_COMPONENT", cfg_.component}, {"RRA_TAG", tag}};
        spec.cancelled = [this]() { return host_.cancelled(); };
        auto spent = std::chrono::duration_cast<milliseconds>(SteadyClock::now() - start);
        auto budget = std::max(milliseconds(0), milliseconds(timeoutMs) - spent);
        if (auto r = ps::retryUntilSuccess("health_cmd", spec, budget); !r)
            return ps::toResult(r.error(), ctx);
        return sdk::Result::ok();
    }

    sdk::Result rollback(const std::optional<std::string>& toTag,
                         const std::string& failedTag) override {
        const std::string ctx = "rollback to " + toTag.value_or("nothing");
        dropCached(failedTag);
        if (!toTag) {
            auto r = dpkg({"--remove", s_.package}, "dpkg --remove");
            if (!r)
                return ps::toResult(r.error(), ctx);
            auto st = query();
            if (st && !st->absent())
                return sdk::Result::error(ctx + ": package " + s_.package + " is still '" +
                                          st->status + "'");
            return sdk::Result::ok();
        }
        std::string deb = cachedDeb(*toTag);
        if (!ps::fs::exists(deb)) {
            host_.info(where() + "no cached .deb for " + *toTag + "; asking the host for it");
            std::string fetched;
            sdk::Result f = host_.fetchAsset(*toTag, fetched);
            if (!f.isOk())
                return sdk::Result::error(ctx +
                                          ": no cached .deb and fetching it failed: " + f.message);
            deb = fetched;
        }
        auto info = debFields(deb);
        if (!info)
            return ps::toResult(info.error(), ctx);
        if (info->first != s_.package)
            return sdk::Result::error(ctx + ": '" + deb + "' is package '" + info->first + "'");
        if (auto r = installDeb(deb); !r)
            return ps::toResult(r.error(), ctx);
        keepForRollback(deb, *toTag, std::nullopt);
        auto st = query();
        if (!st)
            return ps::toResult(st.error(), ctx);
        if (!st->installed() || upstreamVersion(st->version) != tagVersion(*toTag))
            return sdk::Result::error(ctx + ": package " + s_.package + " is '" + st->status +
                                      "' at " + st->version + " after reinstalling");
        return sdk::Result::ok();
    }

  private:
    std::string where() const { return "component '" + cfg_.component + "': "; }

    // The version part of a tag: "v1.2.3" -> "1.2.3".
    std::string tagVersion(const std::string& tag) const {
        if (!s_.tagPrefix.empty() && tag.rfind(s_.tagPrefix, 0) == 0)
            return tag.substr(s_.tagPrefix.size());
        if (tag.size() > 1 && tag[0] == 'v' && std::isdigit(static_cast<unsigned char>(tag[1])))
            return tag.substr(1);
        return tag;
    }

    std::string debDir() const { return cfg_.stateDir + "/debs"; }
    std::string cachedDeb(const std::string& tag) const {
        std::string safe = tag;
        std::replace(safe.begin(), safe.end(), '/', '_');
        if (!safe.empty() && safe[0] == '.')
            safe[0] = '_';
        return debDir() + "/" + s_.package + "_" + safe + ".deb";
    }

    ps::CommandSpec spec(std::vector<std::string> argv) const {
        ps::CommandSpec c;
        c.argv = std::move(argv);
        c.cwd = "/";
        const char* path = std::getenv("PATH");
        // dpkg insists on finding ldconfig and start-stop-daemon in PATH.
        c.env = {{"DEBIAN_FRONTEND", "noninteractive"},
                 {"PATH", std::string(path ? path : "/usr/bin:/bin") + ":/usr/sbin:/sbin"}};
        c.timeout = milliseconds(std::min<uint64_t>(host_.remainingMs(), kMaxCommandMs));
        c.cancelled = [this]() { return host_.cancelled(); };
        c.tailLines = 15;
        return c;
    }

    std::vector<std::string> dpkgBase() const {
        std::vector<std::string> a{"dpkg"};
        if (!s_.dpkgRoot.empty()) {
            a.push_back("--root=" + s_.dpkgRoot);
            a.push_back("--log=" + s_.dpkgRoot + "/var/log/dpkg.log");
            a.push_back("--force-script-chrootless");
        }
        return a;
    }

    // Runs dpkg with `args`; while another process holds the dpkg lock, waits and retries
    // until the hook's deadline.
    ps::Done dpkg(const std::vector<std::string>& args, const std::string& what) {
        if (!s_.dpkgRoot.empty())
            (void)ps::fs::makeDirs(s_.dpkgRoot + "/var/log");
        std::vector<std::string> argv = dpkgBase();
        argv.insert(argv.end(), args.begin(), args.end());
        // Our own deadline: the host's remaining time, read once.
        const auto deadline = SteadyClock::now() +
                              milliseconds(std::min<uint64_t>(host_.remainingMs(), kMaxCommandMs));
        bool waited = false;
        for (;;) {
            auto r = ps::runCommand(spec(argv));
            if (!r)
                return ps::fail(what + ": " + r.error().message);
            if (r->succeeded())
                return {};
            if (r->cancelled)
                return ps::fail(ps::FailureKind::kCancelled, what + ": cancelled");
            if (!r->timedOut && lockedOutput(r->tail) &&
                SteadyClock::now() + milliseconds(1000) < deadline) {
                if (!waited)
                    host_.info(where() + "dpkg is locked by another process; waiting");
                waited = true;
                for (int i = 0; i < 20 && !host_.cancelled(); ++i)
                    std::this_thread::sleep_for(milliseconds(50));
                continue;
            }
            return ps::fail(what + " (" + ps::renderArgv(argv) +
                            ") failed: " + r->describeWithOutput());
        }
    }

    ps::Done installDeb(const std::string& deb) {
        return dpkg({"--force-confdef", "--force-confold", "-i", deb}, "dpkg -i");
    }

    ps::Outcome<PackageState> query() const {
        std::vector<std::string> argv{"dpkg-query"};
        if (!s_.dpkgRoot.empty())
            argv.push_back("--admindir=" + s_.dpkgRoot + "/var/lib/dpkg");
        argv.insert(argv.end(), {"-W", "-f=${Status}\t${Version}\n", s_.package});
        ps::CommandSpec c = spec(argv);
        auto r = ps::runCommand(c);
        if (!r)
            return ps::fail("dpkg-query: " + r.error().message);
        PackageState st;
        if (!r->succeeded()) {
            if (r->exitCode == 1 && r->tail.find("no packages found") != std::string::npos)
                return st;
            return ps::fail("dpkg-query " + s_.package + " failed: " + r->describeWithOutput());
        }
        const std::string line = r->tail.substr(0, r->tail.find('\n'));
        const auto tab = line.find('\t');
        st.known = true;
        st.status = line.substr(0, tab);
        st.version = tab == std::string::npos ? "" : line.substr(tab + 1);
        return st;
    }

    // (Package, Version) of a .deb file; refused when it is not a readable package.
    ps::Outcome<std::pair<std::string, std::string>> debFields(const std::string& path) const {
        auto r = ps::runCommand(spec({"dpkg-deb", "--field", path, "Package", "Version"}));
        if (!r)
            return ps::fail("dpkg-deb: " + r.error().message);
        if (!r->succeeded())
            return ps::fail(ps::FailureKind::kRefused,
                            "'" + path + "' is not a readable .deb: " + r->describeWithOutput());
        std::pair<std::string, std::string> out;
        size_t pos = 0;
        const std::string& t = r->tail;
        while (pos < t.size()) {
            size_t nl = t.find('\n', pos);
            std::string line =
                t.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
            if (line.rfind("Package: ", 0) == 0)
                out.first = line.substr(9);
            if (line.rfind("Version: ", 0) == 0)
                out.second = line.substr(9);
            if (nl == std::string::npos)
                break;
            pos = nl + 1;
        }
        if (out.first.empty() || out.second.empty())
            return ps::fail(ps::FailureKind::kRefused,
                            "'" + path + "' has no Package or Version field");
        return out;
    }

    bool versionLess(const std::string& a, const std::string& b) const {
        auto r = ps::runCommand(spec({"dpkg", "--compare-versions", a, "lt", b}));
        return r && r->succeeded();
    }

    // Keeps the installed .deb (and the one it replaced) so rollback needs no download.
    void keepForRollback(const std::string& deb, const std::string& tag,
                         const std::optional<std::string>& fromTag) {
        if (cfg_.stateDir.empty())
            return;
        const std::string target = cachedDeb(tag);
        if (auto m = ps::fs::makeDirs(debDir()); !m) {
            host_.warning(where() + m.error().message);
            return;
        }
        if (deb != target) {
            if (auto c = ps::fs::copyFileAtomic(deb, target); !c) {
                host_.warning(where() + "cannot keep the .deb for rollback: " + c.error().message);
                return;
            }
        }
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(debDir(), ec)) {
            const std::string p = e.path().string();
            if (p == target || (fromTag && p == cachedDeb(*fromTag)))
                continue;
            std::filesystem::remove(e.path(), ec);
        }
    }

    void dropCached(const std::string& tag) {
        if (cfg_.stateDir.empty() || tag.empty())
            return;
        std::error_code ec;
        std::filesystem::remove(cachedDeb(tag), ec);
    }

    sdk::Config cfg_;
    sdk::Host host_;
    Settings s_;
};

}  // namespace rra::deb

RRA_DEFINE_DEPLOYER(rra::deb::DebDeployer, "deb",
                    "Installs a release's Debian package with dpkg and reinstalls the previous "
                    "one on rollback",
                    "1.0.0")
