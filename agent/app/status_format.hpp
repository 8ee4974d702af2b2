// Turns the status file the daemon writes (JSON, see AgentRuntime::renderStatus) into the
// text `raspi-release-agent --status` prints for an operator.
#pragma once

#include "common/error.hpp"

#include <cstdint>
#include <functional>
#include <string>

namespace rra::app {

struct StatusText {
    std::string text;
    bool agentRunning = true;  // false: the file names a pid that no longer exists
};

// `json` is the file's content, `source` its path (named in errors). `isAlive(pid)` tells
// whether the agent that wrote the file still runs; `nowEpoch` renders the quota reset.
Expected<StatusText> formatStatus(const std::string& json, const std::string& source,
                                  const std::function<bool(int)>& isAlive, int64_t nowEpoch);

}  // namespace rra::app
