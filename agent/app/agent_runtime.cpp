#include "app/agent_runtime.hpp"

#include "app/config_check.hpp"
#include "app/logging.hpp"

#include <Poco/File.h>
#include <Poco/Logger.h>

namespace rra::app {
namespace {

Poco::Logger& log() {
    return Poco::Logger::get("agent");
}

constexpr Millis kDiscoverDeadline{60000};

}  // namespace

Validation validateConfig(const std::string& path, const std::string& agentPath,
                          const plugins::LoadReport* reusePlugins) {
    Validation v;
    auto loaded = config::loadConfig(path, config::LoadEnvironment::fromProcess(agentPath));
    v.warnings = loaded.warnings;
    if (!loaded.ok()) {
        v.errors = loaded.errors;
        return v;
    }
    ValidatedConfig vc;
    vc.config = std::move(*loaded.config);
    if (reusePlugins && !reusePlugins->byName.empty()) {
        vc.plugins = *reusePlugins;
    } else {
        vc.plugins = plugins::loadPluginDir(vc.config.agent.pluginDir);
    }
    for (const auto& e : vc.plugins.errors)
        v.warnings.push_back(e.message());
    v.errors = checkComponents(vc.config, vc.plugins, agentPath);
    if (!v.errors.empty())
        return v;
    vc.warnings = v.warnings;
    v.valid = std::move(vc);
    return v;
}

AgentRuntime::AgentRuntime(std::string agentPath) : agentPath_(std::move(agentPath)) {}

AgentRuntime::~AgentRuntime() = default;

Status AgentRuntime::start(ValidatedConfig cfg) {
    std::lock_guard<std::mutex> lk(mutex_);
    current_ = std::move(cfg);
    const auto& c = current_.config;
    for (const auto& dir : {c.agent.workDir, c.agent.runtimeDir}) {
        try {
            Poco::File(dir).createDirectories();
        } catch (const Poco::Exception& e) {
            return fail(ErrorCode::kIo, "cannot create '" + dir + "': " + e.displayText());
        }
    }
    for (const auto& [name, p] : current_.plugins.byName)
        log().information("plugin '" + name + "' loaded from " + p->path() + " (version " +
                          (p->table().plugin_version ? p->table().plugin_version : "?") + ")");
    log().information("agent '" + c.agent.id + "' (" + c.agent.arch + ") manages " +
                      std::to_string(c.components.size()) + " component(s); proxy " + c.proxy.url);
    return applyComponents(nullptr);
}

Status AgentRuntime::applyComponents(const config::ConfigDiff* diff) {
    const auto& cfg = current_.config;
    // Removed components are no longer managed; nothing is uninstalled.
    for (auto it = instances_.begin(); it != instances_.end();) {
        if (!cfg.find(it->first))
            it = instances_.erase(it);
        else
            ++it;
    }
    for (const auto& c : cfg.components) {
        bool changed = diff && std::find(diff->changed.begin(), diff->changed.end(), c.name) !=
                                   diff->changed.end();
        if (instances_.count(c.name) && !changed)
            continue;
        auto plugin = current_.plugins.byName.at(c.type);
        auto inst =
            plugins::DeployerInstance::create(plugin, instanceContext(cfg, c, agentPath_, false));
        if (!inst) {
            log().error(inst.error().message());
            continue;
        }
        instances_[c.name] = *inst;
        auto found = (*inst)->discover(kDiscoverDeadline);
        if (!found)
            log().error(found.error().message());
        else
            log().information("component '" + c.name + "' (" + c.type + ", " + c.repo +
                              "): current " + found->tag.value_or("none"));
    }
    return {};
}

bool AgentRuntime::reload() {
    std::string path;
    plugins::LoadReport plugins;
    {
        std::lock_guard<std::mutex> lk(mutex_);
        path = current_.config.path;
        plugins = current_.plugins;
    }
    log().information("reloading configuration from " + path);
    auto v = validateConfig(path, agentPath_, nullptr);
    for (const auto& w : v.warnings)
        log().warning(w);
    if (!v.valid) {
        for (const auto& e : v.errors)
            log().error("reload rejected: " + e);
        log().error("reload rejected: keeping the running configuration (" +
                    std::to_string(v.errors.size()) + " problem(s))");
        return false;
    }
    std::lock_guard<std::mutex> lk(mutex_);
    auto diff = config::diffConfigs(current_.config, v.valid->config);
    current_ = std::move(*v.valid);
    if (diff.agentChanged)
        setLogLevel(current_.config.agent.logLevel);
    log().information("configuration reloaded: " + diff.describe());
    (void)applyComponents(&diff);
    return true;
}

void AgentRuntime::stop(Millis budget) {
    std::lock_guard<std::mutex> lk(mutex_);
    for (auto& [name, inst] : instances_)
        inst->cancel();
    if (!plugins::CriticalSections::waitAllClosed(budget))
        log().error("stopping with a plugin critical section still open");
    instances_.clear();
}

}  // namespace rra::app
