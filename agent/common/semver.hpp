// Release tags ordered by SemVer 2.0.0 precedence after one leading 'v' or 'V'
// (proxy protocol, "Versions and tags"). Pure code: no I/O, no exceptions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rra {

struct SemVer {
    uint64_t major = 0, minor = 0, patch = 0;
    std::vector<std::string> prerelease;  // dot-separated identifiers
    std::string build;                    // ignored for precedence

    bool isPrerelease() const { return !prerelease.empty(); }
};

// Parses "1.2.3", "v1.2.3-rc.1+build.5". Returns nothing for anything not SemVer.
std::optional<SemVer> parseSemVer(std::string_view tag);

// <0, 0, >0 by precedence (build metadata ignored).
int compareSemVer(const SemVer& a, const SemVer& b);

// Tag with one leading 'v'/'V' removed ("{version}" in asset patterns).
std::string tagVersion(std::string_view tag);

// Compares two tags; nothing when either is not SemVer.
std::optional<int> compareTags(std::string_view a, std::string_view b);

}  // namespace rra
