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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

namespace rra::github {
namespace {

constexpr int kMaxRedirects = 5;
constexpr size_t kChunk = 256 * 1024;
constexpr size_t kGather = 128 * 1024;
constexpr uint64_t kWritebackChunk = 8 * 1024 * 1024;
constexpr size_t kMaxJsonBytes = 4 * 1024 * 1024;  // a release with 1,000 assets is ~2 MiB
constexpr size_t kMaxEtagEntries = 256;            // several tags of every component
constexpr Millis kWatchTick{100};

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

// ---- request targets -----------------------------------------------------------------------
// Targets are built and sent as raw strings: Poco::URI decodes the path and re-encodes only a
// few characters, so a tag `release/1.0` would go out as two segments and `v1.0+b.5` with a raw
// '+'. Poco::URI serves only for scheme, host and port.
std::string percentEncode(const std::string& s) {
    static const char* d = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += d[c >> 4];
            out += d[c & 15];
        }
    }
    return out;
}

// Escapes what may never appear raw in a request line (controls, space, non-ASCII) and keeps
// everything else, existing %XX escapes included, exactly as the server wrote it.
std::string escapeRaw(const std::string& s) {
    static const char* d = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '<' || c == '>' || c == '\\' || c == '^' ||
            c == '`' || c == '{' || c == '|' || c == '}') {
            out += '%';
            out += d[c >> 4];
            out += d[c & 15];
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

struct Target {
    Poco::URI origin;          // scheme, host, port only
    std::string pathAndQuery;  // already encoded: sent as is
    std::string where() const { return origin.getScheme() + "://" + origin.getAuthority(); }
};

// The raw path (and query) of an absolute URL, without its fragment; "/" when empty.
std::string rawPathAndQuery(const std::string& url) {
    std::string rest = url;
    const auto scheme = rest.find("://");
    if (scheme != std::string::npos) {
        rest = rest.substr(scheme + 3);
        const auto slash = rest.find_first_of("/?#");
        rest = slash == std::string::npos ? "" : rest.substr(slash);
    }
    rest = rest.substr(0, rest.find('#'));
    if (rest.empty() || rest[0] != '/')
        rest = "/" + rest;
    return escapeRaw(rest);
}

// Resolves a Location header against the target that answered it, keeping its raw path.
Target resolveLocation(const Target& base, const std::string& location) {
    const std::string loc = Poco::trim(location);
    const std::string lower = Poco::toLower(loc);
    if (lower.compare(0, 7, "http://") == 0 || lower.compare(0, 8, "https://") == 0)
        return Target{Poco::URI(loc), rawPathAndQuery(loc)};
    if (loc.compare(0, 2, "//") == 0) {
        const std::string abs = base.origin.getScheme() + ":" + loc;
        return Target{Poco::URI(abs), rawPathAndQuery(abs)};
    }
    if (!loc.empty() && loc[0] == '/')
        return Target{base.origin, escapeRaw(loc.substr(0, loc.find('#')))};
    // A relative path: rare enough that Poco's resolution (and re-encoding) will do.
    Poco::URI full(base.origin);
    full.setPathEtc(base.pathAndQuery);
    Poco::URI next(full, loc);
    return Target{next, escapeRaw(next.getPathAndQuery())};
}

// ---- stall and cancel watchdog ---------------------------------------------------------------
// A socket read times out only when nothing arrives for readTimeout; a server trickling a byte
// now and then would hold a request (and its download slot) forever, and a cancel would wait
// for the next byte. One thread per client watches the open exchanges and shuts the socket
// down (a dup of its descriptor, so a number reused elsewhere is never touched) when the
// request's deadline passes, the download stays below the low-speed floor for a whole window,
// or the fetch is cancelled. The blocked read then fails and the owner reads `why`.
struct Watch {
    const CancelToken* cancel = nullptr;
    std::optional<std::chrono::steady_clock::time_point> deadline;
    std::string deadlineText;
    uint64_t lowSpeedBytes = 0;  // per window; 0 = no low-speed check
    Millis lowSpeedWindow{0};
    std::string lowSpeedText;
    std::atomic<uint64_t> bytes{0};
    // Below: guarded by the watchdog's mutex.
    int fd = -1;  // our dup of the socket
    std::chrono::steady_clock::time_point windowStart;
    uint64_t windowBytes = 0;
    bool aborted = false;
    bool cancelled = false;
    std::string why;
};

class Watchdog {
  public:
    ~Watchdog() {
        {
            std::lock_guard<std::mutex> lk(m_);
            stop_ = true;
        }
        cv_.notify_all();
        if (thread_.joinable())
            thread_.join();
    }
    void add(Watch* w) {
        std::lock_guard<std::mutex> lk(m_);
        w->windowStart = std::chrono::steady_clock::now();
        watches_.insert(w);
        if (!thread_.joinable())
            thread_ = std::thread([this] { run(); });
        cv_.notify_all();
    }
    // Called once the socket is connected; false when the watch fired meanwhile.
    bool attach(Watch* w, int fd) {
        std::lock_guard<std::mutex> lk(m_);
        if (w->aborted)
            return false;
        w->fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
        return true;
    }
    void remove(Watch* w) {
        std::lock_guard<std::mutex> lk(m_);
        watches_.erase(w);
        if (w->fd >= 0)
            ::close(w->fd);
        w->fd = -1;
    }
    // The verdict, read by the owner after a failed read.
    std::optional<std::pair<bool, std::string>> verdict(Watch* w) {
        std::lock_guard<std::mutex> lk(m_);
        if (!w->aborted)
            return std::nullopt;
        return std::make_pair(w->cancelled, w->why);
    }

  private:
    void run() {
        std::unique_lock<std::mutex> lk(m_);
        while (!stop_) {
            if (watches_.empty()) {
                cv_.wait(lk, [this] { return stop_ || !watches_.empty(); });
                continue;
            }
            cv_.wait_for(lk, kWatchTick);
            const auto now = std::chrono::steady_clock::now();
            for (Watch* w : watches_) {
                if (w->aborted)
                    continue;
                if (w->cancel && w->cancel->cancelled()) {
                    fire(*w, true, "cancelled");
                } else if (w->deadline && now >= *w->deadline) {
                    fire(*w, false, w->deadlineText);
                } else if (w->lowSpeedBytes > 0 && now - w->windowStart >= w->lowSpeedWindow) {
                    const uint64_t got = w->bytes.load();
                    if (got - w->windowBytes < w->lowSpeedBytes) {
                        fire(*w, false, w->lowSpeedText);
                    } else {
                        w->windowStart = now;
                        w->windowBytes = got;
                    }
                }
            }
        }
    }
    static void fire(Watch& w, bool cancelled, const std::string& why) {
        w.aborted = true;
        w.cancelled = cancelled;
        w.why = why;
        if (w.fd >= 0)
            ::shutdown(w.fd, SHUT_RDWR);
    }

    std::mutex m_;
    std::condition_variable cv_;
    std::set<Watch*> watches_;
    std::thread thread_;
    bool stop_ = false;
};

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

// Keeps a Watch registered for as long as the exchange's socket lives.
class WatchGuard {
  public:
    WatchGuard(Watchdog& dog, std::unique_ptr<Watch> w) : dog_(dog), w_(std::move(w)) {
        dog_.add(w_.get());
    }
    ~WatchGuard() { dog_.remove(w_.get()); }
    WatchGuard(const WatchGuard&) = delete;
    WatchGuard& operator=(const WatchGuard&) = delete;
    Watch& watch() { return *w_; }
    bool attach(int fd) { return dog_.attach(w_.get(), fd); }
    // Why the watchdog cut the exchange, as an error; nullopt when it did not.
    std::optional<Error> verdict() {
        auto v = dog_.verdict(w_.get());
        if (!v)
            return std::nullopt;
        return Error(v->first ? ErrorCode::kCancelled : ErrorCode::kNetwork, v->second);
    }

  private:
    Watchdog& dog_;
    std::unique_ptr<Watch> w_;
};

struct Exchange {
    std::unique_ptr<Poco::Net::HTTPClientSession> session;
    // Declared after the session: unregistered (and its dup closed) before the socket closes.
    std::unique_ptr<WatchGuard> guard;
    std::function<int(char*, std::streamsize)> readRaw;
    Poco::Net::HTTPResponse response;
    std::istream* body = nullptr;
    Target target;  // what answered
    void counted(size_t n) {
        if (guard)
            guard->watch().bytes += n;
    }
    // The watchdog's reason when it cut the exchange, else `e`.
    Error explain(Error e) const {
        if (guard)
            if (auto v = guard->verdict())
                return *v;
        return e;
    }
};

// What bounds one exchange besides the per-read timeout.
struct WatchSpec {
    const CancelToken* cancel = nullptr;
    bool metadata = true;  // a total deadline; else (a download) the low-speed floor
};

struct Settings {
    config::GithubSection cfg;
    BackoffPolicy policy;
    Poco::URI api;
    std::string apiBase;  // api_url without a trailing '/'
    std::string apiPath;  // its raw path ("" or e.g. "/api/v3"), where request paths start
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
        uint64_t used = 0;  // for the LRU bound
    };
    std::mutex cacheM;
    uint64_t cacheClock = 0;
    std::map<std::string, CachedRelease> etagCache;

    std::mutex inflightM;
    std::condition_variable inflightCv;
    std::set<std::string> inflight;

    std::mutex warnM;
    std::set<std::string> warnedNoDigest;

    mutable std::mutex limitsM;
    TransferLimits limits;
    TransferLimits transferLimits() const {
        std::lock_guard<std::mutex> lk(limitsM);
        return limits;
    }

    // Last member: its thread stops before anything it could look at goes away.
    Watchdog watchdog;

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
            s->apiPath = rawPathAndQuery(s->apiBase);
            s->apiPath = s->apiPath.substr(0, s->apiPath.find('?'));
            while (!s->apiPath.empty() && s->apiPath.back() == '/')
                s->apiPath.pop_back();
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
        // Clamped so a hostile hint cannot overflow the clock into "no pause at all".
        wait = std::min(wait, kMaxHintWait);
        std::lock_guard<std::mutex> lk(pauseM);
        const SteadyTime until = clock.now() + wait;
        if (until > pauseUntil)
            pauseUntil = until;
    }

    int64_t localEpoch() const {
        return std::chrono::duration_cast<std::chrono::seconds>(clock.wallNow().time_since_epoch())
            .count();
    }

    // Records the primary quota from an API response. A usable answer that spent the last
    // request pauses the client until reset: the next request would certainly be limited.
    void noteQuota(const Poco::Net::HTTPResponse& r) {
        auto num = [&](const char* name) { return parseHeaderInteger(header(r, name)); };
        auto toInt = [](int64_t v) { return static_cast<int>(std::min<int64_t>(v, INT_MAX)); };
        auto limit = num("x-ratelimit-limit");
        auto remaining = num("x-ratelimit-remaining");
        auto reset = num("x-ratelimit-reset");
        if (!limit && !remaining)
            return;
        const int status = static_cast<int>(r.getStatus());
        if (remaining == 0 && reset && (status < 300 || status == 304)) {
            const auto date = header(r, "date");
            const int64_t now = date ? parseHttpDate(*date).value_or(localEpoch()) : localEpoch();
            const int64_t secs =
                std::min<int64_t>(kMaxHintWait.count() / 1000, std::max<int64_t>(1, *reset - now));
            pauseAll(Millis(secs * 1000));
        }
        std::lock_guard<std::mutex> lk(quotaM);
        if (limit)
            quota.limit = toInt(*limit);
        if (remaining)
            quota.remaining = toInt(*remaining);
        if (reset)
            quota.resetEpoch = *reset;
        if (quota.limit && quota.remaining &&
            int64_t{*quota.remaining} * 10 <= int64_t{*quota.limit} &&
            lowQuotaLoggedForReset != quota.resetEpoch) {
            lowQuotaLoggedForReset = quota.resetEpoch;
            log().warning("GitHub API quota low: " + std::to_string(*quota.remaining) + " of " +
                          std::to_string(*quota.limit) + " requests left until reset at epoch " +
                          (quota.resetEpoch ? std::to_string(*quota.resetEpoch) : "?"));
        }
    }

    // Opens one request; transport failures come back as kNetwork or kTls, a cancel seen by
    // the watchdog as kCancelled.
    Expected<std::unique_ptr<Exchange>> send(
        const Settings& s, const Target& t,
        const std::vector<std::pair<std::string, std::string>>& headers, const WatchSpec& spec) {
        const std::string scheme = Poco::toLower(t.origin.getScheme());
        const std::string where = t.where();
        if (scheme != "http" && scheme != "https")
            return fail(ErrorCode::kRefused, "unsupported URL scheme in " + where);
        if (scheme == "https" && !s.tls)
            return fail(ErrorCode::kTls, s.tlsError);
        const TransferLimits lim = transferLimits();
        auto w = std::make_unique<Watch>();
        w->cancel = spec.cancel;
        if (spec.metadata) {
            w->deadline = std::chrono::steady_clock::now() + lim.metadataDeadline;
            w->deadlineText = where + ": no complete response within " +
                              std::to_string(lim.metadataDeadline.count()) + " ms";
        } else {
            w->lowSpeedWindow = lim.lowSpeedWindow;
            w->lowSpeedBytes = static_cast<uint64_t>(static_cast<double>(lim.lowSpeedBytesPerS) *
                                                     lim.lowSpeedWindow.count() / 1000.0);
            w->lowSpeedText = where + ": transfer slower than " +
                              std::to_string(lim.lowSpeedBytesPerS) + " bytes/s for " +
                              std::to_string(lim.lowSpeedWindow.count()) + " ms";
        }
        auto ex = std::make_unique<Exchange>();
        ex->target = t;
        tlsLastVerifyError = 0;
        try {
            const Poco::Timespan timeout(
                std::chrono::duration_cast<std::chrono::microseconds>(lim.readTimeout).count());
            if (scheme == "https") {
                auto tls =
                    std::make_unique<TlsSession>(t.origin.getHost(), t.origin.getPort(), s.tls);
                TlsSession* raw = tls.get();
                ex->readRaw = [raw](char* b, std::streamsize n) { return raw->readRaw(b, n); };
                ex->session = std::move(tls);
            } else {
                auto plain = std::make_unique<PlainSession>(t.origin.getHost(), t.origin.getPort());
                PlainSession* raw = plain.get();
                ex->readRaw = [raw](char* b, std::streamsize n) { return raw->readRaw(b, n); };
                ex->session = std::move(plain);
            }
            ex->session->setTimeout(timeout);
            ex->guard = std::make_unique<WatchGuard>(watchdog, std::move(w));
            Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_GET, t.pathAndQuery,
                                       Poco::Net::HTTPMessage::HTTP_1_1);
            req.set("User-Agent", kUserAgent);
            for (const auto& h : headers)
                req.set(h.first, h.second);
            // sendRequest() (re)connects, bounded by the connect and send timeouts; only then
            // is there a socket for the watchdog, which covers the response from here on.
            ex->session->sendRequest(req);
            if (!ex->guard->attach(ex->session->socket().impl()->sockfd()))
                return fail(*ex->guard->verdict());
            ex->body = &ex->session->receiveResponse(ex->response);
        } catch (const Poco::Net::SSLException& e) {
            if (auto v = ex->guard ? ex->guard->verdict() : std::nullopt)
                return fail(*v);
            return fail(ErrorCode::kTls,
                        "TLS with " + where + ": " + e.displayText() + tlsReason());
        } catch (const Poco::Exception& e) {
            if (auto v = ex->guard ? ex->guard->verdict() : std::nullopt)
                return fail(*v);
            if (tlsLastVerifyError != 0)
                return fail(ErrorCode::kTls,
                            "TLS with " + where + ": " + e.displayText() + tlsReason());
            return fail(ErrorCode::kNetwork, where + ": " + e.displayText());
        } catch (const std::exception& e) {
            if (auto v = ex->guard ? ex->guard->verdict() : std::nullopt)
                return fail(*v);
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

    using Headers = std::vector<std::pair<std::string, std::string>>;

    static Headers apiHeaders(const Settings& s, const Target& t, const std::string& accept) {
        Headers h{{"Accept", accept}, {"X-GitHub-Api-Version", "2022-11-28"}};
        // The token belongs to the API origin only: never to a redirect target elsewhere.
        if (!s.cfg.token.empty() && originOf(t.origin) == originOf(s.api))
            h.emplace_back("Authorization", "Bearer " + s.cfg.token.reveal());
        return h;
    }

    static Target apiTarget(const Settings& s, const std::string& rest) {
        return Target{s.api, s.apiPath + rest};
    }

    static std::string repoPath(const AssetRequest& req) {
        const auto slash = req.repo.find('/');
        return "/repos/" + percentEncode(req.repo.substr(0, slash)) + "/" +
               percentEncode(req.repo.substr(slash + 1));
    }

    // ---- retry loop -------------------------------------------------------------------------
    struct Attempt {
        bool finished = false;  // the attempt settled the operation (ok or permanent error)
        Status result;          // when finished
        ResponseSummary summary;
        Error error;  // what went wrong, for retries and giving up
    };

    // Runs one operation with its retries. An operation is one logical request: the release
    // lookup, or the asset download, each with its own github.max_attempts count. Each attempt
    // counts once, the redirects it followed included (they answer that same request), and a
    // digest mismatch restart starts a new download operation. Every attempt takes the
    // settings anew, so a reload (token, api_url, ca_file, backoff) reaches retries already
    // under way.
    Status withRetries(const std::string& what, const CancelToken& cancel,
                       const std::function<Attempt(int, const Settings&)>& attemptFn) {
        for (int attempt = 1;; ++attempt) {
            if (!waitForPause(cancel))
                return fail(ErrorCode::kCancelled, what + ": cancelled");
            const auto s = snapshot();
            Attempt a = attemptFn(attempt, *s);
            if (a.finished)
                return a.result;
            if (a.error.code() == ErrorCode::kCancelled)
                return fail(a.error);
            Decision d = decide(a.summary, attempt, s->policy, localEpoch(), random);
            switch (d.outcome) {
                case Outcome::kSuccess:  // not given for a response the attempt could not use
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
                const std::string why = d.wait >= kMaxHintWait && limited
                                            ? "the server asks to wait longer than " +
                                                  std::to_string(kMaxHintWait.count() / 1000) +
                                                  " s; gave up after "
                                            : "gave up after ";
                return fail(
                    code, a.error.message() + " (" + why + std::to_string(attempt) + " attempts)");
            }
            log().warning(what + ": " + a.error.message() + "; attempt " + std::to_string(attempt) +
                          " of " + std::to_string(s->policy.maxAttempts) + ", retrying in " +
                          std::to_string(d.wait.count()) + " ms");
            // A primary limit is waited out by waitForPause(), shared with other requests.
            if (!d.pausesAll && !clock.sleepFor(d.wait, &cancel))
                return fail(ErrorCode::kCancelled, what + ": cancelled");
        }
    }

    // Fills the summary from a response that was not a success.
    static void summarize(Attempt& a, Exchange& ex, bool foreign) {
        auto& r = ex.response;
        a.summary.status = static_cast<int>(r.getStatus());
        a.summary.retryAfter = header(r, "retry-after");
        a.summary.rateLimitRemaining = header(r, "x-ratelimit-remaining");
        a.summary.rateLimitReset = header(r, "x-ratelimit-reset");
        a.summary.date = header(r, "date");
        a.summary.foreignOrigin = foreign;
        char buf[2048];
        try {
            ex.body->read(buf, sizeof buf);
            a.summary.bodySnippet.assign(buf, static_cast<size_t>(ex.body->gcount()));
        } catch (const std::exception&) {
        }
        a.error = Error(ErrorCode::kHttp, "HTTP " + std::to_string(a.summary.status) + " " +
                                              r.getReason() + " from " + ex.target.where());
    }

    static void transportFailure(Attempt& a, const Error& e) {
        a.summary = ResponseSummary{};
        a.summary.status = 0;
        a.summary.transientTransportError =
            e.code() == ErrorCode::kNetwork || (e.code() == ErrorCode::kTls && clockLikeTlsError());
        a.error = e;
    }

    bool fromApi(const Settings& s, const Exchange& ex) const {
        return originOf(ex.target.origin) == originOf(s.api);
    }

    // Sends `target` and follows redirects (301/302/303/307/308 with a Location; a renamed
    // repository answers 301). Null, with `a` filled in, when the attempt already failed.
    std::unique_ptr<Exchange> openFollowing(const Settings& s, Target target,
                                            const std::string& accept, const Headers& extra,
                                            const WatchSpec& spec, Attempt& a) {
        for (int hop = 0;; ++hop) {
            auto h = apiHeaders(s, target, accept);
            h.insert(h.end(), extra.begin(), extra.end());
            auto sent = send(s, target, h, spec);
            if (!sent) {
                transportFailure(a, sent.error());
                return nullptr;
            }
            std::unique_ptr<Exchange> ex = std::move(*sent);
            auto& r = ex->response;
            if (fromApi(s, *ex))
                noteQuota(r);
            const int status = static_cast<int>(r.getStatus());
            const bool redirect =
                status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
            auto loc = header(r, "location");
            if (!redirect || !loc)
                return ex;
            if (hop >= kMaxRedirects) {
                a.finished = true;
                a.result = fail(ErrorCode::kRefused,
                                "more than " + std::to_string(kMaxRedirects) + " redirects");
                return nullptr;
            }
            Target next;
            try {
                next = resolveLocation(target, *loc);
            } catch (const Poco::Exception& e) {
                a.finished = true;
                a.result = fail(ErrorCode::kRefused, "bad redirect: " + e.displayText());
                return nullptr;
            }
            if (Poco::toLower(target.origin.getScheme()) == "https" &&
                Poco::toLower(next.origin.getScheme()) != "https") {
                a.finished = true;
                a.result =
                    fail(ErrorCode::kRefused, "refused redirect from https to " + next.where());
                return nullptr;
            }
            target = std::move(next);
        }
    }

    // ---- release metadata -------------------------------------------------------------------
    Expected<std::string> releaseJson(const AssetRequest& req, const CancelToken& cancel) {
        const std::string rest = repoPath(req) + "/releases/tags/" + percentEncode(req.tag);
        std::string json;
        Status st = withRetries("release", cancel, [&](int, const Settings& s) {
            Attempt a;
            const Target target = apiTarget(s, rest);
            const std::string key = target.where() + target.pathAndQuery;
            std::optional<CachedRelease> cached = cachedRelease(key);
            Headers extra;
            if (cached)
                extra.emplace_back("If-None-Match", cached->etag);
            auto ex = openFollowing(s, target, "application/vnd.github+json", extra,
                                    WatchSpec{&cancel, true}, a);
            if (!ex)
                return a;
            auto& r = ex->response;
            const int status = static_cast<int>(r.getStatus());
            const bool foreign = !fromApi(s, *ex);
            if (status == 304 && cached) {
                json = cached->body;
                a.finished = true;
                return a;
            }
            if (status == 200) {
                std::string body;
                char buf[65536];
                try {
                    while (ex->body->read(buf, sizeof buf) || ex->body->gcount() > 0) {
                        body.append(buf, static_cast<size_t>(ex->body->gcount()));
                        if (body.size() > kMaxJsonBytes) {
                            a.finished = true;
                            a.result = fail(ErrorCode::kRefused,
                                            "release JSON larger than " +
                                                std::to_string(kMaxJsonBytes >> 20) + " MiB");
                            return a;
                        }
                    }
                } catch (const Poco::Exception& e) {
                    transportFailure(a, ex->explain(Error(ErrorCode::kNetwork,
                                                          "reading release: " + e.displayText())));
                    return a;
                }
                // A cut connection ends the body early without an exception.
                if (auto v = ex->guard->verdict()) {
                    transportFailure(a, *v);
                    return a;
                }
                if (r.hasContentLength() &&
                    static_cast<uint64_t>(r.getContentLength64()) != body.size()) {
                    transportFailure(
                        a, Error(ErrorCode::kNetwork,
                                 "release body ended after " + std::to_string(body.size()) +
                                     " of " + std::to_string(r.getContentLength64()) + " bytes"));
                    return a;
                }
                if (auto etag = header(r, "etag"))
                    storeRelease(key, CachedRelease{*etag, body, 0});
                json = std::move(body);
                a.finished = true;
                return a;
            }
            if (status == 404 && !foreign) {
                a.finished = true;
                a.result = fail(ErrorCode::kNotFound,
                                "release '" + req.tag + "' not found in " + req.repo);
                return a;
            }
            summarize(a, *ex, foreign);
            if (status == 304)
                a.error = Error(ErrorCode::kHttp, "HTTP 304 without a cached release");
            return a;
        });
        if (!st)
            return fail(st.error());
        return json;
    }

    std::optional<CachedRelease> cachedRelease(const std::string& key) {
        std::lock_guard<std::mutex> lk(cacheM);
        auto it = etagCache.find(key);
        if (it == etagCache.end())
            return std::nullopt;
        it->second.used = ++cacheClock;
        return it->second;
    }

    // Bounded: the least recently used entry goes first.
    void storeRelease(const std::string& key, CachedRelease entry) {
        std::lock_guard<std::mutex> lk(cacheM);
        entry.used = ++cacheClock;
        etagCache[key] = std::move(entry);
        while (etagCache.size() > kMaxEtagEntries) {
            auto oldest = etagCache.begin();
            for (auto it = etagCache.begin(); it != etagCache.end(); ++it)
                if (it->second.used < oldest->second.used)
                    oldest = it;
            etagCache.erase(oldest);
        }
    }

    // ---- the download -----------------------------------------------------------------------
    struct Progress {
        Sha256 sha;
        uint64_t have = 0;
        bool spliced = false;  // the bytes came from more than one response (a resume)
    };

    Status download(const AssetRequest& req, const AssetInfo& asset, const std::string& part,
                    Progress& prog, const CancelToken& cancel) {
        const std::string rest = repoPath(req) + "/releases/assets/" + std::to_string(asset.id);
        return withRetries("download", cancel, [&](int, const Settings& s) {
            Attempt a;
            Headers extra;
            if (prog.have > 0)
                extra.emplace_back("Range", "bytes=" + std::to_string(prog.have) + "-");
            auto ex = openFollowing(s, apiTarget(s, rest), "application/octet-stream", extra,
                                    WatchSpec{&cancel, false}, a);
            if (!ex)
                return a;
            auto& r = ex->response;
            const int status = static_cast<int>(r.getStatus());
            const bool foreign = !fromApi(s, *ex);
            if (status == 404 && !foreign) {
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
                summarize(a, *ex, foreign);
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
                if (start > 0)
                    prog.spliced = true;
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
        prog.spliced = false;
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
                ex.counted(n);
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
            err = ex.explain(Error(ErrorCode::kNetwork, "reading asset: " + e.displayText()));
        } catch (const std::exception& e) {
            err = ex.explain(Error(ErrorCode::kNetwork, std::string("reading asset: ") + e.what()));
        }
        // A connection the watchdog cut ends the body early, often without an exception.
        if (!err && prog.have < asset.size)
            if (auto v = ex.guard->verdict())
                err = *v;
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
    Expected<Artifact> fetchLocked(const AssetRequest& req, const AssetInfo& asset,
                                   const std::string& dir, const std::string& finalPath,
                                   const CancelToken& cancel);
};

Expected<Artifact> GithubClient::Impl::fetch(const AssetRequest& req, const CancelToken& cancel) {
    {
        auto s = snapshot();
        if (!s->tlsError.empty() && Poco::toLower(s->api.getScheme()) != "http")
            return fail(ErrorCode::kTls, s->tlsError);
    }
    const auto slash = req.repo.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == req.repo.size() ||
        req.repo.find('/', slash + 1) != std::string::npos ||
        req.repo.find("..") != std::string::npos)
        return fail(ErrorCode::kRefused, "repo '" + req.repo + "' is not owner/name");

    auto json = releaseJson(req, cancel);
    if (!json)
        return fail(json.error());
    auto release = parseRelease(*json);
    if (!release)
        return fail(release.error());
    if (release->tagName != req.tag)
        return fail(ErrorCode::kMismatch, "GitHub answered the release of tag '" +
                                              release->tagName + "' for tag '" + req.tag + "'");
    auto asset = selectAsset(*release, req.assetPattern, req.tag, req.arch, req.allowPrerelease);
    if (!asset)
        return fail(asset.error());

    const std::string dir =
        workDir + "/" + sanitizePathPart(req.component) + "/" + sanitizePathPart(req.tag);
    const std::string finalPath = dir + "/" + asset->name;
    lockPath(finalPath);
    auto result = fetchLocked(req, *asset, dir, finalPath, cancel);
    unlockPath(finalPath);
    return result;
}

namespace {
// What a .part holds the bytes of: a replaced asset (same name, new id or digest) must never
// be spliced onto the old one's bytes.
std::string partIdentity(const AssetInfo& asset) {
    return "asset " + std::to_string(asset.id) + " size " + std::to_string(asset.size) +
           " digest " + asset.sha256.value_or("none");
}
}  // namespace

Expected<Artifact> GithubClient::Impl::fetchLocked(const AssetRequest& req, const AssetInfo& asset,
                                                   const std::string& dir,
                                                   const std::string& finalPath,
                                                   const CancelToken& cancel) {
    const std::string part = finalPath + ".part";
    const std::string partMeta = part + ".meta";
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
        if (readSmallFile(partMeta) != partIdentity(asset) || *partSize > asset.size ||
            !hashFile(part, prog.sha, &n) || n != *partSize) {
            restart(part, prog);
        } else {
            prog.have = n;
            prog.spliced = n > 0;
        }
    }
    if (prog.have == 0 && !writeSmallFileDurably(partMeta, partIdentity(asset) + "\n"))
        return fail(ErrorCode::kIo, "cannot write " + partMeta + ": " + errnoText(errno));

    struct statvfs vfs {};
    if (::statvfs(dir.c_str(), &vfs) == 0) {
        const uint64_t free = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
        const uint64_t need = asset.size - prog.have;
        if (need > free)
            return fail(ErrorCode::kIo, "not enough space in " + dir + ": needs " + mib(need) +
                                            " MiB, has " + std::to_string(free >> 20) + " MiB");
    }

    std::string got;
    // A resumed download that fails its digest may have spliced two different files: it
    // gets one fresh start from byte 0 before the release is called bad.
    for (bool fresh = false;; fresh = true) {
        if (prog.have < asset.size) {
            if (prog.have > 0)
                log().information("component '" + req.component + "' tag " + req.tag +
                                  ": resuming '" + asset.name + "' at byte " +
                                  std::to_string(prog.have));
            Status st = download(req, asset, part, prog, cancel);
            if (!st) {
                if (!fileSize(part))
                    ::unlink(partMeta.c_str());
                return fail(st.error());
            }
        }
        got = prog.sha.finish();
        if (prog.have != asset.size) {
            ::unlink(part.c_str());
            return fail(ErrorCode::kMismatch, "size mismatch for '" + asset.name + "': got " +
                                                  std::to_string(prog.have) + " bytes, expected " +
                                                  std::to_string(asset.size));
        }
        if (!asset.sha256 || got == *asset.sha256)
            break;
        if (prog.spliced && !fresh) {
            log().warning("component '" + req.component + "' tag " + req.tag + ": '" + asset.name +
                          "' resumed download has sha256 " + got +
                          "; downloading it again from the start");
            restart(part, prog);
            continue;
        }
        ::unlink(part.c_str());
        ::unlink(partMeta.c_str());
        return fail(ErrorCode::kMismatch, "sha256 mismatch for '" + asset.name + "': expected " +
                                              *asset.sha256 + ", got " + got);
    }
    if (!fsyncPath(part, O_RDONLY) || ::rename(part.c_str(), finalPath.c_str()) != 0)
        return fail(ErrorCode::kIo, "cannot move " + part + " into place: " + errnoText(errno));
    ::unlink(partMeta.c_str());
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
    ::unlink((a.path + ".part.meta").c_str());
    // Empty <tag> and <component> directories go too; rmdir fails harmlessly when not empty.
    std::string dir = dirOf(a.path);
    for (int i = 0; i < 2 && dir.size() > impl_->workDir.size(); ++i) {
        if (::rmdir(dir.c_str()) != 0)
            break;
        dir = dirOf(dir);
    }
}

void GithubClient::setTransferLimits(const TransferLimits& limits) {
    std::lock_guard<std::mutex> lk(impl_->limitsM);
    impl_->limits = limits;
}

Quota GithubClient::quota() const {
    std::lock_guard<std::mutex> lk(impl_->quotaM);
    return impl_->quota;
}

}  // namespace rra::github
