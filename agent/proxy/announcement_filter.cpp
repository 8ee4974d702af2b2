// Announcement filtering: one warning per dropped entry, accepted entries keep their order.
#include "proxy/announcement_filter.hpp"

#include "common/semver.hpp"

#include <algorithm>
#include <cctype>

namespace rra::proxy {
namespace {

bool sameRepo(const std::string& a, const std::string& b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

}  // namespace

FilterResult filterAnnouncements(const std::vector<Announcement>& announcements,
                                 const std::vector<config::ComponentConfig>& components) {
    FilterResult out;
    for (const auto& a : announcements) {
        const std::string what = "release announcement for component '" + a.component + "' tag '" +
                                 a.tag + "' ignored: ";
        auto it =
            std::find_if(components.begin(), components.end(),
                         [&](const config::ComponentConfig& c) { return c.name == a.component; });
        if (it == components.end()) {
            out.warnings.push_back(what + "component is not managed by this agent");
            continue;
        }
        if (!sameRepo(it->repo, a.repo)) {
            out.warnings.push_back(what + "repo '" + a.repo + "' differs from configured '" +
                                   it->repo + "'");
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
