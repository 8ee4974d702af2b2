#include "app/agent_runtime.hpp"

#include "app/adapters.hpp"
#include "app/config_check.hpp"
#include "app/logging.hpp"
#include "app/status_file.hpp"
#include "common/version.hpp"
#include "deploy/engine.hpp"
#include "github/github_client.hpp"
#include "proxy/announcement_filter.hpp"
#include "proxy/proxy_client.hpp"

#include <Poco/File.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Stringifier.h>
#include <Poco/Logger.h>

#include <unistd.h>

#include <algorithm>
#include <sstream>

namespace rra::app {
namespace {

Poco::Logger& log() {
    return Poco::Logger::get("agent");
}

deploy::EngineOptions engineOptions(const config::Config& c) {
    deploy::EngineOptions o;
    o.maxParallelDownloads = c.agent.maxParallelDownloads;
    o.applyJitterS = c.agent.applyJitterS;
    o.runtimeDir = c.agent.runtimeDir;
    return o;
}

const char* proxyStateName(proxy::ProxyClient::State s) {
    switch (s) {
        case proxy::ProxyClient::State::kDisconnected:
            return "disconnected";
        case proxy::ProxyClient::State::kConnecting:
            return "connecting";
        case proxy::ProxyClient::State::kConnected:
            return "connected";
        case proxy::ProxyClient::State::kUnauthorized:
            return "unauthorized";
    }
    return "?";
}

// Objects left to the process exit stay reachable from here, so LeakSanitizer (Asan
// builds) does not report the deliberate hand-off as a leak.
std::vector<const void*>& abandoned() {
    static auto* objects = new std::vector<const void*>();
    return *objects;
}

}  // namespace

Validation validateConfig(const std::string& path, const std::string& agentPath) {
    Validation v;
    auto loaded = config::loadConfig(path, config::LoadEnvironment::fromProcess(agentPath));
    v.warnings = loaded.warnings;
    if (!loaded.ok()) {
        v.errors = loaded.errors;
        return v;
    }
    ValidatedConfig vc;
    vc.config = std::move(*loaded.config);
    vc.plugins = plugins::loadPluginDir(vc.config.agent.pluginDir);
    for (const auto& e : vc.plugins.errors)
        v.warnings.push_back(e.message());
    v.errors = checkComponents(vc.config, vc.plugins, agentPath, &v.warnings);
    if (!v.errors.empty())
        return v;
    vc.warnings = v.warnings;
    v.valid = std::move(vc);
    return v;
}

AgentRuntime::AgentRuntime(std::string agentPath) : agentPath_(std::move(agentPath)) {}

AgentRuntime::~AgentRuntime() {
    stop(Millis(8000));
}

Expected<std::string> AgentRuntime::fetchForPlugin(const std::string& component,
                                                   const std::string& tag) {
    config::ComponentConfig c;
    {
        std::lock_guard<std::mutex> lk(mutex_);
        const auto* found = current_.config.find(component);
        if (!found)
            return fail(ErrorCode::kNotFound, "component '" + component + "' is not managed");
        c = *found;
    }
    auto a = fetcher_->fetch(c, tag, shutdown_);
    if (!a)
        return fail(a.error());
    return a->path;
}

std::vector<std::pair<config::ComponentConfig, std::shared_ptr<plugins::Deployer>>>
AgentRuntime::instancesFor(const config::Config& cfg, const config::ConfigDiff* diff) {
    // Removed components are no longer managed; nothing is uninstalled.
    for (auto it = instances_.begin(); it != instances_.end();) {
        if (!cfg.find(it->first))
            it = instances_.erase(it);
        else
            ++it;
    }
    std::vector<std::pair<config::ComponentConfig, std::shared_ptr<plugins::Deployer>>> out;
    for (const auto& c : cfg.components) {
        bool changed = diff && std::find(diff->changed.begin(), diff->changed.end(), c.name) !=
                                   diff->changed.end();
        if (!instances_.count(c.name) || changed) {
            auto plugin = current_.plugins.byName.at(c.type);
            std::string name = c.name;
            auto inst = plugins::DeployerInstance::create(
                plugin, instanceContext(cfg, c, agentPath_, false),
                [this, name](const std::string& tag) { return fetchForPlugin(name, tag); });
            if (!inst) {
                // Validation created the same instance a moment ago; a failure now is the
                // system's (disk, permissions): the other components carry on.
                log().error(inst.error().message() + "; component not managed");
                instances_.erase(c.name);
                continue;
            }
            instances_[c.name] = *inst;
        }
        out.emplace_back(c, instances_[c.name]);
    }
    return out;
}

Status AgentRuntime::start(ValidatedConfig cfg) {
    std::lock_guard<std::mutex> lk(mutex_);
    current_ = std::move(cfg);
    const auto& c = current_.config;
    // A directory the agent cannot create is the operator's to fix in the config: exit 78.
    const std::pair<const char*, std::string> dirs[] = {{"agent.work_dir", c.agent.workDir},
                                                        {"agent.runtime_dir", c.agent.runtimeDir}};
    for (const auto& [key, dir] : dirs) {
        try {
            Poco::File(dir).createDirectories();
        } catch (const Poco::Exception& e) {
            return fail(ErrorCode::kConfig,
                        c.path + ": " + key + ": cannot create '" + dir + "': " + e.displayText());
        }
    }
    for (const auto& [name, p] : current_.plugins.byName)
        log().information("plugin '" + name + "' loaded from " + p->path() + " (version " +
                          (p->table().plugin_version ? p->table().plugin_version : "?") + ")");
    log().information("agent '" + c.agent.id + "' (" + c.agent.arch + ") manages " +
                      std::to_string(c.components.size()) + " component(s); proxy " + c.proxy.url +
                      "; GitHub " + c.github.apiUrl +
                      (c.github.token.empty() ? " without a token"
                                              : " with the token from " + c.github.tokenSource));

    github_ = std::make_unique<github::GithubClient>(c.github, c.agent.workDir + "/downloads",
                                                     SystemClock::instance(), random_);
    fetcher_ = std::make_unique<GithubFetcher>(*github_, c.agent.arch);

    proxy::ProxyClient::Callbacks cb;
    cb.inventory = [this] {
        // hello must carry what discovery found, so wait (bounded) for it.
        if (!engine_->waitDiscovered(Millis(30000)))
            log().warning("discovery still running; hello reports what is known so far");
        return engine_->inventory();
    };
    cb.announce = [this](std::vector<Announcement> batch, bool fromSync) {
        std::vector<config::ComponentConfig> components;
        {
            std::lock_guard<std::mutex> l(mutex_);
            components = current_.config.components;
        }
        auto filtered = proxy::filterAnnouncements(batch, components);
        for (const auto& w : filtered.warnings)
            log().warning(w);
        log().debug(std::string(fromSync ? "sync" : "release") + ": " +
                    std::to_string(filtered.accepted.size()) + " of " +
                    std::to_string(batch.size()) + " announcement(s) accepted");
        if (!filtered.accepted.empty())
            engine_->announce(filtered.accepted);
    };
    cb.connected = [this] { engine_->onHealthy(); };
    proxy_ = std::make_unique<proxy::ProxyClient>(c.proxy, c.agent.id, c.agent.arch, kAgentVersion,
                                                  cb, SystemClock::instance(), random_);
    telemetry_ = std::make_unique<ProxyTelemetry>(*proxy_);
    engine_ = std::make_unique<deploy::Engine>(engineOptions(c), *fetcher_, *telemetry_,
                                               SystemClock::instance(), random_);
    status_ = std::make_unique<StatusFile>(c.agent.runtimeDir + "/status.json",
                                           [this] { return renderStatus(); });
    engine_->setStatusListener([this] {
        if (status_)
            status_->markDirty();
    });
    engine_->setComponents(instancesFor(c, nullptr));
    proxy_->start();
    return {};
}

bool AgentRuntime::reload() {
    std::string path;
    {
        std::lock_guard<std::mutex> lk(mutex_);
        path = current_.config.path;
    }
    log().information("reloading configuration from " + path);
    auto v = validateConfig(path, agentPath_);
    for (const auto& w : v.warnings)
        log().warning(w);
    if (!v.valid) {
        for (const auto& e : v.errors)
            log().error("reload rejected: " + e);
        log().error("reload rejected: keeping the running configuration (" +
                    std::to_string(v.errors.size()) + " problem(s))");
        return false;
    }
    std::unique_lock<std::mutex> lk(mutex_);
    auto diff = config::diffConfigs(current_.config, v.valid->config);
    current_ = std::move(*v.valid);
    const auto& c = current_.config;
    if (diff.agentChanged)
        setLogLevel(c.agent.logLevel);
    log().information("configuration reloaded: " + diff.describe());
    if (diff.agentChanged && !diff.empty())
        log().information("agent.work_dir and runtime_dir apply after a restart");
    if (!engine_)
        return true;  // not started (tests)
    github_->reconfigure(c.github);
    fetcher_->setArch(c.agent.arch);
    auto managed = instancesFor(c, &diff);
    bool inventory = diff.inventoryNeeded;
    auto proxyCfg = c.proxy;
    const std::string agentId = c.agent.id;
    const std::string arch = c.agent.arch;
    auto options = engineOptions(c);
    lk.unlock();
    engine_->setOptions(options);
    engine_->setComponents(std::move(managed));
    // Every reload: a new agent.id reconnects (it is in the URL), a new arch is reported.
    proxy_->reconfigure(proxyCfg, agentId, arch);
    // Not only when the proxy settings are unchanged: reconfigure reconnects (and says
    // hello) only for some of them. After a reconnect this is redundant but harmless.
    if (inventory)
        proxy_->sendInventory();
    if (status_)
        status_->markDirty();
    return true;
}

void AgentRuntime::stop(Millis budget) {
    // The daemon stops, then the destructor stops again: the budget is spent once
    // (rule 10: exit within 10 s).
    if (stopped_.exchange(true))
        return;
    shutdown_.cancel();
    auto start = std::chrono::steady_clock::now();
    bool engineStopped = true;
    if (engine_) {
        engineStopped = engine_->shutdown(budget - Millis(1500));
        if (!engineStopped)
            log().warning("some deployments did not stop in time");
        // A worker left running must not call into this object once it is gone.
        engine_->setStatusListener({});
    }
    auto left =
        budget - std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - start);
    if (!plugins::CriticalSections::waitAllClosed(std::max(left - Millis(1000), Millis(0))))
        log().error("stopping with a plugin critical section still open");
    if (proxy_)
        proxy_->stop();
    if (status_)
        status_->stop();
    std::lock_guard<std::mutex> lk(mutex_);
    if (!engineStopped) {
        // A worker may still use these: leave them to the process exit.
        abandoned().push_back(engine_.release());
        abandoned().push_back(telemetry_.release());
        abandoned().push_back(proxy_.release());
        abandoned().push_back(fetcher_.release());
        abandoned().push_back(github_.release());
    }
    engine_.reset();
    telemetry_.reset();
    proxy_.reset();
    fetcher_.reset();
    github_.reset();
    status_.reset();
    instances_.clear();
}

std::string AgentRuntime::renderStatus() {
    Poco::JSON::Object doc;
    doc.set("agent_version", std::string(kAgentVersion));
    doc.set("pid", static_cast<int>(::getpid()));
    {
        std::lock_guard<std::mutex> lk(mutex_);
        doc.set("agent_id", current_.config.agent.id);
    }
    if (proxy_) {
        doc.set("proxy", std::string(proxyStateName(proxy_->state())));
        doc.set("telemetry_pending", static_cast<int>(proxy_->pendingTelemetry()));
    }
    if (github_) {
        auto q = github_->quota();
        Poco::JSON::Object gh;
        if (q.limit)
            gh.set("limit", *q.limit);
        if (q.remaining)
            gh.set("remaining", *q.remaining);
        if (q.resetEpoch)
            gh.set("reset_epoch", *q.resetEpoch);
        doc.set("github_quota", gh);
    }
    Poco::JSON::Array comps;
    if (engine_) {
        for (const auto& s : engine_->status()) {
            Poco::JSON::Object o;
            o.set("name", s.name);
            o.set("current", s.current ? Poco::Dynamic::Var(*s.current) : Poco::Dynamic::Var());
            o.set("in_flight", s.inFlight ? Poco::Dynamic::Var(*s.inFlight) : Poco::Dynamic::Var());
            o.set("phase", s.phase);
            Poco::JSON::Array cand, failed;
            for (const auto& t : s.candidates)
                cand.add(t);
            for (const auto& t : s.failed)
                failed.add(t);
            o.set("candidates", cand);
            o.set("failed", failed);
            o.set("degraded", s.degraded);
            comps.add(o);
        }
    }
    doc.set("components", comps);
    std::ostringstream os;
    doc.stringify(os, 2);
    return os.str();
}

}  // namespace rra::app
