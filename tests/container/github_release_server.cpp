// GithubReleaseServer over the fake GitHub (see github_release_server.hpp).
#include "container/github_release_server.hpp"

#include "fakes/github/fake_github.hpp"

namespace rra::test {

struct GithubReleaseServer::Impl {
    fakes::FakeGithub github;
};

GithubReleaseServer::GithubReleaseServer() : impl_(std::make_unique<Impl>()) {}
GithubReleaseServer::~GithubReleaseServer() = default;

std::string GithubReleaseServer::apiUrl() const {
    return impl_->github.apiUrl();
}

void GithubReleaseServer::addRelease(const std::string& repo, const std::string& tag,
                                     const std::string& assetName, const std::string& filePath) {
    fakes::FakeRelease r;
    r.tag = tag;
    fakes::FakeAsset a;
    a.name = assetName;
    a.filePath = filePath;
    a.contentType = "application/x-tar";
    r.assets.push_back(a);
    impl_->github.addRelease(repo, r);
}

size_t GithubReleaseServer::countRequests(const std::string& pathPrefix) const {
    return impl_->github.countRequests(pathPrefix);
}

}  // namespace rra::test
