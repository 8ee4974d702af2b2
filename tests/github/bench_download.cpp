// bench_download: downloads one asset with GithubClient (as the agent does) and prints its
// throughput and the process's peak RSS. bench/download runs it beside curl + openssl dgst.
#include "github/github_client.hpp"

#include <Poco/Net/SSLManager.h>

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
    std::string api, repo, tag, asset, work, ca;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--api")
            api = v;
        else if (k == "--repo")
            repo = v;
        else if (k == "--tag")
            tag = v;
        else if (k == "--asset")
            asset = v;
        else if (k == "--work")
            work = v;
        else if (k == "--ca")
            ca = v;
    }
    if (api.empty() || repo.empty() || tag.empty() || asset.empty() || work.empty()) {
        std::cerr << "usage: bench_download --api URL --repo O/R --tag T --asset NAME --work DIR"
                     " [--ca FILE]\n";
        return 64;
    }
    Poco::Net::initializeSSL();
    rra::config::GithubSection cfg;
    cfg.apiUrl = api;
    if (!ca.empty())
        cfg.caFile = ca;
    cfg.maxAttempts = 1;
    rra::SystemRandom random;
    rra::github::GithubClient client(cfg, work, rra::SystemClock::instance(), random);
    rra::CancelToken cancel;
    const auto t0 = std::chrono::steady_clock::now();
    auto a = client.fetch({"bench", repo, tag, asset, "amd64", true}, cancel);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!a) {
        std::cerr << "bench_download: " << a.error().message() << "\n";
        return 1;
    }
    struct rusage ru {};
    getrusage(RUSAGE_SELF, &ru);
    std::printf("%llu %.3f %ld %s\n", static_cast<unsigned long long>(a->size), secs,
                static_cast<long>(ru.ru_maxrss), a->sha256.c_str());
    client.discard(*a);
    Poco::Net::uninitializeSSL();
    return 0;
}
