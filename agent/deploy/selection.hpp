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

// The same release: equal SemVer precedence (v1.0.0 and 1.0.0), else the same string.
bool sameTag(const std::string& a, const std::string& b);
bool sameTag(const std::optional<std::string>& a, const std::optional<std::string>& b);

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
    const TagSet& failed;
    const std::optional<std::string>& inFlight;
};

// Rule 2: what an announcement of `tag` means for a component in state `view`.
Intake classifyAnnouncement(const std::string& tag, const IntakeView& view);

struct Target {
    std::string tag;
    bool isDowngrade = false;
};

struct SelectionView {
    const std::optional<std::string>& current;
    const std::optional<std::string>& pin;
    // Re-checked here because a reload may turn pre-releases off after they were taken in.
    bool allowPrerelease;
    const TagSet& candidates;
    const TagSet& failed;
    // Tags whose download failed for a transient cause: still candidates, but skipped
    // until the next announcement or re-sync (rule 6), while older ones are tried (rule 7).
    const TagSet& deferred;
};

// Rules 4, 7, 12: the release to apply next, or nothing when the component should rest.
// A pin selects exactly the pinned tag (possibly a downgrade) unless it is current,
// failed or deferred; otherwise the newest candidate newer than current that is neither
// failed, deferred nor a disallowed pre-release.
std::optional<Target> nextTarget(const SelectionView& view);

}  // namespace rra::deploy
