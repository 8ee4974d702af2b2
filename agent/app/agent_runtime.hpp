// The running agent: owns the validated config, the loaded plugins, one deployer instance
// per component, and (wired here) the deployment engine, the GitHub client and the proxy
// connection. Reload swaps the config as a whole or keeps the old one.
#pragma once

#include "common/error.hpp"
#include "config/config.hpp"
#include "config/config_loader.hpp"
#include "plugins/deployer_instance.hpp"
#include "plugins/plugin_loader.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace rra::app {

// A config that passed every check, with the plugins that serve it.
struct ValidatedConfig {
    config::Config config;
    plugins::LoadReport plugins;
    std::vector<std::string> warnings;
};

// Loads and checks `path` completely (file, drop-ins, tokens, plugins, settings).
// On failure: every problem, each naming file and key.
struct Validation {
    std::optional<ValidatedConfig> valid;
    std::vector<std::string> errors;
    std::vector<std::string> warnings;
};
Validation validateConfig(const std::string& path, const std::string& agentPath,
                          const plugins::LoadReport* reusePlugins = nullptr);

class AgentRuntime {
  public:
    explicit AgentRuntime(std::string agentPath);
    ~AgentRuntime();

    // Creates runtime/work directories and deployer instances, discovers what is
    // installed and starts the connections.
    Status start(ValidatedConfig cfg);
    // Re-reads the config path; true when the new config is in force.
    bool reload();
    // Cancels work and stops within `budget`.
    void stop(Millis budget);

    const config::Config& config() const { return current_.config; }

  private:
    Status applyComponents(const config::ConfigDiff* diff);

    std::string agentPath_;
    std::mutex mutex_;
    ValidatedConfig current_;
    std::map<std::string, std::shared_ptr<plugins::DeployerInstance>> instances_;
};

}  // namespace rra::app
