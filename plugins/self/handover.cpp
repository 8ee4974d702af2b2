// The self-update hand-over marker, its locks and the shared rollback step; see
// handover.hpp.
#include "self/handover.hpp"

#include "support/fs.hpp"
#include "support/subprocess.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

namespace rra::self {
namespace {

constexpr const char* kFormat = "1";

std::string oneLine(std::string s) {
    std::replace(s.begin(), s.end(), '\n', ' ');
    std::replace(s.begin(), s.end(), '\r', ' ');
    return s;
}

ps::Outcome<int64_t> parseInt(const std::string& key, const std::string& v) {
    try {
        size_t used = 0;
        long long n = std::stoll(v, &used);
        if (used != v.size())
            throw std::invalid_argument(v);
        return static_cast<int64_t>(n);
    } catch (const std::exception&) {
        return ps::fail(key + ": not an integer: '" + v + "'");
    }
}

ps::Outcome<int> openLockFile(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return ps::fail("lock '" + path + "': " + std::strerror(errno));
    return fd;
}

}  // namespace

const char* toString(HandoverState s) {
    switch (s) {
        case HandoverState::kPending:
            return "pending";
        case HandoverState::kCommitted:
            return "committed";
        case HandoverState::kFailed:
            return "failed";
    }
    return "?";
}

std::string handoverPath(const std::string& installRoot) {
    return installRoot + "/self-update.state";
}
std::string currentLink(const std::string& installRoot) {
    return installRoot + "/current";
}
std::string releasesDir(const std::string& installRoot) {
    return installRoot + "/releases";
}
std::string watchdogLockPath(const std::string& installRoot) {
    return installRoot + "/.watchdog.lock";
}
std::string stateLockPath(const std::string& installRoot) {
    return installRoot + "/.state.lock";
}

bool validTag(const std::string& tag) {
    if (tag.empty() || tag.size() > 200 || tag[0] == '.')
        return false;
    return std::none_of(tag.begin(), tag.end(), [](char c) {
        return c == '/' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
    });
}

std::string encodeHandover(const Handover& h) {
    std::ostringstream o;
    o << "format=" << kFormat << "\n";
    o << "state=" << toString(h.state) << "\n";
    o << "tag=" << oneLine(h.tag) << "\n";
    o << "from_tag=" << oneLine(h.fromTag) << "\n";
    o << "previous=" << oneLine(h.previousTarget) << "\n";
    o << "started_ms=" << h.startedMs << "\n";
    o << "healthy_within_s=" << h.healthyWithinS << "\n";
    for (const auto& a : h.restartCmd)
        o << "restart_arg=" << oneLine(a) << "\n";
    o << "error=" << oneLine(h.error) << "\n";
    return o.str();
}

ps::Outcome<Handover> decodeHandover(const std::string& text) {
    Handover h;
    bool sawFormat = false, sawState = false;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty())
            continue;
        auto eq = line.find('=');
        if (eq == std::string::npos)
            return ps::fail("line without '=': '" + line + "'");
        std::string k = line.substr(0, eq), v = line.substr(eq + 1);
        if (k == "format") {
            if (v != kFormat)
                return ps::fail("format " + v + " is not supported (expected " + kFormat + ")");
            sawFormat = true;
        } else if (k == "state") {
            if (v == "pending")
                h.state = HandoverState::kPending;
            else if (v == "committed")
                h.state = HandoverState::kCommitted;
            else if (v == "failed")
                h.state = HandoverState::kFailed;
            else
                return ps::fail("state: unknown value '" + v + "'");
            sawState = true;
        } else if (k == "tag") {
            h.tag = v;
        } else if (k == "from_tag") {
            h.fromTag = v;
        } else if (k == "previous") {
            h.previousTarget = v;
        } else if (k == "started_ms") {
            auto n = parseInt(k, v);
            if (!n)
                return tl::unexpected(n.error());
            h.startedMs = *n;
        } else if (k == "healthy_within_s") {
            auto n = parseInt(k, v);
            if (!n)
                return tl::unexpected(n.error());
            h.healthyWithinS = *n;
        } else if (k == "restart_arg") {
            h.restartCmd.push_back(v);
        } else if (k == "error") {
            h.error = v;
        }
        // Unknown keys come from a newer writer of the same format: ignored.
    }
    if (!sawFormat || !sawState)
        return ps::fail("incomplete (no format or state line)");
    if (!validTag(h.tag))
        return ps::fail("tag: invalid '" + h.tag + "'");
    return h;
}

ps::Outcome<std::optional<Handover>> readHandover(const std::string& installRoot) {
    const std::string path = handoverPath(installRoot);
    std::ifstream in(path);
    if (!in) {
        if (errno == ENOENT || !ps::fs::exists(path))
            return std::optional<Handover>();
        return ps::fail("hand-over marker '" + path + "': " + std::strerror(errno));
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    auto h = decodeHandover(ss.str());
    if (!h)
        return ps::fail("hand-over marker '" + path + "': " + h.error().message);
    return std::optional<Handover>(std::move(*h));
}

ps::Done writeHandover(const std::string& installRoot, const Handover& h) {
    const std::string path = handoverPath(installRoot);
    const std::string tmp = path + ".tmp";
    const std::string text = encodeHandover(h);
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return ps::fail("hand-over marker '" + tmp + "': " + std::strerror(errno));
    size_t off = 0;
    while (off < text.size()) {
        ssize_t n = ::write(fd, text.data() + off, text.size() - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = errno;
            ::close(fd);
            return ps::fail("hand-over marker '" + tmp + "': write: " + std::strerror(e));
        }
        off += static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0) {
        int e = errno;
        ::close(fd);
        return ps::fail("hand-over marker '" + tmp + "': fsync: " + std::strerror(e));
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0)
        return ps::fail("hand-over marker: rename '" + tmp + "' to '" + path +
                        "': " + std::strerror(errno));
    return ps::fs::fsyncParent(path);
}

ps::Done removeHandover(const std::string& installRoot) {
    const std::string path = handoverPath(installRoot);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        return ps::fail("hand-over marker '" + path + "': remove: " + std::strerror(errno));
    return ps::fs::fsyncParent(path);
}

FileLock::~FileLock() {
    if (fd_ >= 0)
        ::close(fd_);  // closing the only descriptor releases the flock
}

FileLock& FileLock::operator=(FileLock&& o) noexcept {
    if (this != &o) {
        if (fd_ >= 0)
            ::close(fd_);
        fd_ = o.fd_;
        o.fd_ = -1;
    }
    return *this;
}

ps::Outcome<FileLock> FileLock::acquire(const std::string& path) {
    auto fd = openLockFile(path);
    if (!fd)
        return tl::unexpected(fd.error());
    while (::flock(*fd, LOCK_EX) != 0) {
        if (errno == EINTR)
            continue;
        int e = errno;
        ::close(*fd);
        return ps::fail("lock '" + path + "': " + std::strerror(e));
    }
    return FileLock(*fd);
}

ps::Outcome<std::optional<FileLock>> FileLock::tryAcquire(const std::string& path) {
    auto fd = openLockFile(path);
    if (!fd)
        return tl::unexpected(fd.error());
    if (::flock(*fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        ::close(*fd);
        if (e == EWOULDBLOCK)
            return std::optional<FileLock>();
        return ps::fail("lock '" + path + "': " + std::strerror(e));
    }
    return std::optional<FileLock>(FileLock(*fd));
}

bool watchdogAlive(const std::string& installRoot) {
    auto l = FileLock::tryAcquire(watchdogLockPath(installRoot));
    return l && !l->has_value();
}

ps::Outcome<std::optional<Handover>> rollBackPending(const std::string& installRoot,
                                                     const std::string& reason) {
    auto lock = FileLock::acquire(stateLockPath(installRoot));
    if (!lock)
        return tl::unexpected(lock.error());
    auto h = readHandover(installRoot);
    if (!h || !*h || (*h)->state != HandoverState::kPending)
        return h;
    Handover m = **h;
    const std::string link = currentLink(installRoot);
    // Back to the release that was running before; without one (the .deb's agent ran),
    // no current at all, so the launcher starts /usr/bin/raspi-release-agent again.
    bool previousUsable =
        !m.previousTarget.empty() && ps::fs::isDirectory(installRoot + "/" + m.previousTarget);
    ps::Done sw = previousUsable ? ps::fs::switchSymlink(link, m.previousTarget)
                                 : ps::fs::removeSymlink(link);
    if (!sw)
        return ps::fail("rollback of " + m.tag + ": " + sw.error().message);
    m.state = HandoverState::kFailed;
    m.error = reason;
    if (!m.previousTarget.empty() && !previousUsable)
        m.error += "; previous release '" + m.previousTarget +
                   "' was missing, current removed (the packaged agent starts)";
    if (auto w = writeHandover(installRoot, m); !w)
        return tl::unexpected(w.error());
    return std::optional<Handover>(std::move(m));
}

ps::Done runRestart(const std::vector<std::string>& argv, int64_t timeoutMs) {
    if (argv.empty())
        return ps::fail("restart_cmd is empty");
    ps::CommandSpec spec;
    spec.argv = argv;
    spec.timeout = std::chrono::milliseconds(timeoutMs);
    auto r = ps::runCommand(spec);
    if (!r)
        return ps::fail("restart_cmd (" + ps::renderArgv(argv) + "): " + r.error().message);
    if (!r->succeeded())
        return ps::fail("restart_cmd (" + ps::renderArgv(argv) +
                        ") failed: " + r->describeWithOutput());
    return {};
}

int64_t nowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace rra::self
