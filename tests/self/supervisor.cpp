// rra-test-supervisor: what systemd does for the agent's unit, in small, for the
// self-update tests. Runs COMMAND (the launcher), restarts it 300 ms after it exits
// (Restart=always), restarts it on SIGUSR1 (what `systemctl --no-block restart` asks for:
// SIGTERM, SIGKILL after 10 s, start again) and stops it on SIGTERM.
//
//   rra-test-supervisor DIR COMMAND [ARGS...]
//
// DIR receives supervisor.pid, agent.pid (the running child), starts.log (one line per
// start: "<n> <pid>") and agent.log (the children's stdout and stderr).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

void writeText(const std::string& path, const std::string& text, bool append = false) {
    const std::string tmp = path + ".tmp";
    if (append) {
        std::ofstream(path, std::ios::app) << text;
        return;
    }
    std::ofstream(tmp, std::ios::trunc) << text;
    std::rename(tmp.c_str(), path.c_str());
}

pid_t start(const std::string& dir, const std::vector<std::string>& cmd, int n) {
    pid_t pid = ::fork();
    if (pid == 0) {
        int log = ::open((dir + "/agent.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        int in = ::open("/dev/null", O_RDONLY);
        ::dup2(in, 0);
        ::dup2(log, 1);
        ::dup2(log, 2);
        ::setpgid(0, 0);
        ::close_range(3, ~0U, 0);  // the agent must not inherit our descriptors
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        std::vector<char*> argv;
        for (const auto& a : cmd)
            argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        std::fprintf(stderr, "supervisor: exec %s: %s\n", argv[0], std::strerror(errno));
        ::_exit(127);
    }
    if (pid > 0) {
        writeText(dir + "/agent.pid", std::to_string(pid) + "\n");
        writeText(dir + "/starts.log", std::to_string(n) + " " + std::to_string(pid) + "\n", true);
    }
    return pid;
}

// Waits up to `budget` for `pid` to exit; true when it did.
bool reap(pid_t pid, std::chrono::milliseconds budget) {
    auto end = Clock::now() + budget;
    while (Clock::now() < end) {
        int st = 0;
        pid_t r = ::waitpid(pid, &st, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD))
            return true;
        ::usleep(20'000);
    }
    return false;
}

void stop(pid_t pid) {
    if (pid <= 0)
        return;
    ::kill(pid, SIGTERM);
    if (!reap(pid, std::chrono::seconds(10))) {
        ::kill(-pid, SIGKILL);
        ::kill(pid, SIGKILL);
        reap(pid, std::chrono::seconds(5));
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: rra-test-supervisor DIR COMMAND [ARGS...]\n");
        return 64;
    }
    const std::string dir = argv[1];
    std::vector<std::string> cmd(argv + 2, argv + argc);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    ::sigprocmask(SIG_BLOCK, &set, nullptr);
    writeText(dir + "/supervisor.pid", std::to_string(::getpid()) + "\n");

    int starts = 0;
    pid_t child = start(dir, cmd, ++starts);
    bool restartPending = false;
    Clock::time_point restartAt{};
    while (true) {
        timespec ts{0, 50'000'000};
        int sig = ::sigtimedwait(&set, nullptr, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            stop(child);
            return 0;
        }
        if (sig == SIGUSR1) {
            stop(child);
            child = start(dir, cmd, ++starts);
            restartPending = false;
            continue;
        }
        if (child > 0) {
            int st = 0;
            if (::waitpid(child, &st, WNOHANG) == child) {
                child = -1;
                restartPending = true;
                restartAt = Clock::now() + std::chrono::milliseconds(300);
            }
        }
        if (child <= 0 && restartPending && Clock::now() >= restartAt) {
            child = start(dir, cmd, ++starts);
            restartPending = false;
        }
    }
}
