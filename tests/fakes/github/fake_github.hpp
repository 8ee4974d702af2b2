// A fake GitHub Releases API for tests: Poco HTTP(S) servers on loopback port 0 (the API on
// 127.0.0.1, a second "asset host" on 127.0.0.2) that serve registered releases or a directory
// tree, record every request with its headers, and script rate limits, redirects, truncated
// bodies, HTML-instead-of-bytes, Range and ETags.
#pragma once

#include "fakes/pki/test_pki.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace rra::fakes {

struct FakeAsset {
    std::string name;
    std::string content;   // the bytes, or
    std::string filePath;  // a file served from disk (large assets)
    std::string contentType = "application/octet-stream";
    std::string state = "uploaded";
    std::optional<std::string> digestOverride;  // e.g. a wrong "sha256:..." to provoke a mismatch
    bool nullDigest = false;                    // an older asset: "digest": null
    // Filled in by the server.
    int64_t id = 0;
    uint64_t size = 0;
    std::string digest;
};

struct FakeRelease {
    std::string tag;
    bool draft = false;
    bool prerelease = false;
    std::vector<FakeAsset> assets;
    int64_t id = 0;  // filled in by the server
};

struct RecordedRequest {
    std::string server;                          // "api" or "assets"
    std::string method, uri;                     // uri: the raw request target, as sent
    std::map<std::string, std::string> headers;  // names in lower case
    bool has(const std::string& lowerName) const { return headers.count(lowerName) > 0; }
    std::string header(const std::string& lowerName) const {
        auto it = headers.find(lowerName);
        return it == headers.end() ? std::string() : it->second;
    }
};

struct ScriptedResponse {
    int status = 200;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
};

class FakeGithub {
  public:
    struct Options {
        std::optional<TestPki> tls;  // HTTPS when set
        bool assetHostTls = true;    // with `tls`: false makes the asset host plain http
        std::string apiHost = "127.0.0.1";
        std::string assetHost = "127.0.0.2";
        uint16_t apiPort = 0;
        std::string root;  // serve root/<owner>/<repo>/<tag>/<files> besides registered releases
    };

    FakeGithub();
    explicit FakeGithub(Options options);
    ~FakeGithub();
    FakeGithub(const FakeGithub&) = delete;
    FakeGithub& operator=(const FakeGithub&) = delete;

    std::string apiUrl() const;  // scheme://127.0.0.1:port
    uint16_t port() const;
    uint16_t assetPort() const;

    // Registers a release of `repo` ("owner/name"); returns it with ids, sizes and digests.
    FakeRelease addRelease(const std::string& repo, FakeRelease release);
    // Shorthand: a published release of `repo` with one asset served from `filePath`.
    FakeRelease addFileRelease(const std::string& repo, const std::string& tag,
                               const std::string& assetName, const std::string& filePath);

    // Behaviours.
    void setRedirectDownloads(bool on);            // asset API answers 302 to the asset host
    void setRangeSupport(bool on);                 // default on
    void truncateNext(int count, uint64_t bytes);  // next `count` bodies stop after `bytes`
    void htmlNext(int count);                      // next `count` downloads get an HTML page
    void setDate(std::optional<int64_t> epoch);    // the Date header of every response
    void setRateLimitHeaders(int limit, int remaining, int64_t resetEpoch);
    // The next request whose path starts with `pathPrefix` gets `r` instead (FIFO, once each).
    void script(const std::string& pathPrefix, ScriptedResponse r);
    // The same on the asset host (paths /dl/<id>).
    void scriptAssetHost(const std::string& pathPrefix, ScriptedResponse r);
    // The next `count` release JSON or asset bodies (of registered, in-memory assets) are sent
    // one byte every `intervalMs`: a stalled server for the client's deadlines.
    void trickleNext(int count, int intervalMs);

    std::vector<RecordedRequest> requests() const;
    size_t countRequests(const std::string& pathPrefix) const;
    void clearRequests();

    struct State;

  private:
    std::shared_ptr<State> state_;
};

}  // namespace rra::fakes
