#include "app/config_check.hpp"

#include "common/version.hpp"

#include <memory>
#include <mutex>

namespace rra::app {

std::string keyPath(const std::string& origin, const std::string& key) {
    return plugins::componentKeyPath(origin, key);
}

plugins::InstanceContext instanceContext(const config::Config& cfg,
                                         const config::ComponentConfig& c,
                                         const std::string& agentPath, bool validateOnly) {
    plugins::InstanceContext ctx;
    ctx.component = c.name;
    ctx.repo = c.repo;
    ctx.arch = cfg.agent.arch;
    ctx.settingsJson = c.settingsJson;
    ctx.stateDir = cfg.agent.workDir + "/state/" + c.name;
    ctx.runtimeDir = cfg.agent.runtimeDir;
    ctx.configPath = cfg.path;
    ctx.agentPath = agentPath;
    ctx.agentVersion = kAgentVersion;
    ctx.validateOnly = validateOnly;
    ctx.origin = c.origin;
    return ctx;
}

std::vector<std::string> checkComponents(const config::Config& cfg,
                                         const plugins::LoadReport& loaded,
                                         const std::string& agentPath,
                                         std::vector<std::string>* warnings) {
    std::vector<std::string> errors;
    std::string available;
    for (const auto& [name, p] : loaded.byName)
        available += (available.empty() ? "" : ", ") + name;
    if (available.empty())
        available = "none";
    for (const auto& c : cfg.components) {
        auto it = loaded.byName.find(c.type);
        if (it == loaded.byName.end()) {
            errors.push_back(keyPath(c.origin, "type") + ": no loadable plugin for type '" +
                             c.type + "' in " + cfg.agent.pluginDir + " (available: " + available +
                             ")");
            continue;
        }
        auto ctx = instanceContext(cfg, c, agentPath, true);
        // Shared with the hook thread, which may outlive this call if create() hangs.
        struct Collected {
            std::mutex m;
            std::vector<std::string> lines;
        };
        auto collected = std::make_shared<Collected>();
        if (warnings)
            ctx.onLog = [collected](rra_log_level level, const std::string& text) {
                if (level > RRA_LOG_WARNING) {
                    plugins::logAtLevel(level, text);
                    return;
                }
                std::lock_guard<std::mutex> lk(collected->m);
                collected->lines.push_back(text);
            };
        auto inst = plugins::DeployerInstance::create(it->second, ctx);
        if (warnings) {
            std::lock_guard<std::mutex> lk(collected->m);
            warnings->insert(warnings->end(), collected->lines.begin(), collected->lines.end());
        }
        if (inst)
            continue;
        // The plugin names keys relative to the component ("settings.keep: ..."); anchor
        // each problem at the component's place in its file.
        std::string msg = inst.error().message();
        std::string prefix = "component '" + c.name + "' (type '" + c.type + "'): ";
        if (msg.rfind(prefix, 0) == 0)
            msg = msg.substr(prefix.size());
        size_t start = 0;
        while (start <= msg.size()) {
            size_t end = msg.find("; ", start);
            std::string part =
                msg.substr(start, end == std::string::npos ? std::string::npos : end - start);
            if (!part.empty()) {
                if (part.rfind("settings", 0) == 0) {
                    auto colon = part.find(": ");
                    std::string key = part.substr(0, colon);
                    std::string rest =
                        colon == std::string::npos ? "invalid" : part.substr(colon + 2);
                    errors.push_back(keyPath(c.origin, key) + ": " + rest);
                } else {
                    errors.push_back(keyPath(c.origin, "settings") + ": " + part);
                }
            }
            if (end == std::string::npos)
                break;
            start = end + 2;
        }
    }
    return errors;
}

}  // namespace rra::app
