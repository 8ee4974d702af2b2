// Reads the main config file and the drop-in directory, applies defaults, resolves the
// tokens, and validates everything against the contract (shared/spec/config.md). Every
// problem is reported with its file and key; nothing is thrown.
#pragma once

#include "config/config.hpp"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace rra::config {

// What the loader may read from the process: injectable so tests control it.
struct LoadEnvironment {
    std::string binaryPath;  // absolute path of the running agent (default plugin_dir)
    std::function<std::optional<std::string>(const std::string&)> getenv;  // default ::getenv
    std::function<std::string()> hostname;                                 // default gethostname

    static LoadEnvironment fromProcess(const std::string& binaryPath);
};

struct LoadResult {
    std::optional<Config> config;       // set when there is no error
    std::vector<std::string> errors;    // "FILE: KEY: problem", one per problem
    std::vector<std::string> warnings;  // unknown keys and the like
    bool ok() const { return errors.empty() && config.has_value(); }
};

LoadResult loadConfig(const std::string& path, const LoadEnvironment& env);

// What changed between two valid configs (reload).
struct ConfigDiff {
    std::vector<std::string> added, removed, changed;  // component names
    bool proxyChanged = false;     // url, token, ca, heartbeat, reconnect, queue
    bool githubChanged = false;    // any github.* or the token
    bool agentChanged = false;     // any agent.*
    bool inventoryNeeded = false;  // set of components or any repo changed
    bool empty() const {
        return added.empty() && removed.empty() && changed.empty() && !proxyChanged &&
               !githubChanged && !agentChanged;
    }
    std::string describe() const;  // one line for the log
};

ConfigDiff diffConfigs(const Config& before, const Config& after);

}  // namespace rra::config
