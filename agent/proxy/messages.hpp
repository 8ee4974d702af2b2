// The proxy wire codec (shared/spec/proxy-protocol.md): message structs <-> JSON text.
// Pure code: no I/O, and no exception escapes.
#pragma once

#include "common/error.hpp"
#include "common/events.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace rra::proxy {

inline constexpr int kProtocolVersion = 1;
inline constexpr const char* kSubprotocol = "raspi-release.v1";

// WebSocket close codes of the contract.
inline constexpr uint16_t kCloseNormal = 1000;
inline constexpr uint16_t kCloseProtocolError = 4000;
inline constexpr uint16_t kCloseUnauthorized = 4001;

std::string encodeHello(const std::string& agentId, const std::string& agentVersion,
                        const std::string& arch, const std::vector<ComponentReport>& components);
std::string encodeInventory(const std::string& agentId, const std::string& arch,
                            const std::vector<ComponentReport>& components);
// `at` is written as UTC ISO-8601 with milliseconds and 'Z'. Fields the contract requires
// for the event kind are always written; a missing optional becomes null (from_tag,
// rolled_back_to) or a neutral value (duration_ms 0, error "", rollback_ok false).
std::string encodeTelemetry(const std::string& agentId, const TelemetryEvent& ev);

// "2026-12-03T18:00:00.123Z"
std::string formatUtcMillis(WallTime t);

struct Incoming {
    enum class Type { kSync, kRelease, kAck, kError, kUnknown } type = Type::kUnknown;
    std::vector<Announcement> releases;  // sync: all valid entries; release: exactly one
    std::string ackId, errorCode, errorMessage, rawType;
    // sync entries that were skipped because they lacked a string component/repo/tag.
    std::vector<std::string> warnings;
};

// An error means: log the frame and drop it (not a JSON object, no string `type`, or a
// known type whose required fields are missing or of the wrong JSON type). Unknown
// types and unknown fields are not errors (forward compatibility).
[[nodiscard]] Expected<Incoming> decode(std::string_view frame);

}  // namespace rra::proxy
