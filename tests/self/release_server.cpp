// ReleaseServer over the shared fake GitHub; see release_server.hpp.
#include "self/release_server.hpp"

#include "fakes/github/fake_github.hpp"

namespace rra::test {

struct ReleaseServer::Impl {
    fakes::FakeGithub github;
};

ReleaseServer::ReleaseServer() : impl_(std::make_unique<Impl>()) {}
ReleaseServer::~ReleaseServer() = default;

std::string ReleaseServer::apiUrl() const {
    return impl_->github.apiUrl();
}

void ReleaseServer::addRelease(const std::string& repo, const std::string& tag,
                               const std::string& assetName, const std::string& filePath) {
    fakes::FakeRelease r;
    r.tag = tag;
    fakes::FakeAsset a;
    a.name = assetName;
    a.filePath = filePath;
    r.assets.push_back(a);
    impl_->github.addRelease(repo, r);
}

}  // namespace rra::test
