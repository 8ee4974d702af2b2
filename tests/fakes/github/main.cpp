// fake-github: the fake GitHub server as a program, for demos and daemon integration tests.
// Serves ROOT/<owner>/<repo>/<tag>/<asset files>, prints the API port on stdout, runs until
// SIGINT/SIGTERM.
#include "fakes/github/fake_github.hpp"

#include <csignal>
#include <cstring>
#include <iostream>
#include <string>

namespace {

int usage() {
    std::cerr << "usage: fake-github --root DIR [--port N] [--bind ADDR] [--redirect]\n"
                 "                   [--tls-dir DIR]   (HTTPS; writes DIR/ca.pem for clients)\n";
    return 64;
}

}  // namespace

int main(int argc, char** argv) {
    rra::fakes::FakeGithub::Options opt;
    bool redirect = false;
    std::string tlsDir;
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
        int sig = 0;
        sigwait(&set, &sig);
    } catch (const std::exception& e) {
        std::cerr << "fake-github: " << e.what() << std::endl;
        return 1;
    }
    return 0;
}
