// Adapters between modules that do not know each other: the engine's Fetcher over the
// GitHub client, its TelemetrySink over the proxy client.
#pragma once

#include "deploy/ports.hpp"
#include "github/github_client.hpp"
#include "proxy/proxy_client.hpp"

#include <atomic>
#include <string>

namespace rra::app {

class GithubFetcher final : public deploy::Fetcher {
  public:
    GithubFetcher(github::GithubClient& client, std::string arch)
        : client_(client), arch_(std::move(arch)) {}

    void setArch(const std::string& arch) {
        std::lock_guard<std::mutex> lk(m_);
        arch_ = arch;
    }

    Expected<deploy::Artifact> fetch(const config::ComponentConfig& c, const std::string& tag,
                                     const CancelToken& cancel) override {
        github::AssetRequest req;
        req.component = c.name;
        req.repo = c.repo;
        req.tag = tag;
        req.assetPattern = c.asset;
        {
            std::lock_guard<std::mutex> lk(m_);
            req.arch = arch_;
        }
        // A pinned tag is applied even when it is a pre-release: the operator named it.
        req.allowPrerelease = c.allowPrerelease || (c.pin && *c.pin == tag);
        auto a = client_.fetch(req, cancel);
        if (!a)
            return fail(a.error());
        return deploy::Artifact{a->path, a->size, a->sha256};
    }

    void discard(const config::ComponentConfig&, const std::string&,
                 const deploy::Artifact& a) override {
        client_.discard(github::Artifact{a.path, a.size, a.sha256});
    }

  private:
    github::GithubClient& client_;
    std::mutex m_;
    std::string arch_;
};

class ProxyTelemetry final : public deploy::TelemetrySink {
  public:
    explicit ProxyTelemetry(proxy::ProxyClient& client) : client_(client) {}
    void send(TelemetryEvent event) override { client_.sendTelemetry(std::move(event)); }

  private:
    proxy::ProxyClient& client_;
};

}  // namespace rra::app
