// rra-self-watchdog: the process that outlives the agent during a self-update. It asks the
// supervisor to restart the agent (now on the new release), waits `healthy_within_s` for
// the new agent to confirm (marker committed), and otherwise puts the previous release
// back, marks the update failed and restarts again so the old agent reports it.
//
//   rra-self-watchdog --install-root=DIR [--restart-first] [--detach=auto|systemd-run|fork|no]
//                     [--log=FILE] [--poll-ms=N]
#include "self/handover.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace rra::self;
using Steady = std::chrono::steady_clock;

struct Options {
    std::string installRoot;
    bool restartFirst = false;
    std::string detach = "no";
    std::string logFile;
    int pollMs = 200;
};

void logLine(const std::string& msg) {
    char ts[32];
    std::time_t t = std::time(nullptr);
    std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", std::localtime(&t));
    std::fprintf(stderr, "%s rra-self-watchdog[%d]: %s\n", ts, static_cast<int>(::getpid()),
                 msg.c_str());
    std::fflush(stderr);
}

bool parse(int argc, char** argv, Options& o) {
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto val = [&](const char* name) -> const char* {
            size_t n = std::strlen(name);
            return a.compare(0, n, name) == 0 ? argv[i] + n : nullptr;
        };
        if (const char* v = val("--install-root="))
            o.installRoot = v;
        else if (a == "--restart-first")
            o.restartFirst = true;
        else if (const char* v = val("--detach="))
            o.detach = v;
        else if (const char* v = val("--log="))
            o.logFile = v;
        else if (const char* v = val("--poll-ms="))
            o.pollMs = std::max(10, std::atoi(v));
        else {
            std::fprintf(stderr, "rra-self-watchdog: unknown argument '%s'\n", argv[i]);
            return false;
        }
    }
    if (o.installRoot.empty() || o.installRoot[0] != '/') {
        std::fprintf(stderr, "rra-self-watchdog: --install-root=ABSOLUTE_DIR is required\n");
        return false;
    }
    if (o.detach != "no" && o.detach != "fork" && o.detach != "systemd-run" && o.detach != "auto") {
        std::fprintf(stderr, "rra-self-watchdog: --detach must be auto, systemd-run, fork or no\n");
        return false;
    }
    return true;
}

std::string selfPath(const char* argv0) {
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0)
        return argv0;
    buf[n] = '\0';
    return buf;
}

std::vector<std::string> childArgs(const std::string& self, const Options& o) {
    std::vector<std::string> a{self, "--install-root=" + o.installRoot, "--detach=no",
                               "--poll-ms=" + std::to_string(o.pollMs)};
    if (o.restartFirst)
        a.push_back("--restart-first");
    if (!o.logFile.empty())
        a.push_back("--log=" + o.logFile);
    return a;
}

bool haveSystemd() {
    struct stat st {};
    return ::stat("/run/systemd/system", &st) == 0 && S_ISDIR(st.st_mode);
}

// Standard streams to the log (or /dev/null), so nothing keeps the caller's pipes open.
void redirectStdio(const std::string& logFile) {
    int in = ::open("/dev/null", O_RDONLY);
    int out = logFile.empty() ? -1 : ::open(logFile.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (out < 0)
        out = ::open("/dev/null", O_WRONLY);
    if (in >= 0) {
        ::dup2(in, 0);
        ::close(in);
    }
    if (out >= 0) {
        ::dup2(out, 1);
        ::dup2(out, 2);
        if (out > 2)
            ::close(out);
    }
}

// Under systemd the agent's cgroup is killed when the unit restarts, a forked child
// included: the watchdog then runs as a transient unit of its own.
int detachSystemdRun(const std::string& self, const Options& o) {
    std::vector<std::string> a{"systemd-run", "--no-block", "--collect", "--quiet",
                               "--description=raspi-release-agent self-update watchdog"};
    for (const auto& x : childArgs(self, o))
        a.push_back(x);
    std::vector<char*> argv;
    for (auto& s : a)
        argv.push_back(s.data());
    argv.push_back(nullptr);
    ::execvp("systemd-run", argv.data());
    std::fprintf(stderr, "rra-self-watchdog: exec systemd-run: %s\n", std::strerror(errno));
    return 1;
}

// Double fork + setsid: the watchdog leaves the agent's session and process group, so
// the supervisor stopping the agent (or a kill of its group) does not reach it. Returns
// -1 in the watchdog, the exit code in the caller.
int detachFork(const std::string& logFile) {
    pid_t child = ::fork();
    if (child < 0) {
        std::fprintf(stderr, "rra-self-watchdog: fork: %s\n", std::strerror(errno));
        return 1;
    }
    if (child > 0) {
        int st = 0;
        while (::waitpid(child, &st, 0) < 0 && errno == EINTR) {
        }
        return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
    }
    ::setsid();
    pid_t grandchild = ::fork();
    if (grandchild != 0)
        ::_exit(grandchild < 0 ? 1 : 0);
    redirectStdio(logFile);
    for (int fd = 3; fd < 1024; ++fd)
        ::close(fd);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGHUP, SIG_IGN);
    ::signal(SIGPIPE, SIG_IGN);
    if (::chdir("/") != 0) {
        // harmless: every path used is absolute
    }
    return -1;
}

int restartAgent(const Handover& h, const std::string& why) {
    logLine("restarting the agent (" + why + ")");
    if (auto r = runRestart(h.restartCmd, 60'000); !r) {
        logLine(r.error().message);
        return 1;
    }
    return 0;
}

int watch(const Options& o) {
    auto lock = FileLock::tryAcquire(watchdogLockPath(o.installRoot));
    if (!lock) {
        logLine(lock.error().message);
        return 1;
    }
    if (!lock->has_value()) {
        logLine("another watchdog is already watching " + o.installRoot);
        return 0;
    }
    auto first = readHandover(o.installRoot);
    if (!first) {
        logLine(first.error().message);
        return 1;
    }
    if (!*first || (*first)->state != HandoverState::kPending) {
        logLine("no self-update on probation in " + o.installRoot);
        return 0;
    }
    const Handover h = **first;
    logLine("watching " + h.tag + " (from " + (h.fromTag.empty() ? "nothing" : h.fromTag) +
            "): healthy within " + std::to_string(h.healthyWithinS) + " s");
    if (o.restartFirst) {
        logLine("restarting the agent (switch to " + h.tag + ")");
        if (auto r = runRestart(h.restartCmd, 60'000); !r) {
            // The old agent still runs: put its release back at once rather than let a
            // later restart (reboot) start an agent nobody watches.
            logLine(r.error().message);
            auto rolled = rollBackPending(o.installRoot, r.error().message);
            if (!rolled)
                logLine("rollback failed: " + rolled.error().message);
            return 1;
        }
    }

    // Monotonic time from this process's start: a watchdog resumed after a reboot gives
    // the new agent a full probation, never one cut short by a wall-clock jump.
    const auto deadline = Steady::now() + std::chrono::seconds(h.healthyWithinS);
    while (Steady::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(o.pollMs));
        auto now = readHandover(o.installRoot);
        if (!now) {
            logLine(now.error().message);
            continue;
        }
        if (!*now || (*now)->tag != h.tag) {
            logLine("hand-over marker for " + h.tag + " is gone; nothing left to watch");
            return 0;
        }
        if ((*now)->state == HandoverState::kCommitted) {
            logLine(h.tag + " confirmed healthy; self-update committed");
            auto sl = FileLock::acquire(stateLockPath(o.installRoot));
            auto again = readHandover(o.installRoot);
            if (again && *again && (*again)->tag == h.tag &&
                (*again)->state == HandoverState::kCommitted)
                if (auto rm = removeHandover(o.installRoot); !rm)
                    logLine(rm.error().message);
            return 0;
        }
        if ((*now)->state == HandoverState::kFailed) {
            logLine(h.tag + " already marked failed: " + (*now)->error);
            return 0;
        }
    }
    const std::string reason = "the new agent " + h.tag +
                               " did not start, connect to the proxy and confirm within " +
                               std::to_string(h.healthyWithinS) + " s";
    auto rolled = rollBackPending(o.installRoot, reason);
    if (!rolled) {
        logLine("rollback failed: " + rolled.error().message);
        return 1;
    }
    if (!*rolled || (*rolled)->tag != h.tag) {
        logLine("hand-over marker changed meanwhile; nothing to roll back");
        return 0;
    }
    if ((*rolled)->state != HandoverState::kFailed || (*rolled)->error != reason) {
        logLine(h.tag + " reached state " + toString((*rolled)->state) + " at the deadline");
        return 0;
    }
    logLine(reason + "; current back on " +
            (h.previousTarget.empty() ? std::string("the packaged agent") : h.previousTarget));
    return restartAgent(h, "rollback");
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    if (!parse(argc, argv, o))
        return 64;  // EX_USAGE
    if (o.detach == "auto")
        o.detach = haveSystemd() ? "systemd-run" : "fork";
    if (o.detach == "systemd-run")
        return detachSystemdRun(selfPath(argv[0]), o);
    if (o.detach == "fork") {
        int rc = detachFork(o.logFile);
        if (rc >= 0)
            return rc;
    } else if (!o.logFile.empty()) {
        redirectStdio(o.logFile);
    }
    return watch(o);
}
