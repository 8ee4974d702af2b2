// The one C++ wrapper of a plugin's C table that the rest of the agent uses: creates the
// per-component instance, runs each hook on a worker thread under a deadline, turns
// statuses into values, and retires an instance whose hook never returns.
#pragma once

#include "common/clock.hpp"
#include "common/error.hpp"
#include "plugins/deployer.hpp"
#include "plugins/plugin_loader.hpp"

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace rra::plugins {

struct InstanceContext {
    std::string component;
    std::string repo;
    std::string arch;
    std::string settingsJson = "{}";
    std::string stateDir;  // created by create() when missing (not when validateOnly)
    std::string runtimeDir;
    std::string configPath;
    std::string agentPath;
    std::string agentVersion;
    bool validateOnly = false;
    // Where the component is configured ("agent.json: components[2]" or a drop-in's path).
    // When set, a plugin message about a settings key ("settings.keep: unknown key") is
    // reported at that key's path, as the config loader names keys.
    std::string origin;
    // When set, the plugin's log messages (anchored as above) go here instead of the log:
    // validation collects them to print them with the loader's warnings. Called from hook
    // threads, possibly after create() returned (an abandoned hook).
    std::function<void(rra_log_level, const std::string&)> onLog;
};

// `key` of the component configured at `origin`: "FILE: components[2]" + "settings.keep" ->
// "FILE: components[2].settings.keep"; a drop-in "FILE" + "name" -> "FILE: name".
std::string componentKeyPath(const std::string& origin, const std::string& key);

// A plugin message that starts with a settings key, optionally after "component 'NAME': ",
// anchored at the key's path: "FILE: components[2].settings.keep: unknown key". Nothing when
// the message is not about a settings key.
std::optional<std::string> anchorSettingsMessage(const std::string& origin,
                                                 const std::string& component,
                                                 const std::string& message);

// Host service: the verified asset file of another tag of this component.
using FetchAssetFn = std::function<Expected<std::string>(const std::string& tag)>;

// Counts open critical sections of every instance, so shutdown can wait for them.
class CriticalSections {
  public:
    static void enter();
    static void leave();
    static int open();
    // Waits until no section is open or `timeout` passes; true when none is open.
    static bool waitAllClosed(Millis timeout);
};

class DeployerInstance final : public Deployer {
  public:
    // Creates the instance (the plugin validates `settingsJson`). The error names the
    // component and carries the plugin's message.
    static Expected<std::shared_ptr<DeployerInstance>> create(std::shared_ptr<LoadedPlugin> plugin,
                                                              const InstanceContext& ctx,
                                                              FetchAssetFn fetchAsset = {});
    ~DeployerInstance();

    const std::string& component() const override;
    const std::string& type() const override;

    // Each hook has a deadline; the grace period after it is `graceAfterDeadline()`.
    Expected<Discovery> discover(Millis deadline) override;
    HookResult install(const std::string& tag, const std::string& artifactPath,
                       const std::optional<std::string>& fromTag, bool isDowngrade,
                       Millis deadline) override;
    HookResult verify(const std::string& tag, Millis timeout) override;
    HookResult rollback(const std::optional<std::string>& toTag, const std::string& failedTag,
                        Millis deadline) override;
    bool supportsConfirm() const override;
    HookResult confirm(const std::string& tag, Millis deadline) override;

    void cancel() override;
    bool degraded() const override;

    static void setGraceAfterDeadline(Millis grace);
    static Millis graceAfterDeadline();

    struct State;  // shared with worker threads and the host-service callbacks

  private:
    explicit DeployerInstance(std::shared_ptr<State> s);
    std::shared_ptr<State> s_;
};

}  // namespace rra::plugins
