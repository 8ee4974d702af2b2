// Pure release-selection rules of the engine; see selection.hpp.
#include "deploy/selection.hpp"

namespace rra::deploy {

bool TagSet::NewestFirst::operator()(const Entry& a, const Entry& b) const {
    return compareSemVer(a.version, b.version) > 0;
}

bool TagSet::insert(const std::string& tag) {
    auto v = parseSemVer(tag);
    if (!v)
        return false;
    return set_.insert(Entry{*v, tag}).second;
}

bool TagSet::contains(const std::string& tag) const {
    auto v = parseSemVer(tag);
    return v && set_.count(Entry{*v, tag}) > 0;
}

bool TagSet::erase(const std::string& tag) {
    auto v = parseSemVer(tag);
    return v && set_.erase(Entry{*v, tag}) > 0;
}

void TagSet::eraseNotNewerThan(const std::optional<std::string>& current) {
    for (auto it = set_.begin(); it != set_.end();) {
        if (isNewer(it->tag, current))
            ++it;
        else
            it = set_.erase(it);
    }
}

std::vector<std::string> TagSet::newestFirst() const {
    std::vector<std::string> out;
    out.reserve(set_.size());
    for (const auto& e : set_)
        out.push_back(e.tag);
    return out;
}

bool isNewer(const std::string& tag, const std::optional<std::string>& current) {
    if (!current)
        return true;
    auto c = compareTags(tag, *current);
    if (!c)
        return parseSemVer(tag).has_value();
    return *c > 0;
}

bool sameTag(const std::string& a, const std::string& b) {
    auto c = compareTags(a, b);
    return c ? *c == 0 : a == b;
}

bool sameTag(const std::optional<std::string>& a, const std::optional<std::string>& b) {
    if (!a || !b)
        return !a && !b;
    return sameTag(*a, *b);
}

const char* toString(Intake i) {
    switch (i) {
        case Intake::kAccepted:
            return "accepted";
        case Intake::kNotSemVer:
            return "not a SemVer tag";
        case Intake::kPrerelease:
            return "pre-release not allowed";
        case Intake::kNotNewer:
            return "not newer than current";
        case Intake::kFailed:
            return "failed before";
        case Intake::kDuplicate:
            return "duplicate";
    }
    return "?";
}

Intake classifyAnnouncement(const std::string& tag, const IntakeView& view) {
    auto v = parseSemVer(tag);
    if (!v)
        return Intake::kNotSemVer;
    if (v->isPrerelease() && !view.allowPrerelease)
        return Intake::kPrerelease;
    if (view.failed.contains(tag))
        return Intake::kFailed;
    if (view.inFlight && sameTag(*view.inFlight, tag))
        return Intake::kDuplicate;
    if (view.currentKnown && !isNewer(tag, view.current))
        return Intake::kNotNewer;
    if (view.candidates.contains(tag))
        return Intake::kDuplicate;
    return Intake::kAccepted;
}

std::optional<Target> nextTarget(const SelectionView& view) {
    const auto& current = view.current;
    if (view.pin) {
        const std::string& pin = *view.pin;
        if (sameTag(current, view.pin) || view.failed.contains(pin) || view.deferred.contains(pin))
            return std::nullopt;
        bool down = false;
        if (current) {
            auto c = compareTags(pin, *current);
            down = c && *c < 0;
        }
        return Target{pin, down};
    }
    for (const auto& e : view.candidates) {
        if (!isNewer(e.tag, current))
            break;  // newest first: the rest are older still
        if (view.failed.contains(e.tag) || view.deferred.contains(e.tag))
            continue;
        if (e.version.isPrerelease() && !view.allowPrerelease)
            continue;
        return Target{e.tag, false};
    }
    return std::nullopt;
}

}  // namespace rra::deploy
