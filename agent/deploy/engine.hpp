// The deployment engine: per component, one release in flight at a time, newest
// announced wins, rollback and fallback on failure, in-flight markers across crashes
// (issue 5, rules 1-12). Talks to the outside only through Fetcher, TelemetrySink and
// plugins::Deployer, so it runs in tests without network or plugins.
#pragma once

#include "common/clock.hpp"
#include "common/events.hpp"
#include "common/random.hpp"
#include "config/config.hpp"
#include "deploy/ports.hpp"
#include "plugins/deployer.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace rra::deploy {

struct EngineOptions {
    int maxParallelDownloads = 2;  // agent.max_parallel_downloads
    double applyJitterS = 0;       // agent.apply_jitter_s
    std::string runtimeDir;        // agent.runtime_dir; empty disables in-flight markers
    Millis discoverDeadline{60'000};
    Millis installDeadline{600'000};
    Millis rollbackDeadline{600'000};
    Millis confirmDeadline{60'000};
};

using ManagedComponent = std::pair<config::ComponentConfig, std::shared_ptr<plugins::Deployer>>;

class Engine {
  public:
    // The references must outlive the engine (worker threads use them until joined).
    Engine(EngineOptions options, Fetcher& fetcher, TelemetrySink& telemetry, Clock& clock,
           Random& random);
    // Shuts down (if not done) and joins every worker.
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    // The managed set (startup and config reload, rule 9). New components are discovered
    // on their worker (rules 1, 11); removed ones finish an in-flight apply and are then
    // forgotten; a changed one uses its new settings/deployer from its next deployment. A
    // changed repo forgets announced and candidate tags; a changed type/asset forgets the
    // failed tags (their failure may have been the old asset's) and makes the announced
    // ones candidates again; both are discovered again. Failed tags are otherwise kept per
    // (name, repo) for the process lifetime, also across remove and re-add.
    void setComponents(std::vector<ManagedComponent> components);

    // One `sync` or one `release` (a batch of one). Non-SemVer tags, pre-releases (unless
    // allowed), other repos and unknown components are ignored with a log line.
    void announce(const std::vector<Announcement>& batch);

    // Config reload (rule 9): max_parallel_downloads and apply_jitter_s apply from the
    // next deployment (a download in progress keeps its slot); the rest of `options` is
    // fixed at construction.
    void setOptions(const EngineOptions& options);

    // Managed components in configuration order, `current` as discovered/applied.
    std::vector<ComponentReport> inventory() const;
    // Waits until every managed component finished discovery (for hello/inventory).
    bool waitDiscovered(Millis timeout);

    // The agent is connected to the proxy: confirm applies on probation (self-update).
    void onHealthy();

    // Rule 10: cancels downloads and jitter waits, raises every deployer's cancel flag and
    // waits up to `budget` for the workers. True when every worker has finished. An
    // install/verify cut short leaves an "interrupted" marker for the next run.
    bool shutdown(Millis budget);

    struct ComponentStatus {
        std::string name;
        std::optional<std::string> current;
        std::optional<std::string> inFlight;
        // discovering, idle, waiting (jitter), download, install, verify, rollback,
        // confirm, awaiting_health, pending_restart, degraded, stopped
        std::string phase;
        std::vector<std::string> candidates, failed;  // newest first
        bool degraded = false;
    };
    std::vector<ComponentStatus> status() const;
    // Called (from any thread, without engine locks held) after each state change. Once
    // setStatusListener returns, the previous listener is not running and never runs again
    // (its owner may go away even while the engine lives on, abandoned at shutdown).
    void setStatusListener(std::function<void()> listener);

    // True once no component has work running (tests, bench).
    bool waitIdle(Millis timeout);

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace rra::deploy
