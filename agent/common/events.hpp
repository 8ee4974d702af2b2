// Data exchanged between the proxy connection and the deployment engine, so neither
// module depends on the other.
#pragma once

#include "common/clock.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace rra {

// One release the proxy told us about (from `sync` or `release`).
struct Announcement {
    std::string component;
    std::string repo;
    std::string tag;
    std::string publishedAt;  // as sent, may be empty
};

// One component as reported in `hello` / `inventory`.
struct ComponentReport {
    std::string name;
    std::string repo;
    std::string kind;                    // the component's `type`
    std::optional<std::string> current;  // null when nothing is installed
};

enum class TelemetryKind { kApplyStarted, kApplySucceeded, kApplyFailed };
enum class ApplyPhase { kDownload, kInstall, kVerify };

inline const char* toString(TelemetryKind k) {
    switch (k) {
        case TelemetryKind::kApplyStarted:
            return "apply_started";
        case TelemetryKind::kApplySucceeded:
            return "apply_succeeded";
        case TelemetryKind::kApplyFailed:
            return "apply_failed";
    }
    return "?";
}
inline const char* toString(ApplyPhase p) {
    switch (p) {
        case ApplyPhase::kDownload:
            return "download";
        case ApplyPhase::kInstall:
            return "install";
        case ApplyPhase::kVerify:
            return "verify";
    }
    return "?";
}

// A telemetry event (proxy protocol, "telemetry"). `id` and `agent_id` are filled in by
// the proxy client when empty; `at` by whoever creates the event.
struct TelemetryEvent {
    std::string id;
    std::string component;
    std::string tag;
    std::optional<std::string> fromTag;
    TelemetryKind event = TelemetryKind::kApplyStarted;
    WallTime at{};
    std::optional<int64_t> durationMs;        // succeeded / failed
    std::optional<ApplyPhase> phase;          // failed
    std::optional<std::string> error;         // failed; never a secret
    std::optional<std::string> rolledBackTo;  // failed; nullopt encodes null
    std::optional<bool> rollbackOk;           // failed
};

}  // namespace rra
