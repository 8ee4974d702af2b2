// What the deployment engine needs from a component's deployer. DeployerInstance (the
// wrapper of a plugin's C table) implements it; engine tests implement fakes.
#pragma once

#include "common/clock.hpp"
#include "common/error.hpp"

#include <raspi_release/deployer.h>

#include <optional>
#include <string>

namespace rra::plugins {

struct Discovery {
    std::optional<std::string> tag;  // applied tag; nullopt = nothing installed
    // A verdict handed across a restart (self-update): see rra_verdict_kind.
    rra_verdict_kind verdict = RRA_VERDICT_NONE;
    std::string verdictTag;
    std::optional<std::string> verdictFromTag;
    std::string verdictError;
    uint64_t verdictDurationMs = 0;
};

// Outcome of one hook call.
struct HookResult {
    rra_status status = RRA_OK;
    std::string message;
    bool timedOut = false;  // deadline + grace passed: the instance is now degraded
    bool ok() const { return status == RRA_OK && !timedOut; }
};

class Deployer {
  public:
    virtual ~Deployer() = default;
    virtual const std::string& component() const = 0;
    virtual const std::string& type() const = 0;

    virtual Expected<Discovery> discover(Millis deadline) = 0;
    // status RRA_REFUSED: nothing on the system was touched. RRA_PENDING_RESTART: the
    // outcome is learnt after the agent restarts (self-update).
    virtual HookResult install(const std::string& tag, const std::string& artifactPath,
                               const std::optional<std::string>& fromTag, bool isDowngrade,
                               Millis deadline) = 0;
    virtual HookResult verify(const std::string& tag, Millis timeout) = 0;
    virtual HookResult rollback(const std::optional<std::string>& toTag,
                                const std::string& failedTag, Millis deadline) = 0;
    virtual bool supportsConfirm() const = 0;
    virtual HookResult confirm(const std::string& tag, Millis deadline) = 0;

    // Raises the cancellation flag of the running (and every later) hook call.
    virtual void cancel() = 0;
    // True once a hook missed its deadline + grace: never called again.
    virtual bool degraded() const = 0;
};

}  // namespace rra::plugins
