// C++ convenience layer over deployer.h: a plugin author writes one class and one macro
// line instead of a table of function pointers. Header-only, so nothing C++ crosses the
// ABI: every exception is caught in the trampolines below and turned into a status.
#ifndef RASPI_RELEASE_DEPLOYER_HPP
#define RASPI_RELEASE_DEPLOYER_HPP

#include <raspi_release/deployer.h>

#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <string>

namespace rra::sdk {

// Outcome of a hook: a status plus a human-readable message.
struct Result {
    rra_status status = RRA_OK;
    std::string message;

    static Result ok() { return {}; }
    static Result error(std::string m) { return {RRA_ERROR, std::move(m)}; }
    static Result invalidSettings(std::string m) { return {RRA_INVALID_SETTINGS, std::move(m)}; }
    static Result refused(std::string m) { return {RRA_REFUSED, std::move(m)}; }
    static Result cancelled(std::string m) { return {RRA_CANCELLED, std::move(m)}; }
    static Result pendingRestart(std::string m = {}) { return {RRA_PENDING_RESTART, std::move(m)}; }
    bool isOk() const { return status == RRA_OK; }
};

inline void copyText(rra_text* out, const std::string& s) {
    if (out == nullptr || out->data == nullptr || out->capacity == 0)
        return;
    size_t n = s.size() < out->capacity - 1 ? s.size() : out->capacity - 1;
    std::memcpy(out->data, s.data(), n);
    out->data[n] = '\0';
}

// The services the agent gives one instance.
class Host {
  public:
    explicit Host(const rra_host_instance* h) : h_(h) {}
    void log(rra_log_level level, const std::string& msg) const {
        if (h_ && h_->log)
            h_->log(h_->ctx, level, msg.c_str());
    }
    void info(const std::string& msg) const { log(RRA_LOG_INFO, msg); }
    void warning(const std::string& msg) const { log(RRA_LOG_WARNING, msg); }
    void error(const std::string& msg) const { log(RRA_LOG_ERROR, msg); }
    void debug(const std::string& msg) const { log(RRA_LOG_DEBUG, msg); }
    void progress(int percent, const std::string& what) const {
        if (h_ && h_->progress)
            h_->progress(h_->ctx, percent, what.c_str());
    }
    bool cancelled() const { return h_ && h_->is_cancelled && h_->is_cancelled(h_->ctx) != 0; }
    uint64_t remainingMs() const {
        return (h_ && h_->remaining_ms) ? h_->remaining_ms(h_->ctx) : UINT64_MAX;
    }
    // Path of the verified asset of another tag of this component, or an error message.
    Result fetchAsset(const std::string& tag, std::string& pathOut) const {
        if (!h_ || !h_->fetch_asset)
            return {RRA_UNSUPPORTED, "host cannot fetch assets"};
        char path[4096] = {0};
        char err[1024] = {0};
        rra_text p{path, sizeof path};
        rra_text e{err, sizeof err};
        rra_status st = h_->fetch_asset(h_->ctx, tag.c_str(), &p, &e);
        if (st == RRA_OK)
            pathOut = path;
        return {st, err};
    }
    // RAII: the agent does not exit while one is alive.
    class CriticalSection {
      public:
        explicit CriticalSection(const rra_host_instance* h) : h_(h) {
            if (h_ && h_->critical_begin)
                h_->critical_begin(h_->ctx);
        }
        ~CriticalSection() {
            if (h_ && h_->critical_end)
                h_->critical_end(h_->ctx);
        }
        CriticalSection(const CriticalSection&) = delete;
        CriticalSection& operator=(const CriticalSection&) = delete;

      private:
        const rra_host_instance* h_;
    };
    CriticalSection critical() const { return CriticalSection(h_); }

  private:
    const rra_host_instance* h_;
};

struct Config {
    std::string component, repo, arch, settingsJson, stateDir, runtimeDir, configPath, agentPath,
        agentVersion;
    bool validateOnly = false;
};

struct Discovery {
    std::optional<std::string> tag;  // applied tag, or nothing installed
    rra_verdict_kind verdict = RRA_VERDICT_NONE;
    std::string verdictTag, verdictFromTag, verdictError;
    uint64_t verdictDurationMs = 0;
};

struct InstallRequest {
    std::string tag;
    std::string artifactPath;
    std::optional<std::string> fromTag;
    bool isDowngrade = false;
};

// Base class of a C++ deployer. Override what the deployer supports; the defaults
// answer "unsupported" except discover(), which every deployer must implement.
class Deployer {
  public:
    virtual ~Deployer() = default;
    virtual Result discover(Discovery& out) = 0;
    virtual Result install(const InstallRequest& request) = 0;
    virtual Result verify(const std::string& tag, uint32_t timeoutMs) = 0;
    virtual Result rollback(const std::optional<std::string>& toTag,
                            const std::string& failedTag) = 0;
    virtual Result confirm(const std::string& /*tag*/) {
        return {RRA_UNSUPPORTED, "confirm unsupported"};
    }
};

namespace detail {

struct Instance {
    std::unique_ptr<Deployer> impl;
};

template <typename F>
rra_status guard(rra_text* error, F&& f) {
    try {
        Result r = f();
        if (!r.isOk())
            copyText(error, r.message);
        return r.status;
    } catch (const std::exception& e) {
        copyText(error, std::string("unexpected exception: ") + e.what());
    } catch (...) {
        copyText(error, "unexpected exception");
    }
    return RRA_ERROR;
}

inline const char* str(const char* s) {
    return s ? s : "";
}

inline Deployer* impl(rra_instance* i) {
    return reinterpret_cast<Instance*>(i)->impl.get();
}

// `Factory` is `static Result T::create(const Config&, Host, std::unique_ptr<Deployer>&)`.
template <typename T>
rra_status create(const rra_instance_config* c, const rra_host_instance* h, rra_instance** out,
                  rra_text* error) {
    return guard(error, [&]() -> Result {
        Config cfg;
        cfg.component = str(c->component);
        cfg.repo = str(c->repo);
        cfg.arch = str(c->arch);
        cfg.settingsJson = c->settings_json ? c->settings_json : "{}";
        cfg.stateDir = str(c->state_dir);
        cfg.runtimeDir = str(c->runtime_dir);
        cfg.configPath = str(c->config_path);
        cfg.agentPath = str(c->agent_path);
        cfg.agentVersion = str(c->agent_version);
        cfg.validateOnly = c->validate_only != 0;
        std::unique_ptr<Deployer> d;
        Result r = T::create(cfg, Host(h), d);
        if (!r.isOk())
            return r;
        if (!d)
            return Result::error("plugin created no instance");
        auto* inst = new Instance{std::move(d)};
        *out = reinterpret_cast<rra_instance*>(inst);
        return r;
    });
}

inline void destroy(rra_instance* i) {
    try {
        delete reinterpret_cast<Instance*>(i);
    } catch (...) {
    }
}

inline rra_status discover(rra_instance* i, rra_discovery* out, rra_text* error) {
    return guard(error, [&]() -> Result {
        Discovery d;
        Result r = impl(i)->discover(d);
        out->installed = d.tag.has_value() ? 1 : 0;
        copyText(&out->tag, d.tag.value_or(""));
        out->verdict = d.verdict;
        copyText(&out->verdict_tag, d.verdictTag);
        copyText(&out->verdict_from_tag, d.verdictFromTag);
        copyText(&out->verdict_error, d.verdictError);
        out->verdict_duration_ms = d.verdictDurationMs;
        return r;
    });
}

inline rra_status install(rra_instance* i, const rra_install_request* req, rra_text* error) {
    return guard(error, [&]() -> Result {
        InstallRequest r;
        r.tag = str(req->tag);
        r.artifactPath = str(req->artifact_path);
        if (req->from_tag)
            r.fromTag = req->from_tag;
        r.isDowngrade = req->is_downgrade != 0;
        return impl(i)->install(r);
    });
}

inline rra_status verify(rra_instance* i, const char* tag, uint32_t timeoutMs, rra_text* error) {
    return guard(error, [&]() { return impl(i)->verify(str(tag), timeoutMs); });
}

inline rra_status rollback(rra_instance* i, const char* to, const char* failed, rra_text* error) {
    return guard(error, [&]() {
        std::optional<std::string> toTag;
        if (to)
            toTag = to;
        return impl(i)->rollback(toTag, str(failed));
    });
}

inline rra_status confirm(rra_instance* i, const char* tag, rra_text* error) {
    return guard(error, [&]() { return impl(i)->confirm(str(tag)); });
}

}  // namespace detail

// The table for deployer class T. `name` etc. must be string literals.
template <typename T>
const rra_deployer* deployerTable(const char* name, const char* description, const char* version) {
    static const rra_deployer table = {
        sizeof(rra_deployer), RRA_ABI_MAJOR,    RRA_ABI_MINOR,      name,
        description,          version,          &detail::create<T>, &detail::destroy,
        &detail::discover,    &detail::install, &detail::verify,    &detail::rollback,
        &detail::confirm,
    };
    return &table;
}

}  // namespace rra::sdk

// Defines the plugin's entry symbol for deployer class T.
#define RRA_DEFINE_DEPLOYER(T, NAME, DESCRIPTION, VERSION)                \
    extern "C" RRA_PLUGIN_EXPORT const rra_deployer* rra_plugin_entry_v1( \
        const rra_host_services* host) {                                  \
        if (host == nullptr || host->abi_major != RRA_ABI_MAJOR)          \
            return nullptr;                                               \
        return ::rra::sdk::deployerTable<T>(NAME, DESCRIPTION, VERSION);  \
    }

#endif  // RASPI_RELEASE_DEPLOYER_HPP
