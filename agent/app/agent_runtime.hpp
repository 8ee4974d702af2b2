// The running agent: owns the validated config, the loaded plugins, one deployer instance
// per component, the deployment engine, the GitHub client and the proxy connection, and
// wires them together. Reload swaps the config as a whole or keeps the old one.
#pragma once

#include "common/clock.hpp"
#include "common/error.hpp"
#include "common/random.hpp"
#include "config/config.hpp"
#include "config/config_loader.hpp"
#include "plugins/deployer_instance.hpp"
#include "plugins/plugin_loader.hpp"

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace rra::github {
class GithubClient;
}
namespace rra::proxy {
class ProxyClient;
}
namespace rra::deploy {
class Engine;
}

namespace rra::app {

class GithubFetcher;
class ProxyTelemetry;
class StatusFile;

// A config that passed every check, with the plugins that serve it.
struct ValidatedConfig {
    config::Config config;
    plugins::LoadReport plugins;
    std::vector<std::string> warnings;
};

// Loads and checks `path` completely (file, drop-ins, tokens, plugins, settings).
struct Validation {
    std::optional<ValidatedConfig> valid;
    std::vector<std::string> errors;  // each names file and key
    std::vector<std::string> warnings;
};
Validation validateConfig(const std::string& path, const std::string& agentPath);

class AgentRuntime {
  public:
    explicit AgentRuntime(std::string agentPath);
    ~AgentRuntime();

    // Creates runtime/work directories and deployer instances, starts the engine (which
    // discovers what is installed) and the proxy connection.
    Status start(ValidatedConfig cfg);
    // Re-reads the config path; true when the new config is in force.
    bool reload();
    // Cancels work and stops within `budget`. Only the first call does anything.
    void stop(Millis budget);

  private:
    std::vector<std::pair<config::ComponentConfig, std::shared_ptr<plugins::Deployer>>>
    instancesFor(const config::Config& cfg, const config::ConfigDiff* diff);
    Expected<std::string> fetchForPlugin(const std::string& component, const std::string& tag);
    std::string renderStatus();

    std::string agentPath_;
    std::mutex mutex_;  // guards current_ and instances_
    ValidatedConfig current_;
    std::map<std::string, std::shared_ptr<plugins::DeployerInstance>> instances_;
    CancelToken shutdown_;
    std::atomic<bool> stopped_{false};

    SystemRandom random_;
    std::unique_ptr<github::GithubClient> github_;
    std::unique_ptr<GithubFetcher> fetcher_;
    std::unique_ptr<proxy::ProxyClient> proxy_;
    std::unique_ptr<ProxyTelemetry> telemetry_;
    std::unique_ptr<deploy::Engine> engine_;
    std::unique_ptr<StatusFile> status_;
};

}  // namespace rra::app
