// The fake GitHub behind a narrow interface, compiled on its own: fake_github.hpp and
// fake_proxy.hpp each define an rra::fakes::TestPki and cannot share a translation unit.
#pragma once

#include <memory>
#include <string>

namespace rra::test {

class ReleaseServer {
  public:
    ReleaseServer();
    ~ReleaseServer();
    ReleaseServer(const ReleaseServer&) = delete;
    ReleaseServer& operator=(const ReleaseServer&) = delete;

    std::string apiUrl() const;
    // Publishes `tag` of `repo` with one asset served from `filePath`.
    void addRelease(const std::string& repo, const std::string& tag, const std::string& assetName,
                    const std::string& filePath);

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace rra::test
