// The engine's ports to the outside: where release artifacts come from (the app adapts
// the GitHub client) and where telemetry goes (the app adapts the proxy client).
#pragma once

#include "common/clock.hpp"
#include "common/error.hpp"
#include "common/events.hpp"
#include "config/config.hpp"

#include <cstdint>
#include <string>

namespace rra::deploy {

// A downloaded, verified release asset on local disk.
struct Artifact {
    std::string path;
    uint64_t size = 0;
    std::string sha256;  // lower-case hex
};

// Downloads a release's asset. Called from several component workers at once (at most
// EngineOptions::maxParallelDownloads at a time): implementations must be thread-safe.
class Fetcher {
  public:
    virtual ~Fetcher() = default;
    // The verified asset of `tag`. Error codes kNotFound, kMismatch and kRefused mean the
    // release itself is bad (the tag is never tried again by this process); every other
    // code (kNetwork, kTls, kHttp, kRateLimited, kCancelled, kIo, ...) is transient.
    virtual Expected<Artifact> fetch(const config::ComponentConfig& component,
                                     const std::string& tag, const CancelToken& cancel) = 0;
    // The engine is done with `artifact` (installed or not): delete or cache it.
    virtual void discard(const config::ComponentConfig& component, const std::string& tag,
                         const Artifact& artifact) = 0;
};

// Receives telemetry events; must not block for long (the proxy client queues them).
class TelemetrySink {
  public:
    virtual ~TelemetrySink() = default;
    virtual void send(TelemetryEvent event) = 0;
};

// Whether a fetch error condemns the release (true) or may go away by itself (false).
inline bool isBadRelease(ErrorCode code) {
    return code == ErrorCode::kNotFound || code == ErrorCode::kMismatch ||
           code == ErrorCode::kRefused;
}

}  // namespace rra::deploy
