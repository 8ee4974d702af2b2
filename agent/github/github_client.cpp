// GitHub Releases client: HTTP(S) I/O, the retry loop around backoff.hpp's decisions, the
// client-wide rate-limit pause, the ETag cache and the verified streaming download.
#include "github/github_client.hpp"

#include "common/version.hpp"
#include "github/backoff.hpp"
#include "github/release.hpp"

#include <Poco/Delegate.h>
#include <Poco/Exception.h>
#include <Poco/Logger.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/IPAddress.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SSLException.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/Net/VerificationErrorArgs.h>
#include <Poco/String.h>
#include <Poco/URI.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <vector>

namespace rra::github {
namespace {

constexpr int kMaxRedirects = 5;
constexpr size_t kChunk = 256 * 1024;
constexpr size_t kGather = 128 * 1024;
constexpr uint64_t kWritebackChunk = 8 * 1024 * 1024;
constexpr size_t kMaxJsonBytes = 16 * 1024 * 1024;
constexpr int kTimeoutS = 30;

Poco::Logger& log() {
    return Poco::Logger::get("github");
}

// ---- TLS "certificate not yet valid" detection -------------------------------------------
// OpenSSL reports a failed handshake as "certificate verify failed" only; the reason comes
// through Poco's verification event on the handshaking thread, so we note it there.
thread_local int tlsLastVerifyError = 0;

struct VerifyErrorListener {
    void onError(const void*, Poco::Net::VerificationErrorArgs& args) {
        tlsLastVerifyError = args.errorNumber();
        // Never ignore the error: verification stays strict whatever else listens.
    }
};

void installVerifyListener() {
    static std::once_flag once;
    static VerifyErrorListener listener;
    std::call_once(once, [] {
        Poco::Net::SSLManager::instance().ClientVerificationError +=
            Poco::delegate(&listener, &VerifyErrorListener::onError);
    });
}

// ---- small helpers ------------------------------------------------------------------------
struct Origin {
    std::string scheme, host;
    unsigned port = 0;
    bool operator==(const Origin& o) const {
        return scheme == o.scheme && host == o.host && port == o.port;
    }
};

Origin originOf(const Poco::URI& u) {
    return {Poco::toLower(u.getScheme()), Poco::toLower(u.getHost()), u.getPort()};
}

std::string mib(uint64_t bytes) {
    return std::to_string((bytes + (1 << 20) - 1) >> 20);
}

std::string hex(const unsigned char* p, size_t n) {
    static const char* d = "0123456789abcdef";
    std::string s;
    s.reserve(n * 2);
    for (size_t i = 0; i < n; ++i) {
        s += d[p[i] >> 4];
        s += d[p[i] & 15];
    }
    return s;
}

std::string sanitizePathPart(std::string s) {
    for (char& c : s)
        if (c == '/' || c == '\\' || c == '\0')
            c = '_';
    if (s.empty() || s == "." || s == "..")
        s = "_" + s;
    return s;
}

std::optional<std::string> header(const Poco::Net::HTTPResponse& r, const std::string& name) {
    if (!r.has(name))
        return std::nullopt;
    return r.get(name);
}

std::string errnoText(int e) {
    return std::strerror(e);
}

bool makeDirs(const std::string& path) {
    std::string cur;
    std::stringstream ss(path);
    std::string part;
    if (!path.empty() && path[0] == '/')
        cur = "/";
    while (std::getline(ss, part, '/')) {
        if (part.empty())
            continue;
        cur += part + "/";
        if (::mkdir(cur.c_str(), 0750) != 0 && errno != EEXIST)
            return false;
    }
    return true;
}

bool fsyncPath(const std::string& path, int flags) {
    int fd = ::open(path.c_str(), flags | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = ::fsync(fd) == 0;
    ::close(fd);
    return ok;
}

std::string dirOf(const std::string& path) {
    auto pos = path.rfind('/');
    return pos == std::string::npos ? "." : path.substr(0, pos);
}

// SHA-256 over OpenSSL EVP; copyable so a resumed download keeps its running state.
class Sha256 {
  public:
    Sha256() : ctx_(EVP_MD_CTX_new()) { reset(); }
    ~Sha256() { EVP_MD_CTX_free(ctx_); }
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;
    void reset() { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
    void update(const void* p, size_t n) { EVP_DigestUpdate(ctx_, p, n); }
    std::string finish() {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        EVP_DigestFinal_ex(ctx_, md, &len);
        return hex(md, len);
    }

  private:
    EVP_MD_CTX* ctx_;
};

// Feeds an existing file to `sha`; false when it cannot be read.
bool hashFile(const std::string& path, Sha256& sha, uint64_t* size) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    std::vector<char> buf(kChunk);
    uint64_t total = 0;
    for (;;) {
        ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ::close(fd);
            return false;
        }
        if (n == 0)
            break;
        sha.update(buf.data(), static_cast<size_t>(n));
        total += static_cast<uint64_t>(n);
    }
    ::close(fd);
    if (size)
        *size = total;
    return true;
}

std::optional<uint64_t> fileSize(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
        return std::nullopt;
    return static_cast<uint64_t>(st.st_size);
}

std::optional<std::string> readSmallFile(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return std::nullopt;
    char buf[256];
    ssize_t n = ::read(fd, buf, sizeof buf);
    ::close(fd);
    if (n <= 0)
        return std::nullopt;
    return Poco::trim(std::string(buf, static_cast<size_t>(n)));
}

bool writeSmallFileDurably(const std::string& path, const std::string& text) {
    const std::string tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return false;
    bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
              ::fsync(fd) == 0;
    ::close(fd);
    return ok && ::rename(tmp.c_str(), path.c_str()) == 0;
}

// ---- one HTTP exchange ---------------------------------------------------------------------
// Sessions that expose HTTPSession::read(): once the headers are parsed, a fixed-length body
// is read straight from the socket in large chunks instead of Poco's 4 KiB stream buffer.
class PlainSession : public Poco::Net::HTTPClientSession {
  public:
    using HTTPClientSession::HTTPClientSession;
    int readRaw(char* b, std::streamsize n) { return read(b, n); }
};
class TlsSession : public Poco::Net::HTTPSClientSession {
  public:
    using HTTPSClientSession::HTTPSClientSession;
    int readRaw(char* b, std::streamsize n) { return read(b, n); }
};

struct Exchange {
    std::unique_ptr<Poco::Net::HTTPClientSession> session;
    std::function<int(char*, std::streamsize)> readRaw;
    Poco::Net::HTTPResponse response;
    std::istream* body = nullptr;
};

struct Settings {
    config::GithubSection cfg;
    BackoffPolicy policy;
    Poco::URI api;
    std::string apiBase;  // api_url without a trailing '/'
    Poco::Net::Context::Ptr tls;
    std::string tlsError;  // why no TLS context could be made (bad ca_file)
};

}  // namespace

struct GithubClient::Impl {
    Impl(std::string dir, Clock& c, Random& r) : workDir(std::move(dir)), clock(c), random(r) {}

    std::string workDir;
    Clock& clock;
    Random& random;

    mutable std::mutex settingsM;
    std::shared_ptr<const Settings> settings;

    std::mutex pauseM;
    SteadyTime pauseUntil{};

    mutable std::mutex quotaM;
    Quota quota;
    std::optional<int64_t> lowQuotaLoggedForReset;

    struct CachedRelease {
        std::string etag, body;
    };
    std::mutex cacheM;
    std::map<std::string, CachedRelease> etagCache;

    std::mutex inflightM;
    std::condition_variable inflightCv;
    std::set<std::string> inflight;

    std::mutex warnM;
    std::set<std::string> warnedNoDigest;

    std::shared_ptr<const Settings> snapshot() const {
        std::lock_guard<std::mutex> lk(settingsM);
        return settings;
    }

    static std::shared_ptr<const Settings> makeSettings(const config::GithubSection& cfg) {
        auto s = std::make_shared<Settings>();
        s->cfg = cfg;
        s->policy.initial = Millis(int64_t{cfg.backoffInitialS} * 1000);
        s->policy.max = Millis(int64_t{cfg.backoffMaxS} * 1000);
        s->policy.maxAttempts = std::max(1, cfg.maxAttempts);
        s->apiBase = cfg.apiUrl;
        while (!s->apiBase.empty() && s->apiBase.back() == '/')
            s->apiBase.pop_back();
        try {
            s->api = Poco::URI(s->apiBase);
        } catch (const Poco::Exception& e) {
            s->tlsError = "github.api_url '" + cfg.apiUrl + "': " + e.displayText();
        }
        try {
            Poco::Net::Context::Params p;
            p.verificationMode = Poco::Net::Context::VERIFY_STRICT;
            p.verificationDepth = 9;
            if (cfg.caFile) {
                p.caLocation = *cfg.caFile;
                p.loadDefaultCAs = false;
            } else {
                p.loadDefaultCAs = true;
            }
            p.cipherList = "DEFAULT";
            s->tls = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, p);
            s->tls->requireMinimumProtocol(Poco::Net::Context::PROTO_TLSV1_2);
            // Read ahead: whole TLS records per read() instead of header and body separately.
            SSL_CTX_set_read_ahead(s->tls->sslContext(), 1);
        } catch (const Poco::Exception& e) {
            s->tlsError = "TLS setup (github.ca_file '" + cfg.caFile.value_or("system CAs") +
                          "'): " + e.displayText();
        }
        const std::string host = s->api.getHost();
        bool loopback = false;
        Poco::Net::IPAddress ip;
        if (Poco::Net::IPAddress::tryParse(host, ip))
            loopback = ip.isLoopback();
        if (host == "localhost")
            loopback = true;
        if (!cfg.token.empty() && Poco::toLower(s->api.getScheme()) == "http" && !loopback)
            log().warning("github.api_url is plain http to " + host +
                          ": the GitHub token travels unencrypted");
        return s;
    }

    // ---- rate-limit pause shared by every request of this client --------------------------
    bool waitForPause(const CancelToken& cancel) {
        for (;;) {
            Millis wait{0};
            {
                std::lock_guard<std::mutex> lk(pauseM);
                const SteadyTime now = clock.now();
                if (now >= pauseUntil)
                    return !cancel.cancelled();
                wait = std::chrono::duration_cast<Millis>(pauseUntil - now);
            }
            if (!clock.sleepFor(wait, &cancel))
                return false;
        }
    }

    void pauseAll(Millis wait) {
        std::lock_guard<std::mutex> lk(pauseM);
        const SteadyTime until = clock.now() + wait;
        if (until > pauseUntil)
            pauseUntil = until;
    }

    void noteQuota(const Poco::Net::HTTPResponse& r) {
        auto num = [&](const char* name) -> std::optional<int64_t> {
            auto v = header(r, name);
            if (!v)
                return std::nullopt;
            try {
                return std::stoll(*v);
            } catch (const std::exception&) {
                return std::nullopt;
            }
        };
        auto limit = num("x-ratelimit-limit");
        auto remaining = num("x-ratelimit-remaining");
        auto reset = num("x-ratelimit-reset");
        if (!limit && !remaining)
            return;
        std::lock_guard<std::mutex> lk(quotaM);
        if (limit)
            quota.limit = static_cast<int>(*limit);
        if (remaining)
            quota.remaining = static_cast<int>(*remaining);
        if (reset)
            quota.resetEpoch = *reset;
        if (quota.limit && quota.remaining && *quota.remaining * 10 <= *quota.limit &&
            lowQuotaLoggedForReset != quota.resetEpoch) {
            lowQuotaLoggedForReset = quota.resetEpoch;
            log().warning("GitHub API quota low: " + std::to_string(*quota.remaining) + " of " +
                          std::to_string(*quota.limit) + " requests left until reset at epoch " +
                          (quota.resetEpoch ? std::to_string(*quota.resetEpoch) : "?"));
        }
    }

    // Opens one request; transport failures come back as kNetwork or kTls.
    Expected<std::unique_ptr<Exchange>> send(
        const Settings& s, const Poco::URI& uri,
        const std::vector<std::pair<std::string, std::string>>& headers) {
        const std::string scheme = Poco::toLower(uri.getScheme());
        const std::string where = uri.getScheme() + "://" + uri.getAuthority();
        if (scheme != "http" && scheme != "https")
            return fail(ErrorCode::kRefused, "unsupported URL scheme in " + where);
        if (scheme == "https" && !s.tls)
            return fail(ErrorCode::kTls, s.tlsError);
        auto ex = std::make_unique<Exchange>();
        tlsLastVerifyError = 0;
        try {
            if (scheme == "https") {
                auto tls = std::make_unique<TlsSession>(uri.getHost(), uri.getPort(), s.tls);
                TlsSession* raw = tls.get();
                ex->readRaw = [raw](char* b, std::streamsize n) { return raw->readRaw(b, n); };
                ex->session = std::move(tls);
            } else {
                auto plain = std::make_unique<PlainSession>(uri.getHost(), uri.getPort());
                PlainSession* raw = plain.get();
                ex->readRaw = [raw](char* b, std::streamsize n) { return raw->readRaw(b, n); };
                ex->session = std::move(plain);
            }
            ex->session->setTimeout(Poco::Timespan(kTimeoutS, 0));
            Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_GET, uri.getPathAndQuery(),
                                       Poco::Net::HTTPMessage::HTTP_1_1);
            req.set("User-Agent", kUserAgent);
            for (const auto& h : headers)
                req.set(h.first, h.second);
            ex->session->sendRequest(req);
            ex->body = &ex->session->receiveResponse(ex->response);
        } catch (const Poco::Net::SSLException& e) {
            return fail(ErrorCode::kTls,
                        "TLS with " + where + ": " + e.displayText() + tlsReason());
        } catch (const Poco::Exception& e) {
            if (tlsLastVerifyError != 0)
                return fail(ErrorCode::kTls,
                            "TLS with " + where + ": " + e.displayText() + tlsReason());
            return fail(ErrorCode::kNetwork, where + ": " + e.displayText());
        } catch (const std::exception& e) {
            return fail(ErrorCode::kNetwork, where + ": " + e.what());
        }
        return ex;
    }

    static std::string tlsReason() {
        if (tlsLastVerifyError == 0)
            return "";
        std::string r = std::string(" (") + X509_verify_cert_error_string(tlsLastVerifyError) + ")";
        if (tlsLastVerifyError == X509_V_ERR_CERT_NOT_YET_VALID)
            r += "; the local clock may be wrong (no RTC?), will retry";
        return r;
    }

    static bool clockLikeTlsError() { return tlsLastVerifyError == X509_V_ERR_CERT_NOT_YET_VALID; }

    std::vector<std::pair<std::string, std::string>> apiHeaders(const Settings& s,
                                                                const Poco::URI& uri,
                                                                const std::string& accept) const {
        std::vector<std::pair<std::string, std::string>> h{{"Accept", accept},
                                                           {"X-GitHub-Api-Version", "2022-11-28"}};
        // The token belongs to the API origin only: never to a redirect target elsewhere.
        if (!s.cfg.token.empty() && originOf(uri) == originOf(s.api))
            h.emplace_back("Authorization", "Bearer " + s.cfg.token.reveal());
        return h;
    }

    // ---- retry loop -------------------------------------------------------------------------
    struct Attempt {
        bool finished = false;  // the attempt settled the operation (ok or permanent error)
        Status result;          // when finished
        ResponseSummary summary;
        Error error;  // what went wrong, for retries and giving up
    };

    Status withRetries(const Settings& s, const std::string& what, const CancelToken& cancel,
                       const std::function<Attempt(int)>& attemptFn) {
        for (int attempt = 1;; ++attempt) {
            if (!waitForPause(cancel))
                return fail(ErrorCode::kCancelled, what + ": cancelled");
            Attempt a = attemptFn(attempt);
            if (a.finished)
                return a.result;
            const int64_t localEpoch =
                std::chrono::duration_cast<std::chrono::seconds>(clock.wallNow().time_since_epoch())
                    .count();
            Decision d = decide(a.summary, attempt, s.policy, localEpoch, random);
            switch (d.outcome) {
                case Outcome::kSuccess:
                    return a.result;
                case Outcome::kFail:
                    return fail(a.error);
                case Outcome::kPermission:
                    return fail(ErrorCode::kPermission,
                                a.error.message() +
                                    " without rate-limit signs: the token lacks access (not "
                                    "retried)");
                case Outcome::kRetry:
                case Outcome::kGiveUp:
                    break;
            }
            const bool limited = d.kind == LimitKind::kRetryAfter ||
                                 d.kind == LimitKind::kPrimary || d.kind == LimitKind::kSecondary;
            if (d.pausesAll)
                pauseAll(d.wait);
            if (d.outcome == Outcome::kGiveUp) {
                ErrorCode code = limited ? ErrorCode::kRateLimited : a.error.code();
                return fail(code, a.error.message() + " (gave up after " + std::to_string(attempt) +
                                      " attempts)");
            }
            log().warning(what + ": " + a.error.message() + "; attempt " + std::to_string(attempt) +
                          " of " + std::to_string(s.policy.maxAttempts) + ", retrying in " +
                          std::to_string(d.wait.count()) + " ms");
            // A primary limit is waited out by waitForPause(), shared with other requests.
            if (!d.pausesAll && !clock.sleepFor(d.wait, &cancel))
                return fail(ErrorCode::kCancelled, what + ": cancelled");
        }
    }

    // Fills the summary from a response that was not a success.
    static void summarize(Attempt& a, Exchange& ex) {
        auto& r = ex.response;
        a.summary.status = static_cast<int>(r.getStatus());
        a.summary.retryAfter = header(r, "retry-after");
        a.summary.rateLimitRemaining = header(r, "x-ratelimit-remaining");
        a.summary.rateLimitReset = header(r, "x-ratelimit-reset");
        a.summary.date = header(r, "date");
        char buf[2048];
        try {
            ex.body->read(buf, sizeof buf);
            a.summary.bodySnippet.assign(buf, static_cast<size_t>(ex.body->gcount()));
        } catch (const std::exception&) {
        }
        a.error = Error(ErrorCode::kHttp,
                        "HTTP " + std::to_string(a.summary.status) + " " + r.getReason());
    }

    static void transportFailure(Attempt& a, const Error& e) {
        a.summary = ResponseSummary{};
        a.summary.status = 0;
        a.summary.transientTransportError =
            e.code() == ErrorCode::kNetwork || (e.code() == ErrorCode::kTls && clockLikeTlsError());
        a.error = e;
    }

    // ---- release metadata -------------------------------------------------------------------
    Expected<std::string> releaseJson(const Settings& s, const AssetRequest& req,
                                      const CancelToken& cancel) {
        const std::string url =
            s.apiBase + "/repos/" + req.repo + "/releases/tags/" + encodePathSegment(req.tag);
        std::string json;
        Status st = withRetries(s, "release", cancel, [&](int) {
            Attempt a;
            Poco::URI uri(url);
            auto h = apiHeaders(s, uri, "application/vnd.github+json");
            std::optional<CachedRelease> cached;
            {
                std::lock_guard<std::mutex> lk(cacheM);
                auto it = etagCache.find(url);
                if (it != etagCache.end())
                    cached = it->second;
            }
            if (cached)
                h.emplace_back("If-None-Match", cached->etag);
            auto ex = send(s, uri, h);
            if (!ex) {
                transportFailure(a, ex.error());
                return a;
            }
            auto& r = (*ex)->response;
            noteQuota(r);
            const int status = static_cast<int>(r.getStatus());
            if (status == 304 && cached) {
                json = cached->body;
                a.finished = true;
                return a;
            }
            if (status == 200) {
                std::string body;
                char buf[65536];
                try {
                    while ((*ex)->body->read(buf, sizeof buf) || (*ex)->body->gcount() > 0) {
                        body.append(buf, static_cast<size_t>((*ex)->body->gcount()));
                        if (body.size() > kMaxJsonBytes) {
                            a.finished = true;
                            a.result = fail(ErrorCode::kRefused, "release JSON larger than 16 MiB");
                            return a;
                        }
                    }
                } catch (const Poco::Exception& e) {
                    transportFailure(
                        a, Error(ErrorCode::kNetwork, "reading release: " + e.displayText()));
                    return a;
                }
                if (auto etag = header(r, "etag")) {
                    std::lock_guard<std::mutex> lk(cacheM);
                    etagCache[url] = CachedRelease{*etag, body};
                }
                json = std::move(body);
                a.finished = true;
                return a;
            }
            if (status == 404) {
                a.finished = true;
                a.result = fail(ErrorCode::kNotFound,
                                "release '" + req.tag + "' not found in " + req.repo);
                return a;
            }
            summarize(a, **ex);
            if (status == 304)
                a.error = Error(ErrorCode::kHttp, "HTTP 304 without a cached release");
            return a;
        });
        if (!st)
            return fail(st.error());
        return json;
    }

    static std::string encodePathSegment(const std::string& s) {
        std::string out;
        Poco::URI::encode(s, "/?#%", out);
        return out;
    }

    // ---- the download -----------------------------------------------------------------------
    struct Progress {
        Sha256 sha;
        uint64_t have = 0;
    };

    Status download(const Settings& s, const AssetRequest& req, const AssetInfo& asset,
                    const std::string& part, Progress& prog, const CancelToken& cancel) {
        const std::string apiUrl =
            s.apiBase + "/repos/" + req.repo + "/releases/assets/" + std::to_string(asset.id);
        return withRetries(s, "download", cancel, [&](int) {
            Attempt a;
            Poco::URI uri(apiUrl);
            std::unique_ptr<Exchange> ex;
            for (int hop = 0;; ++hop) {
                auto h = apiHeaders(s, uri, "application/octet-stream");
                if (prog.have > 0)
                    h.emplace_back("Range", "bytes=" + std::to_string(prog.have) + "-");
                auto sent = send(s, uri, h);
                if (!sent) {
                    transportFailure(a, sent.error());
                    return a;
                }
                ex = std::move(*sent);
                auto& r = ex->response;
                if (originOf(uri) == originOf(s.api))
                    noteQuota(r);
                const int status = static_cast<int>(r.getStatus());
                if (status < 300 || status >= 400 || status == 304)
                    break;
                auto loc = header(r, "location");
                if (!loc)
                    break;
                if (hop >= kMaxRedirects) {
                    a.finished = true;
                    a.result = fail(ErrorCode::kRefused,
                                    "more than " + std::to_string(kMaxRedirects) + " redirects");
                    return a;
                }
                Poco::URI next;
                try {
                    next = Poco::URI(uri, *loc);
                } catch (const Poco::Exception& e) {
                    a.finished = true;
                    a.result = fail(ErrorCode::kRefused, "bad redirect: " + e.displayText());
                    return a;
                }
                if (Poco::toLower(uri.getScheme()) == "https" &&
                    Poco::toLower(next.getScheme()) != "https") {
                    a.finished = true;
                    a.result = fail(ErrorCode::kRefused, "refused redirect from https to " +
                                                             next.getScheme() + "://" +
                                                             next.getAuthority());
                    return a;
                }
                uri = next;
            }
            auto& r = ex->response;
            const int status = static_cast<int>(r.getStatus());
            if (status == 404) {
                a.finished = true;
                a.result = fail(ErrorCode::kNotFound, "asset '" + asset.name + "' (id " +
                                                          std::to_string(asset.id) +
                                                          ") not found on download");
                return a;
            }
            if (status == 416) {
                // Our partial file does not fit the server's idea of the asset: start over.
                restart(part, prog);
                transportFailure(a, Error(ErrorCode::kNetwork, "range not satisfiable"));
                return a;
            }
            if (status != 200 && status != 206) {
                summarize(a, *ex);
                return a;
            }
            const std::string ctype = Poco::toLower(r.getContentType());
            if (ctype.find("text/html") != std::string::npos &&
                Poco::toLower(asset.contentType).find("text/html") == std::string::npos) {
                ::unlink(part.c_str());
                a.finished = true;
                a.result = fail(
                    ErrorCode::kMismatch,
                    "server sent an HTML page instead of the asset bytes of '" + asset.name + "'");
                return a;
            }
            if (status == 206) {
                uint64_t start = 0;
                const std::string cr = r.get("Content-Range", "");
                if (std::sscanf(cr.c_str(), "bytes %" SCNu64 "-", &start) != 1 ||
                    start != prog.have) {
                    restart(part, prog);
                    transportFailure(
                        a, Error(ErrorCode::kNetwork, "unexpected Content-Range '" + cr + "'"));
                    return a;
                }
            } else if (prog.have > 0) {
                restart(part, prog);  // server ignored Range: take the whole body
            }
            const uint64_t remaining = asset.size - prog.have;
            if (r.hasContentLength() &&
                static_cast<uint64_t>(r.getContentLength64()) != remaining) {
                ::unlink(part.c_str());
                a.finished = true;
                a.result = fail(ErrorCode::kMismatch,
                                "size mismatch for '" + asset.name + "': server sends " +
                                    std::to_string(r.getContentLength64()) + " bytes, expected " +
                                    std::to_string(remaining));
                return a;
            }
            return stream(*ex, asset, part, prog, cancel);
        });
    }

    static void restart(const std::string& part, Progress& prog) {
        ::unlink(part.c_str());
        prog.sha.reset();
        prog.have = 0;
    }

    Attempt stream(Exchange& ex, const AssetInfo& asset, const std::string& part, Progress& prog,
                   const CancelToken& cancel) {
        Attempt a;
        int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (fd < 0) {
            a.finished = true;
            a.result = fail(ErrorCode::kIo, "cannot open " + part + ": " + errnoText(errno));
            return a;
        }
        std::vector<char> buf(kChunk);
        std::optional<Error> err;
        uint64_t flushedTo = prog.have;
        // Only a plain fixed-length body may bypass the stream (which decodes chunking).
        const bool direct = ex.readRaw && ex.response.hasContentLength() &&
                            !ex.response.getChunkedTransferEncoding();
        try {
            while (prog.have < asset.size) {
                if (cancel.cancelled()) {
                    err = Error(ErrorCode::kCancelled, "cancelled");
                    break;
                }
                size_t n = 0;
                if (direct) {
                    // A TLS read returns one record (often 4-16 KiB): gather a few before
                    // writing and hashing, so syscalls stay few whatever the server's records.
                    const uint64_t want = std::min<uint64_t>(buf.size(), asset.size - prog.have);
                    while (n < want && n < kGather) {
                        const int got =
                            ex.readRaw(buf.data() + n, static_cast<std::streamsize>(want - n));
                        if (got <= 0)
                            break;
                        n += static_cast<size_t>(got);
                    }
                } else {
                    ex.body->read(buf.data(), static_cast<std::streamsize>(buf.size()));
                    n = static_cast<size_t>(ex.body->gcount());
                }
                if (n == 0)
                    break;
                if (prog.have + n > asset.size) {
                    err = Error(ErrorCode::kMismatch, "server sent more than the asset's " +
                                                          std::to_string(asset.size) + " bytes");
                    break;
                }
                for (size_t off = 0; off < n;) {
                    ssize_t w = ::write(fd, buf.data() + off, n - off);
                    if (w < 0 && errno == EINTR)
                        continue;
                    if (w < 0) {
                        err = Error(ErrorCode::kIo, "writing " + part + ": " + errnoText(errno));
                        break;
                    }
                    off += static_cast<size_t>(w);
                }
                if (err)
                    break;
                prog.sha.update(buf.data(), n);
                prog.have += n;
                // Start writeback as we go so the final fsync does not stall on the whole file.
                if (prog.have - flushedTo >= kWritebackChunk) {
                    ::sync_file_range(fd, static_cast<off_t>(flushedTo),
                                      static_cast<off_t>(prog.have - flushedTo),
                                      SYNC_FILE_RANGE_WRITE);
                    flushedTo = prog.have;
                }
            }
        } catch (const Poco::Exception& e) {
            err = Error(ErrorCode::kNetwork, "reading asset: " + e.displayText());
        } catch (const std::exception& e) {
            err = Error(ErrorCode::kNetwork, std::string("reading asset: ") + e.what());
        }
        // Whatever arrived is kept durably so a later attempt can resume with Range.
        const bool synced = ::fsync(fd) == 0;
        ::close(fd);
        if (err && err->code() == ErrorCode::kMismatch)
            ::unlink(part.c_str());
        if (err && err->code() != ErrorCode::kNetwork) {
            a.finished = true;
            a.result = fail(*err);
            return a;
        }
        if (!synced) {
            a.finished = true;
            a.result = fail(ErrorCode::kIo, "fsync " + part + ": " + errnoText(errno));
            return a;
        }
        if (err || prog.have < asset.size) {
            transportFailure(a, err ? *err
                                    : Error(ErrorCode::kNetwork,
                                            "connection closed after " + std::to_string(prog.have) +
                                                " of " + std::to_string(asset.size) + " bytes"));
            return a;
        }
        a.finished = true;
        return a;
    }

    // ---- per-file exclusion between concurrent fetches --------------------------------------
    void lockPath(const std::string& p) {
        std::unique_lock<std::mutex> lk(inflightM);
        inflightCv.wait(lk, [&] { return inflight.count(p) == 0; });
        inflight.insert(p);
    }
    void unlockPath(const std::string& p) {
        {
            std::lock_guard<std::mutex> lk(inflightM);
            inflight.erase(p);
        }
        inflightCv.notify_all();
    }

    Expected<Artifact> fetch(const AssetRequest& req, const CancelToken& cancel);
    Expected<Artifact> fetchLocked(const Settings& s, const AssetRequest& req,
                                   const AssetInfo& asset, const std::string& dir,
                                   const std::string& finalPath, const CancelToken& cancel);
};

Expected<Artifact> GithubClient::Impl::fetch(const AssetRequest& req, const CancelToken& cancel) {
    auto s = snapshot();
    if (!s->tlsError.empty() && Poco::toLower(s->api.getScheme()) != "http")
        return fail(ErrorCode::kTls, s->tlsError);
    if (req.repo.find('/') == std::string::npos || req.repo.find("..") != std::string::npos)
        return fail(ErrorCode::kRefused, "repo '" + req.repo + "' is not owner/name");

    auto json = releaseJson(*s, req, cancel);
    if (!json)
        return fail(json.error());
    auto release = parseRelease(*json);
    if (!release)
        return fail(release.error());
    auto asset = selectAsset(*release, req.assetPattern, req.tag, req.arch, req.allowPrerelease);
    if (!asset)
        return fail(asset.error());

    const std::string dir =
        workDir + "/" + sanitizePathPart(req.component) + "/" + sanitizePathPart(req.tag);
    const std::string finalPath = dir + "/" + asset->name;
    lockPath(finalPath);
    auto result = fetchLocked(*s, req, *asset, dir, finalPath, cancel);
    unlockPath(finalPath);
    return result;
}

Expected<Artifact> GithubClient::Impl::fetchLocked(const Settings& s, const AssetRequest& req,
                                                   const AssetInfo& asset, const std::string& dir,
                                                   const std::string& finalPath,
                                                   const CancelToken& cancel) {
    const std::string part = finalPath + ".part";
    const std::string sidecar = finalPath + ".sha256";
    if (!makeDirs(dir))
        return fail(ErrorCode::kIo, "cannot create " + dir + ": " + errnoText(errno));

    if (!asset.sha256) {
        std::lock_guard<std::mutex> lk(warnM);
        if (warnedNoDigest.insert(req.repo + "@" + req.tag + "/" + asset.name).second)
            log().warning("component '" + req.component + "' tag " + req.tag + ": asset '" +
                          asset.name + "' has no digest; checking its size only");
    }

    // A complete, verified artifact from an earlier run is reused as is.
    if (fileSize(finalPath) == asset.size) {
        Sha256 sha;
        uint64_t n = 0;
        const auto expected = asset.sha256 ? asset.sha256 : readSmallFile(sidecar);
        if (expected && hashFile(finalPath, sha, &n) && n == asset.size) {
            const std::string got = sha.finish();
            if (got == *expected) {
                log().information("component '" + req.component + "' tag " + req.tag +
                                  ": reusing verified " + finalPath);
                return Artifact{finalPath, asset.size, got};
            }
        }
        ::unlink(finalPath.c_str());
    }

    Progress prog;
    if (auto partSize = fileSize(part)) {
        uint64_t n = 0;
        if (*partSize > asset.size || !hashFile(part, prog.sha, &n) || n != *partSize) {
            restart(part, prog);
        } else {
            prog.have = n;
        }
    }

    struct statvfs vfs {};
    if (::statvfs(dir.c_str(), &vfs) == 0) {
        const uint64_t free = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
        const uint64_t need = asset.size - prog.have;
        if (need > free)
            return fail(ErrorCode::kIo, "not enough space in " + dir + ": needs " + mib(need) +
                                            " MiB, has " + std::to_string(free >> 20) + " MiB");
    }

    if (prog.have < asset.size) {
        if (prog.have > 0)
            log().information("component '" + req.component + "' tag " + req.tag + ": resuming '" +
                              asset.name + "' at byte " + std::to_string(prog.have));
        Status st = download(s, req, asset, part, prog, cancel);
        if (!st)
            return fail(st.error());
    }

    const std::string got = prog.sha.finish();
    if (prog.have != asset.size) {
        ::unlink(part.c_str());
        return fail(ErrorCode::kMismatch, "size mismatch for '" + asset.name + "': got " +
                                              std::to_string(prog.have) + " bytes, expected " +
                                              std::to_string(asset.size));
    }
    if (asset.sha256 && got != *asset.sha256) {
        ::unlink(part.c_str());
        return fail(ErrorCode::kMismatch, "sha256 mismatch for '" + asset.name + "': expected " +
                                              *asset.sha256 + ", got " + got);
    }
    if (!fsyncPath(part, O_RDONLY) || ::rename(part.c_str(), finalPath.c_str()) != 0)
        return fail(ErrorCode::kIo, "cannot move " + part + " into place: " + errnoText(errno));
    if (!writeSmallFileDurably(sidecar, got + "\n"))
        log().warning("cannot record digest in " + sidecar + ": " + errnoText(errno));
    fsyncPath(dir, O_RDONLY | O_DIRECTORY);
    log().information("component '" + req.component + "' tag " + req.tag + ": downloaded '" +
                      asset.name + "' (" + std::to_string(asset.size) + " bytes, sha256 " + got +
                      ")");
    return Artifact{finalPath, asset.size, got};
}

GithubClient::GithubClient(const config::GithubSection& cfg, std::string workDir, Clock& clock,
                           Random& random)
    : impl_(std::make_unique<Impl>(std::move(workDir), clock, random)) {
    installVerifyListener();
    impl_->settings = Impl::makeSettings(cfg);
}

GithubClient::~GithubClient() = default;

void GithubClient::reconfigure(const config::GithubSection& cfg) {
    auto s = Impl::makeSettings(cfg);
    std::lock_guard<std::mutex> lk(impl_->settingsM);
    impl_->settings = std::move(s);
}

Expected<Artifact> GithubClient::fetch(const AssetRequest& req, const CancelToken& cancel) {
    auto r = impl_->fetch(req, cancel);
    if (!r)
        return fail(
            r.error().context("component '" + req.component + "' tag " + req.tag + ": download"));
    return r;
}

void GithubClient::discard(const Artifact& a) {
    if (a.path.empty())
        return;
    // Only files this client placed under work_dir are ours to delete.
    if (a.path.compare(0, impl_->workDir.size() + 1, impl_->workDir + "/") != 0)
        return;
    ::unlink(a.path.c_str());
    ::unlink((a.path + ".sha256").c_str());
    ::unlink((a.path + ".part").c_str());
    // Empty <tag> and <component> directories go too; rmdir fails harmlessly when not empty.
    std::string dir = dirOf(a.path);
    for (int i = 0; i < 2 && dir.size() > impl_->workDir.size(); ++i) {
        if (::rmdir(dir.c_str()) != 0)
            break;
        dir = dirOf(dir);
    }
}

Quota GithubClient::quota() const {
    std::lock_guard<std::mutex> lk(impl_->quotaM);
    return impl_->quota;
}

}  // namespace rra::github
