#include "plugins/deployer_instance.hpp"

#include <Poco/File.h>
#include <Poco/Logger.h>

#include <array>
#include <condition_variable>
#include <cstddef>
#include <cstring>
#include <system_error>
#include <thread>
#include <vector>

namespace rra::plugins {

namespace {

std::mutex gCriticalMutex;
std::condition_variable gCriticalCv;
int gCriticalOpen = 0;
std::atomic<int64_t> gGraceMs{5000};

constexpr size_t kTextCapacity = 4096;

// A caller-owned rra_text buffer.
struct TextBuf {
    std::vector<char> data = std::vector<char>(kTextCapacity, '\0');
    rra_text text() { return rra_text{data.data(), data.size()}; }
    std::string str() const { return std::string(data.data(), strnlen(data.data(), data.size())); }
};

}  // namespace

std::string componentKeyPath(const std::string& origin, const std::string& key) {
    // Main-file components carry "FILE: components[i]"; drop-ins carry just the file.
    if (origin.rfind(": ") != std::string::npos)
        return origin + "." + key;
    return origin + ": " + key;
}

std::optional<std::string> anchorSettingsMessage(const std::string& origin,
                                                 const std::string& component,
                                                 const std::string& message) {
    std::string m = message;
    const std::string named = "component '" + component + "': ";
    if (m.rfind(named, 0) == 0)
        m.erase(0, named.size());
    const std::string settings = "settings";
    if (m.rfind(settings, 0) != 0 || m.size() == settings.size() ||
        std::string(".:[").find(m[settings.size()]) == std::string::npos)
        return std::nullopt;
    const size_t colon = m.find(": ");
    if (colon == std::string::npos)
        return std::nullopt;
    return componentKeyPath(origin, m.substr(0, colon)) + m.substr(colon);
}

void CriticalSections::enter() {
    std::lock_guard<std::mutex> lk(gCriticalMutex);
    ++gCriticalOpen;
}
void CriticalSections::leave() {
    {
        std::lock_guard<std::mutex> lk(gCriticalMutex);
        if (gCriticalOpen > 0)
            --gCriticalOpen;
    }
    gCriticalCv.notify_all();
}
int CriticalSections::open() {
    std::lock_guard<std::mutex> lk(gCriticalMutex);
    return gCriticalOpen;
}
bool CriticalSections::waitAllClosed(Millis timeout) {
    std::unique_lock<std::mutex> lk(gCriticalMutex);
    return gCriticalCv.wait_for(lk, timeout, [] { return gCriticalOpen == 0; });
}

void DeployerInstance::setGraceAfterDeadline(Millis grace) {
    gGraceMs = grace.count();
}
Millis DeployerInstance::graceAfterDeadline() {
    return Millis(gGraceMs.load());
}

struct DeployerInstance::State {
    std::shared_ptr<LoadedPlugin> plugin;
    std::string component;
    std::string type;
    InstanceContext ctx;
    FetchAssetFn fetchAsset;
    rra_host_instance host{};
    rra_instance* instance = nullptr;

    std::mutex callMutex;  // serializes hook calls (ABI threading rule)
    std::atomic<bool> cancelAll{false};
    std::atomic<bool> callCancelled{false};
    std::atomic<int64_t> deadlineNs{0};  // steady clock, of the running call
    std::atomic<bool> degraded{false};
    std::atomic<int> criticalHeld{0};

    Poco::Logger& log() { return Poco::Logger::get("plugins"); }
};

namespace {

using StatePtr = std::shared_ptr<DeployerInstance::State>;

DeployerInstance::State* stateOf(rra_host_ctx* ctx) {
    return reinterpret_cast<DeployerInstance::State*>(ctx);
}

void svcLog(rra_host_ctx* ctx, rra_log_level level, const char* message) {
    auto* s = stateOf(ctx);
    const std::string m = message ? message : "";
    std::optional<std::string> anchored;
    if (!s->ctx.origin.empty())
        anchored = anchorSettingsMessage(s->ctx.origin, s->component, m);
    const std::string text =
        anchored ? *anchored : "component '" + s->component + "' (" + s->type + "): " + m;
    if (s->ctx.onLog)
        s->ctx.onLog(level, text);
    else
        logAtLevel(level, text);
}

void svcProgress(rra_host_ctx* ctx, int percent, const char* what) {
    auto* s = stateOf(ctx);
    Poco::Logger::get("plugins").debug("component '" + s->component + "': progress " +
                                       std::to_string(percent) + "% " + (what ? what : ""));
}

int svcIsCancelled(rra_host_ctx* ctx) {
    auto* s = stateOf(ctx);
    return (s->cancelAll.load() || s->callCancelled.load()) ? 1 : 0;
}

uint64_t svcRemainingMs(rra_host_ctx* ctx) {
    auto* s = stateOf(ctx);
    int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
    int64_t left = s->deadlineNs.load() - now;
    if (left <= 0)
        return 0;
    return static_cast<uint64_t>(left / 1000000);
}

void copyOut(rra_text* t, const std::string& s) {
    if (!t || !t->data || t->capacity == 0)
        return;
    size_t n = std::min(s.size(), t->capacity - 1);
    std::memcpy(t->data, s.data(), n);
    t->data[n] = '\0';
}

rra_status svcFetchAsset(rra_host_ctx* ctx, const char* tag, rra_text* pathOut, rra_text* error) {
    auto* s = stateOf(ctx);
    if (!s->fetchAsset) {
        copyOut(error, "this host cannot fetch assets");
        return RRA_UNSUPPORTED;
    }
    if (!tag || !*tag) {
        copyOut(error, "fetch_asset: no tag given");
        return RRA_ERROR;
    }
    try {
        auto r = s->fetchAsset(tag);
        if (!r) {
            copyOut(error, r.error().message());
            return r.error().code() == ErrorCode::kCancelled ? RRA_CANCELLED : RRA_ERROR;
        }
        copyOut(pathOut, *r);
        return RRA_OK;
    } catch (const std::exception& e) {
        copyOut(error, e.what());
        return RRA_ERROR;
    }
}

void svcCriticalBegin(rra_host_ctx* ctx) {
    stateOf(ctx)->criticalHeld++;
    CriticalSections::enter();
}

void svcCriticalEnd(rra_host_ctx* ctx) {
    auto* s = stateOf(ctx);
    if (s->criticalHeld.load() <= 0)
        return;  // unbalanced end: ignore
    s->criticalHeld--;
    CriticalSections::leave();
}

struct CallOutcome {
    std::mutex m;
    std::condition_variable cv;
    bool finished = false;
    rra_status status = RRA_ERROR;
    std::string message;
};

// Runs `hook` on its own thread so a hook that never returns cannot take the agent with
// it: after the deadline the cancellation flag goes up, after the grace period the
// instance is retired (degraded) and the thread abandoned with its own reference.
template <typename Hook>
HookResult runHook(const StatePtr& s, const char* name, Millis deadline, Hook hook) {
    HookResult res;
    if (s->degraded.load()) {
        res.status = RRA_ERROR;
        res.message = "deployer '" + s->type + "' of component '" + s->component +
                      "' is degraded (an earlier hook never returned); not called";
        res.timedOut = true;
        return res;
    }
    std::lock_guard<std::mutex> serialize(s->callMutex);
    auto start = std::chrono::steady_clock::now();
    s->deadlineNs = (start + deadline).time_since_epoch().count();
    s->callCancelled = false;
    auto outcome = std::make_shared<CallOutcome>();
    try {
        std::thread([s, outcome, hook]() mutable {
            TextBuf err;
            rra_text t = err.text();
            rra_status st = hook(t);
            {
                std::lock_guard<std::mutex> lk(outcome->m);
                outcome->status = st;
                outcome->message = err.str();
                outcome->finished = true;
            }
            outcome->cv.notify_all();
        }).detach();
    } catch (const std::system_error& e) {
        // Out of threads: the hook never ran; a failed call, not a crash of the agent.
        res.status = RRA_ERROR;
        res.message = std::string(name) + ": cannot start a thread for the call: " + e.what();
        return res;
    }

    std::unique_lock<std::mutex> lk(outcome->m);
    if (!outcome->cv.wait_for(lk, deadline, [&] { return outcome->finished; })) {
        s->callCancelled = true;
        s->log().warning("component '" + s->component + "': " + name + " passed its deadline of " +
                         std::to_string(deadline.count()) + " ms; cancelling");
        if (!outcome->cv.wait_for(lk, DeployerInstance::graceAfterDeadline(),
                                  [&] { return outcome->finished; })) {
            s->degraded = true;
            s->log().error("component '" + s->component + "': " + name +
                           " did not return after cancellation; deployer '" + s->type +
                           "' marked degraded and never called again");
            res.status = RRA_ERROR;
            res.timedOut = true;
            res.message = std::string(name) + " did not return within " +
                          std::to_string(deadline.count()) + " ms";
            return res;
        }
    }
    res.status = outcome->status;
    res.message = outcome->message;
    if (res.status != RRA_OK && res.message.empty())
        res.message = std::string(name) + " failed with status " + std::to_string(res.status);
    if (s->callCancelled.load() && res.status != RRA_OK &&
        res.message.find("deadline") == std::string::npos)
        res.message += " (deadline of " + std::to_string(deadline.count()) + " ms passed)";
    return res;
}

}  // namespace

DeployerInstance::DeployerInstance(std::shared_ptr<State> s) : s_(std::move(s)) {}

DeployerInstance::~DeployerInstance() {
    // An abandoned (degraded) instance may still be inside the plugin: leak it rather
    // than free memory a running hook uses.
    if (!s_ || s_->degraded.load() || !s_->instance)
        return;
    std::lock_guard<std::mutex> lk(s_->callMutex);
    s_->plugin->table().destroy(s_->instance);
    s_->instance = nullptr;
}

Expected<std::shared_ptr<DeployerInstance>> DeployerInstance::create(
    std::shared_ptr<LoadedPlugin> plugin, const InstanceContext& ctx, FetchAssetFn fetchAsset) {
    auto s = std::make_shared<State>();
    s->plugin = plugin;
    s->component = ctx.component;
    s->type = plugin->name();
    s->ctx = ctx;
    s->fetchAsset = std::move(fetchAsset);
    s->host.struct_size = sizeof(rra_host_instance);
    s->host.abi_major = RRA_ABI_MAJOR;
    s->host.abi_minor = RRA_ABI_MINOR;
    s->host.ctx = reinterpret_cast<rra_host_ctx*>(s.get());
    s->host.log = &svcLog;
    s->host.progress = &svcProgress;
    s->host.is_cancelled = &svcIsCancelled;
    s->host.remaining_ms = &svcRemainingMs;
    s->host.fetch_asset = &svcFetchAsset;
    s->host.critical_begin = &svcCriticalBegin;
    s->host.critical_end = &svcCriticalEnd;

    std::string where = "component '" + ctx.component + "' (type '" + s->type + "')";
    if (!ctx.validateOnly && !ctx.stateDir.empty()) {
        try {
            Poco::File(ctx.stateDir).createDirectories();
        } catch (const Poco::Exception& e) {
            return fail(ErrorCode::kIo,
                        where + ": state directory '" + ctx.stateDir + "': " + e.displayText());
        }
    }

    auto config = std::make_shared<rra_instance_config>();
    config->struct_size = sizeof(rra_instance_config);
    config->component = s->ctx.component.c_str();
    config->repo = s->ctx.repo.c_str();
    config->arch = s->ctx.arch.c_str();
    config->settings_json = s->ctx.settingsJson.c_str();
    config->state_dir = s->ctx.stateDir.c_str();
    config->runtime_dir = s->ctx.runtimeDir.c_str();
    config->config_path = s->ctx.configPath.c_str();
    config->agent_path = s->ctx.agentPath.c_str();
    config->agent_version = s->ctx.agentVersion.c_str();
    config->validate_only = ctx.validateOnly ? 1 : 0;

    auto created = std::make_shared<rra_instance*>(nullptr);
    State* raw = s.get();
    HookResult r = runHook(s, "create", Millis(30000), [raw, config, created](rra_text& err) {
        return raw->plugin->table().create(config.get(), &raw->host, created.get(), &err);
    });
    if (!r.ok())
        return fail(r.status == RRA_INVALID_SETTINGS ? ErrorCode::kConfig : ErrorCode::kGeneric,
                    where + ": " + r.message);
    if (!*created)
        return fail(ErrorCode::kGeneric, where + ": create returned no instance");
    s->instance = *created;
    return std::shared_ptr<DeployerInstance>(new DeployerInstance(std::move(s)));
}

const std::string& DeployerInstance::component() const {
    return s_->component;
}
const std::string& DeployerInstance::type() const {
    return s_->type;
}

Expected<Discovery> DeployerInstance::discover(Millis deadline) {
    auto out = std::make_shared<rra_discovery>();
    auto bufs = std::make_shared<std::array<TextBuf, 4>>();
    out->struct_size = sizeof(rra_discovery);
    out->tag = (*bufs)[0].text();
    out->verdict_tag = (*bufs)[1].text();
    out->verdict_from_tag = (*bufs)[2].text();
    out->verdict_error = (*bufs)[3].text();
    State* raw = s_.get();
    HookResult r = runHook(s_, "discover", deadline, [raw, out, bufs](rra_text& err) {
        return raw->plugin->table().discover(raw->instance, out.get(), &err);
    });
    if (!r.ok())
        return fail(ErrorCode::kGeneric,
                    "component '" + s_->component + "': discover: " + r.message);
    Discovery d;
    if (out->installed) {
        std::string tag = (*bufs)[0].str();
        if (tag.empty())
            return fail(ErrorCode::kGeneric, "component '" + s_->component +
                                                 "': discover: reported installed without a tag");
        d.tag = tag;
    }
    d.verdict = out->verdict;
    d.verdictTag = (*bufs)[1].str();
    std::string from = (*bufs)[2].str();
    if (!from.empty())
        d.verdictFromTag = from;
    d.verdictError = (*bufs)[3].str();
    d.verdictDurationMs = out->verdict_duration_ms;
    return d;
}

HookResult DeployerInstance::install(const std::string& tag, const std::string& artifactPath,
                                     const std::optional<std::string>& fromTag, bool isDowngrade,
                                     Millis deadline) {
    struct Req {
        std::string tag, path;
        std::optional<std::string> from;
        rra_install_request r{};
    };
    auto req = std::make_shared<Req>();
    req->tag = tag;
    req->path = artifactPath;
    req->from = fromTag;
    req->r.struct_size = sizeof(rra_install_request);
    req->r.tag = req->tag.c_str();
    req->r.artifact_path = req->path.c_str();
    req->r.from_tag = req->from ? req->from->c_str() : nullptr;
    req->r.is_downgrade = isDowngrade ? 1 : 0;
    State* raw = s_.get();
    return runHook(s_, "install", deadline, [raw, req](rra_text& err) {
        return raw->plugin->table().install(raw->instance, &req->r, &err);
    });
}

HookResult DeployerInstance::verify(const std::string& tag, Millis timeout) {
    if (!s_->plugin->table().verify)
        return HookResult{};  // unsupported: nothing to check
    auto t = std::make_shared<std::string>(tag);
    State* raw = s_.get();
    auto ms = static_cast<uint32_t>(std::min<int64_t>(timeout.count(), UINT32_MAX));
    return runHook(s_, "verify", timeout, [raw, t, ms](rra_text& err) {
        return raw->plugin->table().verify(raw->instance, t->c_str(), ms, &err);
    });
}

HookResult DeployerInstance::rollback(const std::optional<std::string>& toTag,
                                      const std::string& failedTag, Millis deadline) {
    if (!s_->plugin->table().rollback)
        return HookResult{RRA_UNSUPPORTED, "deployer '" + s_->type + "' cannot roll back", false};
    auto to = std::make_shared<std::optional<std::string>>(toTag);
    auto failed = std::make_shared<std::string>(failedTag);
    State* raw = s_.get();
    return runHook(s_, "rollback", deadline, [raw, to, failed](rra_text& err) {
        return raw->plugin->table().rollback(raw->instance, *to ? (*to)->c_str() : nullptr,
                                             failed->c_str(), &err);
    });
}

bool DeployerInstance::supportsConfirm() const {
    return s_->plugin->hasField(offsetof(rra_deployer, confirm) + sizeof(void*)) &&
           s_->plugin->table().confirm != nullptr;
}

HookResult DeployerInstance::confirm(const std::string& tag, Millis deadline) {
    if (!supportsConfirm())
        return HookResult{RRA_UNSUPPORTED, "deployer '" + s_->type + "' has no confirm", false};
    auto t = std::make_shared<std::string>(tag);
    State* raw = s_.get();
    return runHook(s_, "confirm", deadline, [raw, t](rra_text& err) {
        return raw->plugin->table().confirm(raw->instance, t->c_str(), &err);
    });
}

void DeployerInstance::cancel() {
    s_->cancelAll = true;
}
bool DeployerInstance::degraded() const {
    return s_->degraded.load();
}

}  // namespace rra::plugins
