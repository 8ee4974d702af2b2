// Release selection for one component: parse GitHub's release JSON, apply the draft and
// pre-release rules, expand the asset pattern and pick the asset. Pure code: no I/O.
#pragma once

#include "common/error.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace rra::github {

struct AssetInfo {
    int64_t id = 0;
    std::string name;
    uint64_t size = 0;
    std::string state;
    std::string contentType;
    std::string url;  // API URL of the asset
    std::string browserDownloadUrl;
    std::optional<std::string> sha256;  // lower-case hex from `digest`, when GitHub gives one
    // Why a present `digest` is unusable (another algorithm, wrong length): such an asset is
    // refused rather than silently checked by size alone.
    std::string digestError;
};

struct ReleaseInfo {
    int64_t id = 0;
    std::string tagName;
    bool draft = false;
    bool prerelease = false;
    std::vector<AssetInfo> assets;
};

// Parses a release object (GET /repos/{owner}/{repo}/releases/tags/{tag}).
Expected<ReleaseInfo> parseRelease(const std::string& json);

// `{tag}` -> tag, `{version}` -> tag without a leading lower-case 'v' (the contract's
// wording: "V1.0" stays "V1.0"), `{arch}` -> arch.
std::string expandAssetPattern(const std::string& pattern, const std::string& tag,
                               const std::string& arch);

// Applies the rules (no drafts; pre-releases only when allowed, by flag or SemVer tag) and
// picks the asset named by the pattern. Errors: kNotFound for a missing/forbidden release or
// asset (listing the names that exist), kRefused for an asset that is not usable, kHttp
// (transient) for an asset still being uploaded (state `starter` or `open`).
Expected<AssetInfo> selectAsset(const ReleaseInfo& release, const std::string& pattern,
                                const std::string& tag, const std::string& arch,
                                bool allowPrerelease);

}  // namespace rra::github
