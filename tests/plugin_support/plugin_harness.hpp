// Test-side host for deployer plugins: dlopen of a built plugin and calls through its real
// C table, with a small host (captured logs, cancellation, deadline, assets, critical
// sections). Independent of the agent's own loader on purpose.
#pragma once

#include <raspi_release/deployer.h>

#include <dlfcn.h>

#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace rra::test {

class PluginLibrary {
  public:
    explicit PluginLibrary(const std::string& path) {
        handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!handle_)
            throw std::runtime_error(std::string("dlopen: ") + dlerror());
        auto entry = reinterpret_cast<rra_plugin_entry_fn>(dlsym(handle_, RRA_PLUGIN_ENTRY_SYMBOL));
        if (!entry)
            throw std::runtime_error("no entry symbol in " + path);
        services_ = {sizeof(rra_host_services), RRA_ABI_MAJOR, RRA_ABI_MINOR, "test",
                     [](rra_log_level, const char*) {}};
        table_ = entry(&services_);
        if (!table_)
            throw std::runtime_error("entry returned NULL in " + path);
    }
    ~PluginLibrary() {
        if (handle_)
            dlclose(handle_);
    }
    PluginLibrary(const PluginLibrary&) = delete;
    PluginLibrary& operator=(const PluginLibrary&) = delete;
    const rra_deployer* table() const { return table_; }

  private:
    void* handle_ = nullptr;
    rra_host_services services_{};
    const rra_deployer* table_ = nullptr;
};

class TestHost {
  public:
    TestHost() {
        h_.struct_size = sizeof h_;
        h_.abi_major = RRA_ABI_MAJOR;
        h_.abi_minor = RRA_ABI_MINOR;
        h_.ctx = reinterpret_cast<rra_host_ctx*>(this);
        h_.log = [](rra_host_ctx* c, rra_log_level l, const char* m) {
            auto* self = self_(c);
            std::lock_guard<std::mutex> lock(self->mu_);
            self->logs.emplace_back(l, m);
        };
        h_.progress = [](rra_host_ctx* c, int pct, const char*) { self_(c)->lastProgress = pct; };
        h_.is_cancelled = [](rra_host_ctx* c) { return self_(c)->cancel.load() ? 1 : 0; };
        h_.remaining_ms = [](rra_host_ctx* c) { return self_(c)->remainingMs; };
        h_.fetch_asset = [](rra_host_ctx* c, const char* tag, rra_text* path, rra_text* err) {
            auto* self = self_(c);
            self->fetched.push_back(tag);
            auto it = self->assets.find(tag);
            if (it == self->assets.end()) {
                snprintf(err->data, err->capacity, "no asset for %s", tag);
                return RRA_ERROR;
            }
            snprintf(path->data, path->capacity, "%s", it->second.c_str());
            return RRA_OK;
        };
        h_.critical_begin = [](rra_host_ctx* c) {
            self_(c)->criticalDepth++;
            self_(c)->criticalSections++;
        };
        h_.critical_end = [](rra_host_ctx* c) { self_(c)->criticalDepth--; };
    }
    TestHost(const TestHost&) = delete;
    TestHost& operator=(const TestHost&) = delete;

    const rra_host_instance* instance() const { return &h_; }
    bool logged(const std::string& needle) {
        std::lock_guard<std::mutex> lock(mu_);
        for (const auto& l : logs)
            if (l.second.find(needle) != std::string::npos)
                return true;
        return false;
    }

    std::vector<std::pair<rra_log_level, std::string>> logs;
    std::atomic<bool> cancel{false};
    uint64_t remainingMs = 600000;
    std::map<std::string, std::string> assets;  // tag -> path for fetch_asset
    std::vector<std::string> fetched;
    std::atomic<int> criticalDepth{0};
    std::atomic<int> criticalSections{0};
    std::atomic<int> lastProgress{-1};

  private:
    static TestHost* self_(rra_host_ctx* c) { return reinterpret_cast<TestHost*>(c); }
    rra_host_instance h_{};
    std::mutex mu_;
};

// Outcome of one hook call.
struct Call {
    rra_status status = RRA_OK;
    std::string message;
    bool ok() const { return status == RRA_OK; }
};

class PluginInstance {
  public:
    PluginInstance(const rra_deployer* table, TestHost& host, const std::string& settingsJson,
                   const std::string& stateDir, bool validateOnly = false,
                   const std::string& component = "demo")
        : t_(table), settings_(settingsJson), stateDir_(stateDir), component_(component) {
        rra_instance_config c{};
        c.struct_size = sizeof c;
        c.component = component_.c_str();
        c.repo = "acme/demo";
        c.arch = "amd64";
        c.settings_json = settings_.c_str();
        c.state_dir = stateDir_.c_str();
        c.runtime_dir = stateDir_.c_str();
        c.config_path = "/etc/raspi-release-agent/agent.json";
        c.agent_path = "/usr/bin/raspi-release-agent";
        c.agent_version = "0.0.0-test";
        c.validate_only = validateOnly ? 1 : 0;
        Buffer err;
        created.status = t_->create(&c, host.instance(), &inst_, err.text());
        created.message = err.str();
    }
    ~PluginInstance() {
        if (inst_)
            t_->destroy(inst_);
    }
    PluginInstance(const PluginInstance&) = delete;
    PluginInstance& operator=(const PluginInstance&) = delete;

    Call discover(std::optional<std::string>& tag) {
        Buffer err, t, vt, vf, ve;
        rra_discovery d{};
        d.struct_size = sizeof d;
        d.tag = *t.text();
        d.verdict_tag = *vt.text();
        d.verdict_from_tag = *vf.text();
        d.verdict_error = *ve.text();
        Call c{t_->discover(inst_, &d, err.text()), err.str()};
        tag.reset();
        if (c.ok() && d.installed)
            tag = t.str();
        return c;
    }
    std::optional<std::string> discoveredTag() {
        std::optional<std::string> tag;
        Call c = discover(tag);
        if (!c.ok())
            throw std::runtime_error("discover failed: " + c.message);
        return tag;
    }
    Call install(const std::string& tag, const std::string& artifact,
                 const std::optional<std::string>& fromTag = std::nullopt, bool downgrade = false) {
        Buffer err;
        rra_install_request r{};
        r.struct_size = sizeof r;
        r.tag = tag.c_str();
        r.artifact_path = artifact.c_str();
        r.from_tag = fromTag ? fromTag->c_str() : nullptr;
        r.is_downgrade = downgrade ? 1 : 0;
        return {t_->install(inst_, &r, err.text()), err.str()};
    }
    Call verify(const std::string& tag, uint32_t timeoutMs) {
        Buffer err;
        return {t_->verify(inst_, tag.c_str(), timeoutMs, err.text()), err.str()};
    }
    Call rollback(const std::optional<std::string>& toTag, const std::string& failedTag) {
        Buffer err;
        return {
            t_->rollback(inst_, toTag ? toTag->c_str() : nullptr, failedTag.c_str(), err.text()),
            err.str()};
    }

    Call created;

  private:
    struct Buffer {
        std::vector<char> data = std::vector<char>(8192, '\0');
        rra_text t{};
        rra_text* text() {
            t = {data.data(), data.size()};
            return &t;
        }
        std::string str() const { return data.data(); }
    };

    const rra_deployer* t_;
    rra_instance* inst_ = nullptr;
    std::string settings_, stateDir_, component_;
};

}  // namespace rra::test
