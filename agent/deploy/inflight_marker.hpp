// In-flight markers (rule 11): one small file per component under
// <runtime_dir>/inflight/ while a release is being applied, so the next run of the agent
// learns that this one died (or stopped) mid-apply. A hand-over, never a database.
#pragma once

#include "common/error.hpp"
#include "common/events.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace rra::deploy {

struct InflightMarker {
    std::string component;
    std::string tag;
    std::optional<std::string> fromTag;
    ApplyPhase phase = ApplyPhase::kDownload;
    int64_t startedAtMs = 0;   // Unix time, ms
    bool interrupted = false;  // the agent stopped on purpose inside install/verify
    bool recovering = false;   // the next run started rolling back: if it dies, don't again
};

class MarkerStore {
  public:
    // An empty runtime dir disables markers (every call succeeds and finds nothing).
    explicit MarkerStore(std::string runtimeDir);

    bool enabled() const { return !dir_.empty(); }
    std::string pathFor(const std::string& component) const;
    // Durable replace: written to a temporary file, fsynced, renamed, directory fsynced.
    [[nodiscard]] Status write(const InflightMarker& marker) const;
    // Nothing when there is no marker; an error when one exists but cannot be read.
    [[nodiscard]] Expected<std::optional<InflightMarker>> read(const std::string& component) const;
    [[nodiscard]] Status remove(const std::string& component) const;

  private:
    std::string dir_;  // <runtime_dir>/inflight, or empty
};

}  // namespace rra::deploy
