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

// Repos compare case-insensitively because GitHub treats owner/name that way.
FilterResult filterAnnouncements(const std::vector<Announcement>& announcements,
                                 const std::vector<config::ComponentConfig>& components);

}  // namespace rra::proxy
