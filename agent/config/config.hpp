// The agent's configuration as validated data (contract: shared/spec/config.md).
// Produced by config_loader; everything downstream reads these structs, never JSON.
#pragma once

#include "common/secret.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace rra::config {

struct AgentSection {
    std::string id;         // default: host name
    std::string arch;       // default: the Debian architecture the agent was built for
    std::string pluginDir;  // default: <binary>/../lib/raspi-release-agent/plugins
    std::string workDir = "/var/cache/raspi-release-agent";
    std::string componentsDir = "/etc/raspi-release-agent/components.d";
    std::string runtimeDir;  // default: $RUNTIME_DIRECTORY or /run/raspi-release-agent
    int maxParallelDownloads = 2;
    std::string logLevel = "information";
    double applyJitterS = 0;
};

struct ProxySection {
    std::string url;          // ws:// or wss://
    Secret token;             // resolved from token_file / $CREDENTIALS_DIRECTORY / RRA_PROXY_TOKEN
    std::string tokenSource;  // where the token came from (a path or variable name), for logs
    std::optional<std::string> caFile;
    int heartbeatS = 30;
    int reconnectInitialMs = 1000;
    int reconnectMaxMs = 300000;
    int telemetryQueue = 1000;
};

struct GithubSection {
    std::string apiUrl = "https://api.github.com";
    Secret token;  // resolved from token_file / $CREDENTIALS_DIRECTORY / GITHUB_TOKEN
    std::string tokenSource;
    std::optional<std::string> caFile;
    int backoffInitialS = 60;
    int backoffMaxS = 3600;
    int maxAttempts = 8;
};

struct ComponentConfig {
    std::string name;
    std::string type;
    std::string repo;   // owner/name
    std::string asset;  // pattern with {tag}, {version}, {arch}
    bool allowPrerelease = false;
    int verifyTimeoutS = 60;
    std::optional<std::string> pin;
    std::string settingsJson = "{}";  // the "settings" object, serialized
    std::string origin;               // "agent.json: components[2]" or "components.d/50-web.json"

    // Changes to these make the component "changed" on reload (contract: Reload).
    bool sameIdentity(const ComponentConfig& o) const {
        return repo == o.repo && type == o.type && asset == o.asset;
    }
    bool operator==(const ComponentConfig& o) const {
        return name == o.name && type == o.type && repo == o.repo && asset == o.asset &&
               allowPrerelease == o.allowPrerelease && verifyTimeoutS == o.verifyTimeoutS &&
               pin == o.pin && settingsJson == o.settingsJson;
    }
    bool operator!=(const ComponentConfig& o) const { return !(*this == o); }
};

struct Config {
    std::string path;  // the main file
    AgentSection agent;
    ProxySection proxy;
    GithubSection github;
    std::vector<ComponentConfig> components;

    const ComponentConfig* find(const std::string& name) const {
        for (const auto& c : components)
            if (c.name == name)
                return &c;
        return nullptr;
    }
};

}  // namespace rra::config
