// The fake GitHub server: request routing, release JSON, asset bodies and scripted misbehaviour.
#include "fakes/github/fake_github.hpp"

#include <Poco/DateTimeFormat.h>
#include <Poco/DateTimeFormatter.h>
#include <Poco/File.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Path.h>
#include <Poco/String.h>
#include <Poco/ThreadPool.h>
#include <Poco/Timestamp.h>
#include <Poco/URI.h>

#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <tuple>

namespace rra::fakes {
namespace {

std::string sha256Hex(const std::function<bool(EVP_MD_CTX*)>& feed) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
    feed(ctx);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx, md, &n);
    EVP_MD_CTX_free(ctx);
    static const char* d = "0123456789abcdef";
    std::string s;
    for (unsigned i = 0; i < n; ++i) {
        s += d[md[i] >> 4];
        s += d[md[i] & 15];
    }
    return s;
}

std::string sha256OfString(const std::string& s) {
    return sha256Hex([&](EVP_MD_CTX* c) { return EVP_DigestUpdate(c, s.data(), s.size()) == 1; });
}

std::string sha256OfFile(const std::string& path) {
    return sha256Hex([&](EVP_MD_CTX* c) {
        std::ifstream in(path, std::ios::binary);
        std::vector<char> buf(1 << 20);
        while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0)
            EVP_DigestUpdate(c, buf.data(), static_cast<size_t>(in.gcount()));
        return true;
    });
}

}  // namespace

struct FakeGithub::State {
    Options opt;
    mutable std::mutex m;
    int64_t nextId = 1000;
    std::map<std::string, std::vector<FakeRelease>> releases;  // by repo
    std::map<std::string, int64_t> rootIds;                    // root-mode file path -> id
    std::map<std::string, std::pair<std::string, std::string>> digestCache;  // path -> (stamp, hex)
    bool redirect = false, range = true;
    int truncateCount = 0;
    uint64_t truncateBytes = 0;
    int htmlCount = 0;
    std::optional<int64_t> date;
    std::optional<std::tuple<int, int, int64_t>> rateHeaders;
    std::deque<std::pair<std::string, ScriptedResponse>> scripts, assetScripts;
    int trickleCount = 0;
    int trickleIntervalMs = 0;

    // Takes one trickle from the budget: the interval between body bytes, or 0.
    int takeTrickle() {
        if (trickleCount <= 0)
            return 0;
        --trickleCount;
        return trickleIntervalMs;
    }
    std::vector<RecordedRequest> recorded;

    std::string apiScheme() const { return opt.tls ? "https" : "http"; }
    std::string assetScheme() const { return opt.tls && opt.assetHostTls ? "https" : "http"; }
    uint16_t apiPort = 0, assetPort = 0;

    std::unique_ptr<Poco::ThreadPool> apiPool, assetPool;
    std::unique_ptr<Poco::Net::HTTPServer> api, assets;

    void finishAsset(FakeAsset& a) {
        if (!a.filePath.empty()) {
            a.size = Poco::File(a.filePath).getSize();
            a.digest = "sha256:" + fileDigest(a.filePath);
        } else {
            a.size = a.content.size();
            a.digest = "sha256:" + sha256OfString(a.content);
        }
        if (a.digestOverride)
            a.digest = *a.digestOverride;
    }

    std::string fileDigest(const std::string& path) {
        Poco::File f(path);
        const std::string stamp = std::to_string(f.getSize()) + "@" +
                                  std::to_string(f.getLastModified().epochMicroseconds());
        auto it = digestCache.find(path);
        if (it != digestCache.end() && it->second.first == stamp)
            return it->second.second;
        std::string hex = sha256OfFile(path);
        digestCache[path] = {stamp, hex};
        return hex;
    }

    // Root mode: releases are directories root/<owner>/<repo>/<tag>/.
    std::vector<FakeRelease> rootReleases(const std::string& repo) {
        std::vector<FakeRelease> out;
        if (opt.root.empty())
            return out;
        Poco::File dir(opt.root + "/" + repo);
        if (!dir.exists() || !dir.isDirectory())
            return out;
        std::vector<std::string> tags;
        dir.list(tags);
        std::sort(tags.begin(), tags.end());
        for (const auto& tag : tags) {
            const std::string tagDir = opt.root + "/" + repo + "/" + tag;
            if (!Poco::File(tagDir).isDirectory())
                continue;
            FakeRelease r;
            r.tag = tag;
            r.id = idFor(tagDir);
            std::vector<std::string> files;
            Poco::File(tagDir).list(files);
            std::sort(files.begin(), files.end());
            for (const auto& f : files) {
                const std::string path = tagDir + "/" + f;
                if (!Poco::File(path).isFile())
                    continue;
                FakeAsset a;
                a.name = f;
                a.filePath = path;
                a.id = idFor(path);
                finishAsset(a);
                r.assets.push_back(std::move(a));
            }
            out.push_back(std::move(r));
        }
        return out;
    }

    int64_t idFor(const std::string& path) {
        auto it = rootIds.find(path);
        if (it != rootIds.end())
            return it->second;
        return rootIds[path] = nextId++;
    }

    std::vector<FakeRelease> allReleases(const std::string& repo) {
        std::vector<FakeRelease> out = rootReleases(repo);
        auto it = releases.find(repo);
        if (it != releases.end())
            out.insert(out.end(), it->second.begin(), it->second.end());
        return out;
    }

    const FakeAsset* findAsset(int64_t id, std::string* repoOut) {
        for (const auto& [repo, rels] : releases)
            for (const auto& r : rels)
                for (const auto& a : r.assets)
                    if (a.id == id) {
                        *repoOut = repo;
                        return &a;
                    }
        return nullptr;
    }

    Poco::JSON::Object::Ptr assetJson(const std::string& repo, const FakeAsset& a) {
        Poco::JSON::Object::Ptr o = new Poco::JSON::Object;
        o->set("id", a.id);
        o->set("name", a.name);
        o->set("size", static_cast<Poco::UInt64>(a.size));
        o->set("state", a.state);
        o->set("content_type", a.contentType);
        o->set("url", apiScheme() + "://" + opt.apiHost + ":" + std::to_string(apiPort) +
                          "/repos/" + repo + "/releases/assets/" + std::to_string(a.id));
        o->set("browser_download_url",
               "https://github.com/" + repo + "/releases/download/" + "TAG/" + a.name);
        if (a.nullDigest)
            o->set("digest", Poco::Dynamic::Var());
        else
            o->set("digest", a.digest);
        return o;
    }

    Poco::JSON::Object::Ptr releaseJson(const std::string& repo, const FakeRelease& r) {
        Poco::JSON::Object::Ptr o = new Poco::JSON::Object;
        o->set("id", r.id);
        o->set("tag_name", r.tag);
        o->set("name", r.tag);
        o->set("draft", r.draft);
        o->set("prerelease", r.prerelease);
        o->set("published_at", "2025-01-01T00:00:00Z");
        Poco::JSON::Array::Ptr arr = new Poco::JSON::Array;
        for (const auto& a : r.assets) {
            auto aj = assetJson(repo, a);
            std::string bdu = aj->getValue<std::string>("browser_download_url");
            bdu.replace(bdu.find("TAG"), 3, r.tag);
            aj->set("browser_download_url", bdu);
            arr->add(aj);
        }
        o->set("assets", arr);
        return o;
    }
};

namespace {

using Poco::Net::HTTPResponse;
using Poco::Net::HTTPServerRequest;
using Poco::Net::HTTPServerResponse;

std::string toJson(const Poco::Dynamic::Var& v) {
    std::ostringstream os;
    if (v.type() == typeid(Poco::JSON::Object::Ptr))
        v.extract<Poco::JSON::Object::Ptr>()->stringify(os);
    else
        v.extract<Poco::JSON::Array::Ptr>()->stringify(os);
    return os.str();
}

class Handler : public Poco::Net::HTTPRequestHandler {
  public:
    Handler(std::shared_ptr<FakeGithub::State> s, bool assetHost)
        : s_(std::move(s)), assetHost_(assetHost) {}

    void handleRequest(HTTPServerRequest& req, HTTPServerResponse& resp) override {
        const std::string path = Poco::URI(req.getURI()).getPath();
        std::unique_lock<std::mutex> lk(s_->m);
        RecordedRequest rec{assetHost_ ? "assets" : "api", req.getMethod(), req.getURI(), {}};
        for (const auto& h : req)
            rec.headers[Poco::toLower(h.first)] = h.second;
        s_->recorded.push_back(rec);
        if (s_->date)
            resp.set("Date", Poco::DateTimeFormatter::format(
                                 Poco::Timestamp::fromEpochTime(static_cast<time_t>(*s_->date)),
                                 Poco::DateTimeFormat::HTTP_FORMAT));

        {
            auto& scripts = assetHost_ ? s_->assetScripts : s_->scripts;
            for (auto it = scripts.begin(); it != scripts.end(); ++it) {
                if (path.compare(0, it->first.size(), it->first) != 0)
                    continue;
                ScriptedResponse sr = it->second;
                scripts.erase(it);
                lk.unlock();
                resp.setStatus(static_cast<HTTPResponse::HTTPStatus>(sr.status));
                for (const auto& h : sr.headers)
                    resp.set(h.first, h.second);
                resp.setContentType("application/json; charset=utf-8");
                resp.setContentLength(static_cast<std::streamsize>(sr.body.size()));
                resp.send() << sr.body;
                return;
            }
        }
        if (!assetHost_) {
            if (s_->rateHeaders) {
                auto [limit, remaining, reset] = *s_->rateHeaders;
                resp.set("x-ratelimit-limit", std::to_string(limit));
                resp.set("x-ratelimit-remaining", std::to_string(remaining));
                resp.set("x-ratelimit-used", std::to_string(limit - remaining));
                resp.set("x-ratelimit-reset", std::to_string(reset));
            }
        }

        // Split the raw path before decoding, as GitHub does: %2F inside a tag is no separator.
        std::vector<std::string> seg;
        std::string cur;
        std::istringstream ss(req.getURI().substr(0, req.getURI().find('?')));
        while (std::getline(ss, cur, '/'))
            if (!cur.empty())
                seg.push_back(decode(cur));

        if (assetHost_) {
            if (seg.size() == 2 && seg[0] == "dl")
                return serveAssetById(seg[1], req, resp, lk);
            return notFound(resp);
        }
        // /repos/{owner}/{repo}/releases[...]
        if (seg.size() < 4 || seg[0] != "repos" || seg[3] != "releases")
            return notFound(resp);
        const std::string repo = seg[1] + "/" + seg[2];
        if (seg.size() == 4) {
            Poco::JSON::Array::Ptr arr = new Poco::JSON::Array;
            auto rels = s_->allReleases(repo);
            for (auto it = rels.rbegin(); it != rels.rend(); ++it)
                arr->add(s_->releaseJson(repo, *it));
            return sendJson(req, resp, lk, toJson(arr));
        }
        if (seg.size() == 6 && seg[4] == "tags") {
            for (const auto& r : s_->allReleases(repo))
                if (r.tag == seg[5])
                    return sendJson(req, resp, lk, toJson(s_->releaseJson(repo, r)));
            return notFound(resp);
        }
        if (seg.size() == 6 && seg[4] == "assets") {
            const std::string accept = req.get("Accept", "");
            if (accept.find("application/octet-stream") == std::string::npos) {
                for (const auto& r : s_->allReleases(repo))
                    for (const auto& a : r.assets)
                        if (std::to_string(a.id) == seg[5])
                            return sendJson(req, resp, lk, toJson(s_->assetJson(repo, a)));
                return notFound(resp);
            }
            if (s_->redirect) {
                resp.setStatus(HTTPResponse::HTTP_FOUND);
                resp.set("Location", s_->assetScheme() + "://" + s_->opt.assetHost + ":" +
                                         std::to_string(s_->assetPort) + "/dl/" + seg[5] +
                                         "?X-Amz-Signature=fake");
                resp.setContentLength(0);
                resp.send();
                return;
            }
            return serveAssetById(seg[5], req, resp, lk);
        }
        notFound(resp);
    }

  private:
    static std::string decode(const std::string& s) {
        std::string out;
        Poco::URI::decode(s, out);
        return out;
    }

    void notFound(HTTPServerResponse& resp) {
        const std::string body =
            R"({"message":"Not Found","documentation_url":"https://docs.github.com/rest"})";
        resp.setStatus(HTTPResponse::HTTP_NOT_FOUND);
        resp.setContentType("application/json; charset=utf-8");
        resp.setContentLength(static_cast<std::streamsize>(body.size()));
        resp.send() << body;
    }

    // Called with the state locked; unlocks it before sending.
    void sendJson(HTTPServerRequest& req, HTTPServerResponse& resp,
                  std::unique_lock<std::mutex>& lk, const std::string& body) {
        const std::string etag = "\"" + sha256OfString(body).substr(0, 32) + "\"";
        const bool notModified = req.get("If-None-Match", "") == etag;
        const int trickle = notModified ? 0 : s_->takeTrickle();  // a 304 has no body to trickle
        lk.unlock();
        resp.set("ETag", etag);
        if (notModified) {
            resp.setStatus(HTTPResponse::HTTP_NOT_MODIFIED);
            resp.setContentLength(0);
            resp.send();
            return;
        }
        resp.setContentType("application/json; charset=utf-8");
        resp.setContentLength(static_cast<std::streamsize>(body.size()));
        std::ostream& out = resp.send();
        if (trickle > 0)
            return trickleOut(out, body.data(), body.size(), trickle);
        out << body;
    }

    // Writes one byte per `intervalMs` until done or the client goes away.
    static void trickleOut(std::ostream& out, const char* p, size_t n, int intervalMs) {
        for (size_t i = 0; i < n && out; ++i) {
            out.write(p + i, 1);
            out.flush();
            std::this_thread::sleep_for(std::chrono::milliseconds(intervalMs));
        }
    }

    void serveAssetById(const std::string& idText, HTTPServerRequest& req, HTTPServerResponse& resp,
                        std::unique_lock<std::mutex>& lk) {
        FakeAsset asset;
        bool found = false;
        int64_t id = 0;
        try {
            id = std::stoll(idText);
        } catch (const std::exception&) {
            return notFound(resp);
        }
        std::string repo;
        if (const FakeAsset* a = s_->findAsset(id, &repo)) {
            asset = *a;
            found = true;
        } else {
            for (const auto& [path, pid] : s_->rootIds)
                if (pid == id && Poco::File(path).isFile()) {
                    asset.filePath = path;
                    asset.size = Poco::File(path).getSize();
                    found = true;
                }
        }
        if (!found)
            return notFound(resp);
        if (s_->htmlCount > 0) {
            --s_->htmlCount;
            lk.unlock();
            const std::string html =
                "<!DOCTYPE html><html><body><h1>Something went wrong</h1></body></html>";
            resp.setContentType("text/html; charset=utf-8");
            resp.setContentLength(static_cast<std::streamsize>(html.size()));
            resp.send() << html;
            return;
        }
        uint64_t truncateAt = UINT64_MAX;
        if (s_->truncateCount > 0) {
            --s_->truncateCount;
            truncateAt = s_->truncateBytes;
        }
        const bool rangeOk = s_->range;
        const int trickle = s_->takeTrickle();
        lk.unlock();

        uint64_t start = 0;
        const std::string range = req.get("Range", "");
        if (rangeOk && range.compare(0, 6, "bytes=") == 0) {
            try {
                start = std::stoull(range.substr(6));
            } catch (const std::exception&) {
                start = 0;
            }
            if (start >= asset.size) {
                resp.setStatus(HTTPResponse::HTTP_REQUESTED_RANGE_NOT_SATISFIABLE);
                resp.set("Content-Range", "bytes */" + std::to_string(asset.size));
                resp.setContentLength(0);
                resp.send();
                return;
            }
            resp.setStatus(HTTPResponse::HTTP_PARTIAL_CONTENT);
            resp.set("Content-Range", "bytes " + std::to_string(start) + "-" +
                                          std::to_string(asset.size - 1) + "/" +
                                          std::to_string(asset.size));
        }
        if (rangeOk)
            resp.set("Accept-Ranges", "bytes");
        resp.setContentType(asset.contentType);
        resp.setContentLength64(static_cast<Poco::Int64>(asset.size - start));
        const uint64_t toSend = std::min(asset.size - start, truncateAt);
        if (truncateAt != UINT64_MAX)
            resp.setKeepAlive(false);
        std::ostream& out = resp.send();
        if (trickle > 0 && asset.filePath.empty()) {
            trickleOut(out, asset.content.data() + start, static_cast<size_t>(toSend), trickle);
        } else if (asset.filePath.empty()) {
            out.write(asset.content.data() + start, static_cast<std::streamsize>(toSend));
        } else {
            std::ifstream in(asset.filePath, std::ios::binary);
            in.seekg(static_cast<std::streamoff>(start));
            std::vector<char> buf(256 * 1024);
            uint64_t left = toSend;
            while (left > 0 && out) {
                in.read(buf.data(),
                        static_cast<std::streamsize>(std::min<uint64_t>(left, buf.size())));
                const auto n = in.gcount();
                if (n <= 0)
                    break;
                out.write(buf.data(), n);
                left -= static_cast<uint64_t>(n);
            }
        }
        out.flush();
    }

    std::shared_ptr<FakeGithub::State> s_;
    bool assetHost_;
};

class Factory : public Poco::Net::HTTPRequestHandlerFactory {
  public:
    Factory(std::shared_ptr<FakeGithub::State> s, bool assetHost)
        : s_(std::move(s)), assetHost_(assetHost) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(const HTTPServerRequest&) override {
        return new Handler(s_, assetHost_);
    }

  private:
    std::shared_ptr<FakeGithub::State> s_;
    bool assetHost_;
};

Poco::Net::ServerSocket listen(const std::string& host, uint16_t port, bool tls,
                               const FakeGithub::Options& opt) {
    Poco::Net::SocketAddress addr(host, port);
    if (!tls)
        return Poco::Net::ServerSocket(addr, 64);
    Poco::Net::Context::Params p;
    p.privateKeyFile = opt.tls->keyFile;
    p.certificateFile = opt.tls->certFile;
    p.verificationMode = Poco::Net::Context::VERIFY_NONE;
    p.loadDefaultCAs = false;
    p.cipherList = "DEFAULT";
    Poco::Net::Context::Ptr ctx = new Poco::Net::Context(Poco::Net::Context::SERVER_USE, p);
    return Poco::Net::SecureServerSocket(addr, 64, ctx);
}

}  // namespace

FakeGithub::FakeGithub() : FakeGithub(Options{}) {}

FakeGithub::FakeGithub(Options options) : state_(std::make_shared<State>()) {
    Poco::Net::initializeSSL();
    state_->opt = std::move(options);
    auto& s = *state_;
    auto make = [&](const std::string& host, uint16_t port, bool tls, bool assetHost,
                    std::unique_ptr<Poco::ThreadPool>& pool,
                    std::unique_ptr<Poco::Net::HTTPServer>& server) -> uint16_t {
        Poco::Net::ServerSocket sock = listen(host, port, tls, s.opt);
        const uint16_t bound = sock.address().port();
        pool = std::make_unique<Poco::ThreadPool>(2, 16);
        auto* params = new Poco::Net::HTTPServerParams;
        params->setMaxThreads(16);
        params->setKeepAlive(true);
        server = std::make_unique<Poco::Net::HTTPServer>(new Factory(state_, assetHost), *pool,
                                                         sock, params);
        server->start();
        return bound;
    };
    s.apiPort = make(s.opt.apiHost, s.opt.apiPort, s.opt.tls.has_value(), false, s.apiPool, s.api);
    s.assetPort =
        make(s.opt.assetHost, 0, s.opt.tls && s.opt.assetHostTls, true, s.assetPool, s.assets);
}

FakeGithub::~FakeGithub() {
    state_->api->stopAll(true);
    state_->assets->stopAll(true);
    state_->apiPool->joinAll();
    state_->assetPool->joinAll();
    state_->api.reset();
    state_->assets.reset();
    Poco::Net::uninitializeSSL();
}

std::string FakeGithub::apiUrl() const {
    return state_->apiScheme() + "://" + state_->opt.apiHost + ":" +
           std::to_string(state_->apiPort);
}
uint16_t FakeGithub::port() const {
    return state_->apiPort;
}
uint16_t FakeGithub::assetPort() const {
    return state_->assetPort;
}

FakeRelease FakeGithub::addFileRelease(const std::string& repo, const std::string& tag,
                                       const std::string& assetName, const std::string& filePath) {
    FakeRelease r;
    r.tag = tag;
    FakeAsset a;
    a.name = assetName;
    a.filePath = filePath;
    r.assets.push_back(a);
    return addRelease(repo, r);
}

FakeRelease FakeGithub::addRelease(const std::string& repo, FakeRelease release) {
    std::lock_guard<std::mutex> lk(state_->m);
    release.id = state_->nextId++;
    for (auto& a : release.assets) {
        a.id = state_->nextId++;
        state_->finishAsset(a);
    }
    state_->releases[repo].push_back(release);
    return release;
}

void FakeGithub::setRedirectDownloads(bool on) {
    std::lock_guard<std::mutex> lk(state_->m);
    state_->redirect = on;
}
void FakeGithub::setRangeSupport(bool on) {
    std::lock_guard<std::mutex> lk(state_->m);
    state_->range = on;
}
void FakeGithub::truncateNext(int count, uint64_t bytes) {
    std::lock_guard<std::mutex> lk(state_->m);
    state_->truncateCount = count;
    state_->truncateBytes = bytes;
}
void FakeGithub::htmlNext(int count) {
    std::lock_guard<std::mutex> lk(state_->m);
    state_->htmlCount = count;
}
void FakeGithub::setDate(std::optional<int64_t> epoch) {
    std::lock_guard<std::mutex> lk(state_->m);
    state_->date = epoch;
}
void FakeGithub::setRateLimitHeaders(int limit, int remaining, int64_t resetEpoch) {
    std::lock_guard<std::mutex> lk(state_->m);
    state_->rateHeaders = std::make_tuple(limit, remaining, resetEpoch);
}
void FakeGithub::script(const std::string& pathPrefix, ScriptedResponse r) {
    std::lock_guard<std::mutex> lk(state_->m);
    state_->scripts.emplace_back(pathPrefix, std::move(r));
}
void FakeGithub::scriptAssetHost(const std::string& pathPrefix, ScriptedResponse r) {
    std::lock_guard<std::mutex> lk(state_->m);
    state_->assetScripts.emplace_back(pathPrefix, std::move(r));
}
void FakeGithub::trickleNext(int count, int intervalMs) {
    std::lock_guard<std::mutex> lk(state_->m);
    state_->trickleCount = count;
    state_->trickleIntervalMs = intervalMs;
}
std::vector<RecordedRequest> FakeGithub::requests() const {
    std::lock_guard<std::mutex> lk(state_->m);
    return state_->recorded;
}
size_t FakeGithub::countRequests(const std::string& pathPrefix) const {
    std::lock_guard<std::mutex> lk(state_->m);
    size_t n = 0;
    for (const auto& r : state_->recorded)
        if (Poco::URI(r.uri).getPath().compare(0, pathPrefix.size(), pathPrefix) == 0)
            ++n;
    return n;
}
void FakeGithub::clearRequests() {
    std::lock_guard<std::mutex> lk(state_->m);
    state_->recorded.clear();
}

}  // namespace rra::fakes
