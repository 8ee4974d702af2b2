// Which announced releases the agent may act on: known component, configured repo,
// SemVer tag, pre-release only when allowed (proxy protocol, "Versions and tags").
// Pure code.
#pragma once

#include "common/events.hpp"
#include "config/config.hpp"

#include <string>
#include <vector>

namespace rra::proxy {

struct FilterResult {
    std::vector<Announcement> accepted;
    std::vector<std::string> warnings;  // one per dropped entry, naming component and tag
};

// Repos compare with common::sameRepo (case-insensitive, as GitHub treats owner/name).
// Proxy-supplied text in the warnings is passed through excerpt(): one bounded log line.
FilterResult filterAnnouncements(const std::vector<Announcement>& announcements,
                                 const std::vector<config::ComponentConfig>& components);

}  // namespace rra::proxy
