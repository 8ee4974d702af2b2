// A narrow face of the fake GitHub for the container end-to-end test. It keeps the fake's
// header out of the test's translation unit: fake_github.hpp and fake_proxy.hpp both
// define rra::fakes::TestPki, so one file cannot include both.
#pragma once

#include <memory>
#include <string>

namespace rra::test {

class GithubReleaseServer {
  public:
    GithubReleaseServer();  // plain HTTP on 127.0.0.1, port 0
    ~GithubReleaseServer();
    GithubReleaseServer(const GithubReleaseServer&) = delete;
    GithubReleaseServer& operator=(const GithubReleaseServer&) = delete;

    std::string apiUrl() const;
    // A published release of `repo` with one asset served from `filePath`.
    void addRelease(const std::string& repo, const std::string& tag, const std::string& assetName,
                    const std::string& filePath);
    // Requests whose path starts with `pathPrefix` so far.
    size_t countRequests(const std::string& pathPrefix) const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace rra::test
