// The self-update hand-over: the durable probation marker install_root/self-update.state
// shared by the `self` plugin (old and new agent), the rra-self-watchdog and the launcher,
// the locks that serialize its transitions, and the rollback step they all use.
#pragma once

#include "support/outcome.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace rra::self {

namespace ps = rra::plugin_support;

enum class HandoverState { kPending, kCommitted, kFailed };
const char* toString(HandoverState s);

// One self-update in flight. Lives on the same disk as the releases (not tmpfs), so a
// power cut during probation still finds it and never leaves an unproven agent in charge.
struct Handover {
    HandoverState state = HandoverState::kPending;
    std::string tag;      // the release on probation
    std::string fromTag;  // the tag the engine reported as current before ("" = none)
    // What install_root/current pointed at before the switch ("releases/<tag>"), or ""
    // when there was no current (the agent ran from the .deb's /usr/bin).
    std::string previousTarget;
    int64_t startedMs = 0;  // Unix time of the install, ms
    int64_t healthyWithinS = 120;
    std::vector<std::string> restartCmd;
    std::string error;  // why it failed (kFailed)
};

std::string handoverPath(const std::string& installRoot);
std::string currentLink(const std::string& installRoot);
std::string releasesDir(const std::string& installRoot);

// A tag that can name a directory under releases/ and a line of the marker.
bool validTag(const std::string& tag);

// The marker as text and back (format=1 key=value lines; restart_arg repeats).
std::string encodeHandover(const Handover& h);
ps::Outcome<Handover> decodeHandover(const std::string& text);

// nullopt when there is no marker; an error when one exists but cannot be read.
ps::Outcome<std::optional<Handover>> readHandover(const std::string& installRoot);
// Durable replace: temporary file, fsync, rename, fsync of install_root.
ps::Done writeHandover(const std::string& installRoot, const Handover& h);
ps::Done removeHandover(const std::string& installRoot);

// An flock(2) on a file under install_root, released on destruction. Descriptors are
// close-on-exec, so commands the agent runs never inherit a lock.
class FileLock {
  public:
    FileLock() = default;
    ~FileLock();
    FileLock(FileLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
    FileLock& operator=(FileLock&& o) noexcept;
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;

    // Blocks until the lock is taken.
    static ps::Outcome<FileLock> acquire(const std::string& path);
    // nullopt when someone else holds it.
    static ps::Outcome<std::optional<FileLock>> tryAcquire(const std::string& path);

  private:
    explicit FileLock(int fd) : fd_(fd) {}
    int fd_ = -1;
};

// Held by the one live watchdog for its whole life: "someone is watching the probation".
std::string watchdogLockPath(const std::string& installRoot);
// Held for each read-modify-write of the marker (confirm vs. the watchdog's deadline).
std::string stateLockPath(const std::string& installRoot);
// True when a watchdog holds its lock now.
bool watchdogAlive(const std::string& installRoot);

// Under the state lock: when the marker is still pending, puts current back on the
// previous release (or removes it: the launcher then starts the .deb's agent), then
// records the marker as failed with `reason`. Returns the marker as it ends up, nullopt
// when there was none. Already committed/failed markers are returned untouched.
ps::Outcome<std::optional<Handover>> rollBackPending(const std::string& installRoot,
                                                     const std::string& reason);

// Runs the restart command (it must not block on the agent's stop: systemctl --no-block,
// or a supervisor's signal). An error names the command and its outcome.
ps::Done runRestart(const std::vector<std::string>& argv, int64_t timeoutMs);

// Milliseconds since the Unix epoch.
int64_t nowMs();

}  // namespace rra::self
