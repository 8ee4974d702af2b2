// Test helpers: temporary directories, writing files with modes, and running a child
// process (the real agent binary) with captured output and bounded waits.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace rra::test {

namespace fs = std::filesystem;

class TempDir {
  public:
    TempDir() {
        char tmpl[] = "/tmp/rra-test-XXXXXX";
        path_ = ::mkdtemp(tmpl);
        ::chmod(path_.c_str(), 0755);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const fs::path& path() const { return path_; }
    std::string str(const std::string& rel = "") const {
        return rel.empty() ? path_.string() : (path_ / rel).string();
    }

  private:
    fs::path path_;
};

inline void writeFile(const std::string& path, const std::string& content, mode_t mode = 0644) {
    fs::create_directories(fs::path(path).parent_path());
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << content;
    }
    ::chmod(path.c_str(), mode);
}

inline std::string readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Polls `cond` every 20 ms until it holds or `timeout` passes.
inline bool waitUntil(const std::function<bool()>& cond,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
        if (cond())
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return cond();
}

// A child process whose stdout and stderr go to files the test reads.
class Child {
  public:
    Child(const std::vector<std::string>& argv, const std::string& outDir,
          const std::map<std::string, std::string>& env = {}, bool clearEnv = false)
        : outPath_(outDir + "/child.out"), errPath_(outDir + "/child.err") {
        pid_ = ::fork();
        if (pid_ == 0) {
            int out = ::open(outPath_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            int err = ::open(errPath_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            ::dup2(out, 1);
            ::dup2(err, 2);
            int devnull = ::open("/dev/null", O_RDONLY);
            ::dup2(devnull, 0);
            ::setpgid(0, 0);
            // Fakes in the test process hold listening sockets without O_CLOEXEC; a child
            // that inherits one keeps it in the kernel's SO_REUSEPORT group after the fake
            // restarts, and connections land in a backlog nobody accepts.
            ::close_range(3, ~0U, 0);
            sigset_t none;
            sigemptyset(&none);
            sigprocmask(SIG_SETMASK, &none, nullptr);
            if (clearEnv)
                ::clearenv();
            for (const auto& [k, v] : env)
                ::setenv(k.c_str(), v.c_str(), 1);
            std::vector<char*> args;
            for (const auto& a : argv)
                args.push_back(const_cast<char*>(a.c_str()));
            args.push_back(nullptr);
            ::execv(args[0], args.data());
            ::_exit(127);
        }
    }
    ~Child() {
        if (running()) {
            ::kill(pid_, SIGKILL);
            wait(std::chrono::seconds(5));
        }
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    pid_t pid() const { return pid_; }
    bool running() {
        if (exited_)
            return false;
        int st = 0;
        pid_t r = ::waitpid(pid_, &st, WNOHANG);
        if (r == pid_) {
            record(st);
            return false;
        }
        return r == 0;
    }
    void signal(int sig) { ::kill(pid_, sig); }
    // Exit code (or 128+signal) once it ends within `timeout`; nothing otherwise.
    std::optional<int> wait(std::chrono::milliseconds timeout) {
        if (!waitUntil([&] { return !running(); }, timeout))
            return std::nullopt;
        return code_;
    }
    std::string out() const { return readFile(outPath_); }
    std::string err() const { return readFile(errPath_); }

  private:
    void record(int st) {
        exited_ = true;
        code_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    pid_t pid_ = -1;
    std::string outPath_, errPath_;
    bool exited_ = false;
    int code_ = -1;
};

// Runs to completion (bounded) and returns exit code, stdout, stderr.
struct RunResult {
    int code = -1;
    std::string out, err;
};
inline RunResult run(const std::vector<std::string>& argv, const std::string& outDir,
                     const std::map<std::string, std::string>& env = {},
                     std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    Child c(argv, outDir, env);
    auto code = c.wait(timeout);
    RunResult r;
    r.code = code.value_or(-1);
    r.out = c.out();
    r.err = c.err();
    return r;
}

inline bool contains(const std::string& hay, const std::string& needle) {
    return hay.find(needle) != std::string::npos;
}

}  // namespace rra::test
