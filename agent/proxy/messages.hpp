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

// Every invalid UTF-8 sequence (stray continuation byte, truncated or overlong sequence,
// surrogate, beyond U+10FFFF) replaced by U+FFFD, one per maximal ill-formed subpart
// (Unicode 3.9, "U+FFFD substitution"). The encoders apply it to every string they write:
// a text frame must be valid UTF-8 (RFC 6455 closes with 1007 otherwise), and error
// texts carry raw tails of command output.
std::string toValidUtf8(std::string_view text);

// Proxy-supplied text made safe for one log line: at most `maxBytes` bytes (then "..."),
// valid UTF-8, control characters (C0, DEL, C1) replaced by spaces so nothing can
// forge a line or steer a terminal.
std::string excerpt(std::string_view text, size_t maxBytes = 80);

// Bounds on what one incoming message may cost (a sync can hold anything).
inline constexpr size_t kMaxSyncEntries = 10000;  // entries beyond are ignored, one warning
inline constexpr size_t kMaxWarningExamples = 3;  // skipped entries described one by one

struct Incoming {
    enum class Type { kSync, kRelease, kAck, kError, kUnknown } type = Type::kUnknown;
    std::vector<Announcement> releases;  // sync: all valid entries; release: exactly one
    std::string ackId, errorCode, errorMessage, rawType;
    // sync: the first kMaxWarningExamples skipped entries (not objects, or without string
    // component/repo/tag), then one line with the total when there were more, and one when
    // entries beyond kMaxSyncEntries were ignored. Never more than kMaxWarningExamples + 2.
    std::vector<std::string> warnings;
};

// An error means: log the frame and drop it (not a JSON object, no string `type`, or a
// known type whose required fields are missing or of the wrong JSON type). Unknown
// types and unknown fields are not errors (forward compatibility).
[[nodiscard]] Expected<Incoming> decode(std::string_view frame);

}  // namespace rra::proxy
