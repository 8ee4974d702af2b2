// The GitHub Releases client: resolves a component's release asset and downloads it, verified,
// into work_dir, within GitHub's rate limits (contract: shared/spec/github-releases.md).
#pragma once

#include "common/clock.hpp"
#include "common/error.hpp"
#include "common/random.hpp"
#include "config/config.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace rra::github {

struct AssetRequest {
    std::string component;
    std::string repo;  // owner/name
    std::string tag;
    std::string assetPattern;  // with {tag}, {version}, {arch}
    std::string arch;
    bool allowPrerelease = false;
};

// A complete, verified download in work_dir.
struct Artifact {
    std::string path;
    uint64_t size = 0;
    std::string sha256;  // lower-case hex
};

// The primary rate limit as last reported by GitHub.
struct Quota {
    std::optional<int> limit, remaining;
    std::optional<int64_t> resetEpoch;
};

// Bounds on a stalled transfer (a server trickling a byte every few seconds would otherwise
// hold a download slot forever). Real time, not the injected Clock: they bound socket I/O.
// Tests shrink them.
struct TransferLimits {
    Millis readTimeout{30'000};         // one socket read
    Millis metadataDeadline{60'000};    // one whole API metadata request
    uint64_t lowSpeedBytesPerS = 1024;  // a download slower than this ...
    Millis lowSpeedWindow{60'000};      // ... over this long is aborted and retried
};

class GithubClient {
  public:
    GithubClient(const config::GithubSection& cfg, std::string workDir, Clock& clock,
                 Random& random);
    ~GithubClient();
    GithubClient(const GithubClient&) = delete;
    GithubClient& operator=(const GithubClient&) = delete;

    // Thread-safe; requests started afterwards use the new settings and token.
    void reconfigure(const config::GithubSection& cfg);

    // Resolves the release by tag, picks the asset and downloads it verified into
    // work_dir/<component>/<tag>/<asset>. Thread-safe. Errors name component and tag.
    // Permanent (the release itself): kNotFound, kMismatch, kRefused, kPermission.
    // Transient: kNetwork, kTls, kHttp, kRateLimited, kIo, kCancelled.
    [[nodiscard]] Expected<Artifact> fetch(const AssetRequest& req, const CancelToken& cancel);

    // Deletes a downloaded artifact (and its bookkeeping) once it is no longer needed.
    void discard(const Artifact& a);

    Quota quota() const;

    // For tests; affects exchanges opened afterwards.
    void setTransferLimits(const TransferLimits& limits);

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace rra::github
