// Announcement filtering: one warning per dropped entry, accepted entries keep their order.
#include "proxy/announcement_filter.hpp"

#include "common/repo_name.hpp"
#include "common/semver.hpp"
#include "proxy/messages.hpp"

#include <algorithm>

namespace rra::proxy {

FilterResult filterAnnouncements(const std::vector<Announcement>& announcements,
                                 const std::vector<config::ComponentConfig>& components) {
    FilterResult out;
    for (const auto& a : announcements) {
        // Component, tag and repo come from the proxy: one bounded line each in the log.
        const std::string what = "release announcement for component '" + excerpt(a.component) +
                                 "' tag '" + excerpt(a.tag) + "' ignored: ";
        auto it =
            std::find_if(components.begin(), components.end(),
                         [&](const config::ComponentConfig& c) { return c.name == a.component; });
        if (it == components.end()) {
            out.warnings.push_back(what + "component is not managed by this agent");
            continue;
        }
        if (!common::sameRepo(it->repo, a.repo)) {
            out.warnings.push_back(what + "repo '" + excerpt(a.repo) +
                                   "' differs from configured '" + it->repo + "'");
            continue;
        }
        auto v = parseSemVer(a.tag);
        if (!v) {
            out.warnings.push_back(what + "tag is not SemVer");
            continue;
        }
        if (v->isPrerelease() && !it->allowPrerelease) {
            out.warnings.push_back(what + "pre-release not allowed for this component");
            continue;
        }
        out.accepted.push_back(a);
    }
    return out;
}

}  // namespace rra::proxy
