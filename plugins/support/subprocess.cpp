// Subprocess runner: posix_spawn (safe in a multi-threaded agent), a poll loop that keeps
// the output tail, watches the deadline and the cancellation callback.
#include "support/subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

extern char** environ;

namespace rra::plugin_support {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr size_t kTailMaxBytes = 4096;
constexpr size_t kBufferSoftLimit = 64 * 1024;

// Keeps the last `lines` lines of `text`, at most kTailMaxBytes bytes.
std::string lastLines(const std::string& text, size_t lines) {
    size_t end = text.size();
    while (end > 0 && (text[end - 1] == '\n' || text[end - 1] == '\r'))
        --end;
    size_t pos = end;
    size_t seen = 0;
    while (pos > 0) {
        size_t nl = text.rfind('\n', pos - 1);
        if (nl == std::string::npos) {
            pos = 0;
            break;
        }
        if (++seen >= lines) {
            pos = nl + 1;
            break;
        }
        pos = nl;
    }
    if (lines == 0)
        pos = end;
    if (end - pos > kTailMaxBytes)
        pos = end - kTailMaxBytes;
    return text.substr(pos, end - pos);
}

std::vector<std::string> buildEnvironment(
    const std::vector<std::pair<std::string, std::string>>& extra) {
    std::vector<std::string> env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        std::string entry(*e);
        std::string key = entry.substr(0, entry.find('='));
        bool overridden = false;
        for (const auto& kv : extra)
            overridden = overridden || kv.first == key;
        if (!overridden)
            env.push_back(std::move(entry));
    }
    for (const auto& kv : extra)
        env.push_back(kv.first + "=" + kv.second);
    return env;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
    std::vector<char*> p;
    for (auto& s : strings)
        p.push_back(s.data());
    p.push_back(nullptr);
    return p;
}

// RAII for the spawn attribute objects.
struct SpawnSetup {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    SpawnSetup() {
        posix_spawn_file_actions_init(&actions);
        posix_spawnattr_init(&attr);
    }
    ~SpawnSetup() {
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attr);
    }
};

}  // namespace

std::string CommandResult::describe() const {
    if (timedOut)
        return "timed out after " + std::to_string(elapsed.count()) + " ms";
    if (cancelled)
        return "cancelled";
    if (signal != 0)
        return "killed by signal " + std::to_string(signal);
    return "exit code " + std::to_string(exitCode);
}

std::string CommandResult::describeWithOutput() const {
    if (tail.empty())
        return describe() + " (no output)";
    return describe() + "; output: " + tail;
}

std::string renderArgv(const std::vector<std::string>& argv) {
    std::string out;
    for (const auto& a : argv) {
        if (!out.empty())
            out += ' ';
        if (a.empty() || a.find_first_of(" \t'\"\\$") != std::string::npos)
            out += "'" + a + "'";
        else
            out += a;
    }
    return out;
}

Outcome<CommandResult> runCommand(const CommandSpec& spec) {
    if (spec.argv.empty() || spec.argv[0].empty())
        return fail("empty command");
    const std::string name = spec.argv[0];

    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return fail("'" + name + "': pipe: " + std::strerror(errno));

    std::vector<std::string> args = spec.argv;
    std::vector<std::string> envStrings = buildEnvironment(spec.env);
    std::vector<char*> argvP = pointers(args);
    std::vector<char*> envP = pointers(envStrings);

    SpawnSetup s;
    posix_spawn_file_actions_addopen(&s.actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&s.actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&s.actions, fds[1], STDERR_FILENO);
    if (!spec.cwd.empty())
        posix_spawn_file_actions_addchdir_np(&s.actions, spec.cwd.c_str());
    // The agent's sockets (Poco opens them without O_CLOEXEC: the proxy WebSocket, GitHub
    // connections) must not leak into commands: a restart_cmd that leaves a daemon behind
    // would keep them open for its whole life.
    posix_spawn_file_actions_addclosefrom_np(&s.actions, STDERR_FILENO + 1);
    // Own process group so a timeout kills the whole tree; default signal handling and an
    // empty mask because the agent blocks SIGTERM/SIGHUP in every thread.
    sigset_t empty, all;
    sigemptyset(&empty);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&s.attr, &empty);
    posix_spawnattr_setsigdefault(&s.attr, &all);
    posix_spawnattr_setpgroup(&s.attr, 0);
    posix_spawnattr_setflags(
        &s.attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    const auto start = Clock::now();
    pid_t pid = -1;
    int rc = posix_spawnp(&pid, name.c_str(), &s.actions, &s.attr, argvP.data(), envP.data());
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        std::string where = spec.cwd.empty() ? "" : " (cwd '" + spec.cwd + "')";
        return fail("cannot start '" + name + "'" + where + ": " + std::strerror(rc));
    }
    fcntl(fds[0], F_SETFL, O_NONBLOCK);

    CommandResult result;
    std::string output;
    const auto deadline = start + spec.timeout;
    bool exited = false;
    bool eof = false;
    int status = 0;
    char buf[16384];

    auto drain = [&]() {
        for (;;) {
            ssize_t n = read(fds[0], buf, sizeof buf);
            if (n > 0) {
                output.append(buf, static_cast<size_t>(n));
                if (output.size() > kBufferSoftLimit)
                    output = lastLines(output, spec.tailLines + 1);
                continue;
            }
            if (n == 0)
                eof = true;
            if (n < 0 && errno == EINTR)
                continue;
            return;
        }
    };

    while (!exited) {
        pollfd p{fds[0], POLLIN, 0};
        if (!eof) {
            poll(&p, 1, 50);
            drain();
        } else {
            std::this_thread::sleep_for(milliseconds(20));
        }
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            exited = true;
            break;
        }
        const bool late = Clock::now() >= deadline;
        const bool stop = spec.cancelled && spec.cancelled();
        if (late || stop) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            result.timedOut = late && !stop;
            result.cancelled = stop;
            exited = true;
        }
    }
    // What the command wrote before exiting; a background child that keeps the pipe open
    // does not hold us up.
    drain();
    close(fds[0]);

    result.elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
    if (WIFEXITED(status))
        result.exitCode = WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        result.signal = WTERMSIG(status);
    result.tail = lastLines(output, spec.tailLines);
    return result;
}

Done retryUntilSuccess(const std::string& what, CommandSpec spec, milliseconds budget,
                       milliseconds interval) {
    const auto start = Clock::now();
    const auto deadline = start + budget;
    int attempts = 0;
    std::string last = "never ran";
    for (;;) {
        auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
        if (left.count() <= 0 && attempts > 0)
            break;
        CommandSpec attempt = spec;
        attempt.timeout = std::max(milliseconds(1), std::min(spec.timeout, left));
        ++attempts;
        auto r = runCommand(attempt);
        if (!r)
            return fail(FailureKind::kError, what + ": " + r.error().message);
        if (r->succeeded())
            return {};
        if (r->cancelled)
            return fail(FailureKind::kCancelled, what + ": cancelled");
        last = r->describeWithOutput();
        const auto next = Clock::now() + interval;
        if (next >= deadline)
            break;
        while (Clock::now() < next) {
            if (spec.cancelled && spec.cancelled())
                return fail(FailureKind::kCancelled, what + ": cancelled");
            std::this_thread::sleep_for(milliseconds(50));
        }
    }
    return fail(FailureKind::kTimeout, what + " did not succeed within " +
                                           std::to_string(budget.count()) + " ms (" +
                                           std::to_string(attempts) + " attempts): " + last);
}

}  // namespace rra::plugin_support
