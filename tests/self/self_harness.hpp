// Test-side host for the `self` plugin: one plugin instance as a given agent run would
// create it (agent_path, agent_version, config_path, runtime_dir), with discover()
// returning the verdict fields and confirm(). Reuses the shared plugin test host.
#pragma once

#include "plugin_support/archive_builder.hpp"
#include "plugin_support/plugin_harness.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace rra::test {

struct AgentRun {
    std::string agentPath;     // as /proc/self/exe would say
    std::string agentVersion;  // without the v
    std::string configPath;
    std::string runtimeDir;
    std::string stateDir;
};

struct Verdict {
    Call call;
    std::optional<std::string> tag;
    rra_verdict_kind kind = RRA_VERDICT_NONE;
    std::string verdictTag, fromTag, error;
    uint64_t durationMs = 0;
};

class SelfInstance {
  public:
    SelfInstance(const rra_deployer* table, TestHost& host, const std::string& settingsJson,
                 AgentRun run, bool validateOnly = false)
        : t_(table), settings_(settingsJson), run_(std::move(run)) {
        rra_instance_config c{};
        c.struct_size = sizeof c;
        c.component = "agent";
        c.repo = "acme/raspi-release-agent";
        c.arch = "amd64";
        c.settings_json = settings_.c_str();
        c.state_dir = run_.stateDir.c_str();
        c.runtime_dir = run_.runtimeDir.c_str();
        c.config_path = run_.configPath.c_str();
        c.agent_path = run_.agentPath.c_str();
        c.agent_version = run_.agentVersion.c_str();
        c.validate_only = validateOnly ? 1 : 0;
        Text err;
        created.status = t_->create(&c, host.instance(), &inst_, err.text());
        created.message = err.str();
    }
    ~SelfInstance() {
        if (inst_)
            t_->destroy(inst_);
    }
    SelfInstance(const SelfInstance&) = delete;
    SelfInstance& operator=(const SelfInstance&) = delete;

    Verdict discover() {
        Text err, tag, vt, vf, ve;
        rra_discovery d{};
        d.struct_size = sizeof d;
        d.tag = *tag.text();
        d.verdict_tag = *vt.text();
        d.verdict_from_tag = *vf.text();
        d.verdict_error = *ve.text();
        Verdict v;
        v.call = {t_->discover(inst_, &d, err.text()), err.str()};
        if (v.call.ok() && d.installed)
            v.tag = tag.str();
        v.kind = d.verdict;
        v.verdictTag = vt.str();
        v.fromTag = vf.str();
        v.error = ve.str();
        v.durationMs = d.verdict_duration_ms;
        return v;
    }
    Call install(const std::string& tag, const std::string& artifact,
                 const std::optional<std::string>& fromTag) {
        Text err;
        rra_install_request r{};
        r.struct_size = sizeof r;
        r.tag = tag.c_str();
        r.artifact_path = artifact.c_str();
        r.from_tag = fromTag ? fromTag->c_str() : nullptr;
        return {t_->install(inst_, &r, err.text()), err.str()};
    }
    Call confirm(const std::string& tag) {
        Text err;
        return {t_->confirm(inst_, tag.c_str(), err.text()), err.str()};
    }
    Call rollback(const std::optional<std::string>& toTag, const std::string& failedTag) {
        Text err;
        return {
            t_->rollback(inst_, toTag ? toTag->c_str() : nullptr, failedTag.c_str(), err.text()),
            err.str()};
    }

    Call created;

  private:
    struct Text {
        std::vector<char> data = std::vector<char>(8192, '\0');
        rra_text t{};
        rra_text* text() {
            t = {data.data(), data.size()};
            return &t;
        }
        std::string str() const { return data.data(); }
    };
    const rra_deployer* t_;
    rra_instance* inst_ = nullptr;
    std::string settings_;
    AgentRun run_;
};

// True while some process holds the watchdog's lock under `installRoot`.
inline bool watchdogRunning(const std::string& installRoot) {
    int fd = ::open((installRoot + "/.watchdog.lock").c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool held = ::flock(fd, LOCK_EX | LOCK_NB) != 0;
    ::close(fd);
    return held;
}

inline bool pollUntil(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
        if (cond())
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return cond();
}

// A stand-in agent binary: answers --version with `version` and --check-config with
// `checkExit` (after printing `checkOutput`); as a daemon it does whatever `daemon` says.
inline std::string fakeAgentScript(const std::string& version, int checkExit = 0,
                                   const std::string& checkOutput = "configuration OK",
                                   const std::string& daemon = "exit 0") {
    return "#!/bin/sh\n"
           "case \"$1\" in\n"
           "  --version) echo \"raspi-release-agent " +
           version +
           "\"; exit 0 ;;\n"
           "  --check-config) echo \"" +
           checkOutput + " $2\"; exit " + std::to_string(checkExit) +
           " ;;\n"
           "esac\n" +
           daemon + "\n";
}

inline std::vector<ArchiveEntry> fakeRelease(const std::string& script) {
    return {ArchiveEntry::dir("bin"), ArchiveEntry::file("bin/raspi-release-agent", script, 0755),
            ArchiveEntry::dir("lib"), ArchiveEntry::dir("lib/raspi-release-agent"),
            ArchiveEntry::dir("lib/raspi-release-agent/plugins")};
}

}  // namespace rra::test
