// Pure release-selection rules of the engine (rules 2, 4, 7, 12): which announced tags
// are remembered and which one is applied next. No I/O, no threads, no exceptions.
#pragma once

#include "common/semver.hpp"

#include <optional>
#include <set>
#include <string>
#include <vector>

namespace rra::deploy {

// Distinct SemVer tags ordered newest first; memory grows only with distinct tags.
class TagSet {
  public:
    // False when the tag is not SemVer or an equal tag is already present.
    bool insert(const std::string& tag);
    bool contains(const std::string& tag) const;
    bool erase(const std::string& tag);
    // Drops every tag not newer than `current` (nothing when current is unset).
    void eraseNotNewerThan(const std::optional<std::string>& current);
    std::vector<std::string> newestFirst() const;
    size_t size() const { return set_.size(); }
    bool empty() const { return set_.empty(); }
    void clear() { set_.clear(); }

    struct Entry {
        SemVer version;
        std::string tag;
    };
    struct NewestFirst {
        bool operator()(const Entry& a, const Entry& b) const;
    };
    using const_iterator = std::set<Entry, NewestFirst>::const_iterator;
    const_iterator begin() const { return set_.begin(); }
    const_iterator end() const { return set_.end(); }

  private:
    std::set<Entry, NewestFirst> set_;
};

// True when `tag` is newer than `current`; an unset current (nothing installed) or one
// that is not SemVer is older than every tag.
bool isNewer(const std::string& tag, const std::optional<std::string>& current);

enum class Intake {
    kAccepted,    // remembered as a candidate
    kNotSemVer,   // cannot be ordered (warning)
    kPrerelease,  // pre-release while the component does not allow them
    kNotNewer,    // older than or equal to current
    kFailed,      // known to have failed in this process
    kDuplicate,   // already a candidate or being applied
};
const char* toString(Intake i);

struct IntakeView {
    const std::optional<std::string>& current;
    bool currentKnown;  // false until discovery: then nothing is "not newer" yet
    bool allowPrerelease;
    const TagSet& candidates;
    const std::set<std::string>& failed;
    const std::optional<std::string>& inFlight;
};

// Rule 2: what an announcement of `tag` means for a component in state `view`.
Intake classifyAnnouncement(const std::string& tag, const IntakeView& view);

struct Target {
    std::string tag;
    bool isDowngrade = false;
};

// Rules 4, 7, 12: the release to apply next, or nothing when the component should rest.
// A pin selects exactly the pinned tag (possibly a downgrade) unless it is current or
// failed; otherwise the newest candidate newer than current and not failed.
std::optional<Target> nextTarget(const std::optional<std::string>& current,
                                 const std::optional<std::string>& pin, const TagSet& candidates,
                                 const std::set<std::string>& failed);

}  // namespace rra::deploy
