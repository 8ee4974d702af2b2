// fake-github: the fake GitHub server as a program, for demos and daemon integration tests.
// Serves ROOT/<owner>/<repo>/<tag>/<asset files>, prints the API port on stdout, runs until
// SIGINT/SIGTERM. The root is read again on every request, so releases may be added while
// it runs.
//
// --throttle-every N: about every Nth API request (/repos/...) is answered with a GitHub rate
// limit instead, alternating a primary limit (403, x-ratelimit-remaining: 0, x-ratelimit-reset
// one second ahead) and a secondary one (429, retry-after: 1); `--throttle-kind 403|429` uses
// one kind only. A watcher thread counts the recorded requests and scripts the next one, so
// under concurrent requests the limited one is the first to arrive after the count is reached.
// Each scripted limit is logged on stderr as "fake-github: throttle #K ...".
#include "fakes/github/fake_github.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace {

int usage() {
    std::cerr << "usage: fake-github --root DIR [--port N] [--bind ADDR] [--redirect]\n"
                 "                   [--tls-dir DIR]   (HTTPS; writes DIR/ca.pem for clients)\n"
                 "                   [--throttle-every N [--throttle-kind 403|429|both]]\n";
    return 64;
}

// Scripts a rate-limit answer for about every Nth API request until stopped.
class Throttler {
  public:
    Throttler(rra::fakes::FakeGithub& server, size_t every, std::string kind)
        : server_(server), every_(every), kind_(std::move(kind)) {
        thread_ = std::thread([this] { run(); });
    }
    ~Throttler() {
        {
            std::lock_guard<std::mutex> lk(m_);
            stop_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }

  private:
    void run() {
        const std::string prefix = "/repos/";
        size_t next = every_;
        int count = 0;
        std::unique_lock<std::mutex> lk(m_);
        while (!cv_.wait_for(lk, std::chrono::milliseconds(50), [this] { return stop_; })) {
            // Requests seen so far; the scripted answer goes to the next one to arrive.
            const size_t seen = server_.countRequests(prefix);
            if (seen + 1 < next)
                continue;
            ++count;
            const bool primary = kind_ == "403" || (kind_ == "both" && count % 2 == 1);
            rra::fakes::ScriptedResponse r;
            if (primary) {
                r.status = 403;
                const auto reset = static_cast<long long>(std::time(nullptr)) + 1;
                r.headers = {{"x-ratelimit-limit", "5000"},
                             {"x-ratelimit-remaining", "0"},
                             {"x-ratelimit-used", "5000"},
                             {"x-ratelimit-reset", std::to_string(reset)}};
                r.body = R"({"message":"API rate limit exceeded for user ID 1.",)"
                         R"("documentation_url":"https://docs.github.com/rest/rate-limit"})";
            } else {
                r.status = 429;
                r.headers = {{"retry-after", "1"}};
                r.body = R"({"message":"You have exceeded a secondary rate limit.",)"
                         R"("documentation_url":"https://docs.github.com/rest/rate-limit"})";
            }
            server_.script(prefix, r);
            std::cerr << "fake-github: throttle #" << count << " after " << seen
                      << " API requests: "
                      << (primary ? "403 x-ratelimit-remaining: 0" : "429 retry-after: 1")
                      << std::endl;
            next = seen + 1 + every_;
        }
    }

    rra::fakes::FakeGithub& server_;
    const size_t every_;
    const std::string kind_;
    std::mutex m_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
    rra::fakes::FakeGithub::Options opt;
    bool redirect = false;
    std::string tlsDir;
    long throttleEvery = 0;
    std::string throttleKind = "both";
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
        const char* v = nullptr;
        if (a == "--root" && (v = value())) {
            opt.root = v;
        } else if (a == "--port" && (v = value())) {
            opt.apiPort = static_cast<uint16_t>(std::stoi(v));
        } else if (a == "--bind" && (v = value())) {
            opt.apiHost = v;
        } else if (a == "--tls-dir" && (v = value())) {
            tlsDir = v;
        } else if (a == "--redirect") {
            redirect = true;
        } else if (a == "--throttle-every" && (v = value())) {
            char* end = nullptr;
            throttleEvery = std::strtol(v, &end, 10);
            if (*v == '\0' || *end != '\0' || throttleEvery < 1)
                return usage();
        } else if (a == "--throttle-kind" && (v = value())) {
            throttleKind = v;
            if (throttleKind != "403" && throttleKind != "429" && throttleKind != "both")
                return usage();
        } else {
            return usage();
        }
    }
    if (opt.root.empty())
        return usage();

    // Block the stop signals before the server threads exist, then wait for one.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    try {
        if (!tlsDir.empty())
            opt.tls = rra::fakes::TestPki::generate(tlsDir);
        rra::fakes::FakeGithub server(opt);
        server.setRedirectDownloads(redirect);
        std::cout << server.port() << std::endl;
        std::cerr << "fake-github: serving " << opt.root << " at " << server.apiUrl() << std::endl;
        std::unique_ptr<Throttler> throttler;
        if (throttleEvery > 0)
            throttler = std::make_unique<Throttler>(server, static_cast<size_t>(throttleEvery),
                                                    throttleKind);
        int sig = 0;
        sigwait(&set, &sig);
        throttler.reset();
    } catch (const std::exception& e) {
        std::cerr << "fake-github: " << e.what() << std::endl;
        return 1;
    }
    return 0;
}
