// GithubClient against the fake GitHub (HTTPS with a test CA, asset host on 127.0.0.2):
// verified downloads, redirects without the token, rejected bytes, resume, every rate-limit
// kind on a fake clock, the client-wide pause, ETags, disk checks and token hygiene.
#include <boost/test/unit_test.hpp>

#include "fakes/github/fake_github.hpp"
#include "github/github_client.hpp"

#include <Poco/AutoPtr.h>
#include <Poco/Channel.h>
#include <Poco/File.h>
#include <Poco/Logger.h>
#include <Poco/Message.h>
#include <Poco/Net/SSLManager.h>

#include <openssl/evp.h>

#include <climits>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <thread>

using namespace rra;
using namespace rra::github;
using rra::fakes::FakeAsset;
using rra::fakes::FakeGithub;
using rra::fakes::FakeRelease;
using rra::fakes::ScriptedResponse;
using rra::fakes::TestPki;

namespace {

const std::string kToken = "ghp_TESTtoken0123456789SECRET";
constexpr int64_t kServerEpoch = 1'700'000'000;  // the fake's Date; the FakeClock says 1.8e9

std::string makeTempDir(const std::string& tag) {
    std::string tmpl = "/tmp/rra-github-" + tag + "-XXXXXX";
    char* p = ::mkdtemp(tmpl.data());
    BOOST_REQUIRE(p != nullptr);
    return p;
}

struct TempDir {
    explicit TempDir(const std::string& tag) : path(makeTempDir(tag)) {}
    ~TempDir() {
        try {
            Poco::File(path).remove(true);
        } catch (...) {
        }
    }
    std::string path;
};

// Logs of the whole run, to prove the token never reaches them.
class CaptureChannel : public Poco::Channel {
  public:
    void log(const Poco::Message& m) override {
        std::lock_guard<std::mutex> lk(m_);
        text_ += m.getText() + "\n";
    }
    std::string text() const {
        std::lock_guard<std::mutex> lk(m_);
        return text_;
    }

  private:
    mutable std::mutex m_;
    std::string text_;
};

Poco::AutoPtr<CaptureChannel>& capture() {
    static Poco::AutoPtr<CaptureChannel> c(new CaptureChannel);
    return c;
}

struct GlobalSetup {
    GlobalSetup() {
        Poco::Net::initializeSSL();
        // Holds its own reference: Poco 1.11's setChannel() adopts the pointer it is given.
        Poco::AutoPtr<Poco::Channel> channel(capture());
        Poco::Logger::root().setChannel(channel);  // loggers made later inherit it
        Poco::Logger::root().setLevel(Poco::Message::PRIO_TRACE);
        Poco::Logger::setChannel("", channel);
        Poco::Logger::setLevel("", Poco::Message::PRIO_TRACE);
    }
    ~GlobalSetup() { Poco::Net::uninitializeSSL(); }
};
BOOST_TEST_GLOBAL_FIXTURE(GlobalSetup);

const TestPki& pki() {
    static TempDir dir("pki");
    static TestPki p = TestPki::generate(dir.path);
    return p;
}

std::string sha256(const std::string& s) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(s.data(), s.size(), md, &n, EVP_sha256(), nullptr);
    static const char* d = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < n; ++i) {
        out += d[md[i] >> 4];
        out += d[md[i] & 15];
    }
    return out;
}

std::string randomBytes(size_t n, unsigned seed) {
    std::mt19937 gen(seed);
    std::string s(n, '\0');
    for (auto& c : s)
        c = static_cast<char>(gen() & 0xff);
    return s;
}

std::string readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

bool exists(const std::string& path) {
    return Poco::File(path).exists();
}

bool dirHasFiles(const std::string& dir) {
    if (!exists(dir))
        return false;
    std::vector<std::string> names;
    Poco::File(dir).list(names);
    for (const auto& n : names) {
        Poco::File f(dir + "/" + n);
        if (f.isFile())
            return true;
        if (f.isDirectory() && dirHasFiles(dir + "/" + n))
            return true;
    }
    return false;
}

FakeAsset asset(const std::string& name, const std::string& content) {
    FakeAsset a;
    a.name = name;
    a.content = content;
    return a;
}

int code(const Error& e) {
    return static_cast<int>(e.code());
}
int code(ErrorCode c) {
    return static_cast<int>(c);
}

// One fake GitHub (HTTPS) with one release, a work dir, a fake clock and a client.
struct Env {
    explicit Env(FakeGithub::Options opt = tlsOptions(), int maxAttempts = 8)
        : work("work"), fake(std::move(opt)) {
        fake.setDate(kServerEpoch);
        cfg.apiUrl = fake.apiUrl();
        cfg.token = Secret(kToken);
        cfg.caFile = pki().caFile;
        cfg.backoffInitialS = 60;
        cfg.backoffMaxS = 3600;
        cfg.maxAttempts = maxAttempts;
        content = randomBytes(300 * 1024 + 17, 1);
        FakeRelease r;
        r.tag = "v1.2.0";
        r.assets.push_back(asset("web-ui-1.2.0-arm64.tar.gz", content));
        r.assets.push_back(asset("web-ui-1.2.0-amd64.tar.gz", "other"));
        release = fake.addRelease("acme/web-ui", r);
        client = std::make_unique<GithubClient>(cfg, work.path, clock, random);
    }
    static FakeGithub::Options tlsOptions() {
        FakeGithub::Options o;
        o.tls = pki();
        return o;
    }
    static AssetRequest request(const std::string& component = "web-ui",
                                const std::string& repo = "acme/web-ui",
                                const std::string& tag = "v1.2.0") {
        return AssetRequest{component, repo, tag, "web-ui-{version}-{arch}.tar.gz", "arm64", false};
    }
    Expected<Artifact> fetch(const AssetRequest& req = request()) {
        return client->fetch(req, cancel);
    }
    std::string finalPath() const { return work.path + "/web-ui/v1.2.0/web-ui-1.2.0-arm64.tar.gz"; }
    std::string releasePath() const { return "/repos/acme/web-ui/releases/tags/"; }
    std::string assetPath() const { return "/repos/acme/web-ui/releases/assets/"; }

    TempDir work;
    FakeGithub fake;
    config::GithubSection cfg;
    FakeClock clock;
    FixedRandom random{0.0};
    CancelToken cancel;
    std::string content;
    FakeRelease release;
    std::unique_ptr<GithubClient> client;
};

std::vector<int64_t> sleepsMs(const FakeClock& c) {
    std::vector<int64_t> out;
    for (auto d : c.sleeps())
        out.push_back(d.count());
    return out;
}

ScriptedResponse limited(int status, std::vector<std::pair<std::string, std::string>> headers,
                         std::string body = R"({"message":"limited"})") {
    return ScriptedResponse{status, std::move(headers), std::move(body)};
}

}  // namespace

// Proves the happy path over HTTPS: verified bytes land in work_dir, with the required headers
// and the token on API requests; a second fetch reuses the file; discard removes it.
BOOST_AUTO_TEST_CASE(happy_path_https_reuse_and_discard) {
    Env env;
    auto a = env.fetch();
    BOOST_TEST_REQUIRE(a.has_value(), (a ? "" : a.error().message()));
    BOOST_TEST(a->path == env.finalPath());
    BOOST_TEST(a->size == env.content.size());
    BOOST_TEST(a->sha256 == sha256(env.content));
    BOOST_TEST(readFile(a->path) == env.content);
    BOOST_TEST(!exists(a->path + ".part"));

    auto reqs = env.fake.requests();
    BOOST_TEST_REQUIRE(reqs.size() == 2u);
    BOOST_TEST(reqs[0].uri == "/repos/acme/web-ui/releases/tags/v1.2.0");
    BOOST_TEST(reqs[0].header("authorization") == "Bearer " + kToken);
    BOOST_TEST(reqs[0].header("accept") == "application/vnd.github+json");
    BOOST_TEST(reqs[0].header("x-github-api-version") == "2022-11-28");
    BOOST_TEST(reqs[0].header("user-agent").rfind("raspi-release-agent/", 0) == 0u);
    BOOST_TEST(reqs[1].uri == env.assetPath() + std::to_string(env.release.assets[0].id));
    BOOST_TEST(reqs[1].header("accept") == "application/octet-stream");

    env.fake.clearRequests();
    auto again = env.fetch();
    BOOST_TEST_REQUIRE(again.has_value());
    BOOST_TEST(again->sha256 == a->sha256);
    BOOST_TEST(env.fake.countRequests(env.assetPath()) == 0u);

    env.client->discard(*again);
    BOOST_TEST(!exists(a->path));
    BOOST_TEST(!dirHasFiles(env.work.path));
}

// Proves TLS verification is on: a server certificate from another CA, or the system CAs,
// is refused with kTls and no HTTP request reaches the server.
BOOST_AUTO_TEST_CASE(wrong_ca_refused) {
    Env env;
    TempDir other("otherca");
    TestPki otherPki = TestPki::generate(other.path);
    auto cfg = env.cfg;
    cfg.caFile = otherPki.caFile;
    env.client->reconfigure(cfg);
    auto a = env.fetch();
    BOOST_TEST_REQUIRE(!a.has_value());
    BOOST_TEST(code(a.error()) == code(ErrorCode::kTls));
    BOOST_TEST(a.error().message().find("component 'web-ui' tag v1.2.0: download:") == 0u);

    cfg.caFile.reset();  // system CAs do not know the test CA either
    env.client->reconfigure(cfg);
    auto b = env.fetch();
    BOOST_TEST_REQUIRE(!b.has_value());
    BOOST_TEST(code(b.error()) == code(ErrorCode::kTls));
    BOOST_TEST(env.fake.requests().empty());
    BOOST_TEST(env.clock.sleeps().empty());
}

// Proves a 302 to the asset host (another host, HTTPS with the same ca_file) is followed and
// carries no Authorization, while the API request did.
BOOST_AUTO_TEST_CASE(redirect_to_asset_host_drops_authorization) {
    Env env;
    env.fake.setRedirectDownloads(true);
    auto a = env.fetch();
    BOOST_TEST_REQUIRE(a.has_value(), (a ? "" : a.error().message()));
    BOOST_TEST(readFile(a->path) == env.content);
    auto reqs = env.fake.requests();
    BOOST_TEST_REQUIRE(reqs.size() == 3u);
    BOOST_TEST(reqs[1].server == "api");
    BOOST_TEST(reqs[1].header("authorization") == "Bearer " + kToken);
    BOOST_TEST(reqs[2].server == "assets");
    BOOST_TEST(!reqs[2].has("authorization"));
    BOOST_TEST(reqs[2].uri.find("/dl/") == 0u);
}

// Proves an https -> http redirect is refused before anything is sent to the http host.
BOOST_AUTO_TEST_CASE(https_to_http_redirect_refused) {
    auto opt = Env::tlsOptions();
    opt.assetHostTls = false;
    Env env(opt);
    env.fake.setRedirectDownloads(true);
    auto a = env.fetch();
    BOOST_TEST_REQUIRE(!a.has_value());
    BOOST_TEST(code(a.error()) == code(ErrorCode::kRefused));
    BOOST_TEST(a.error().message().find("https to http") != std::string::npos);
    for (const auto& r : env.fake.requests())
        BOOST_TEST(r.server == "api");
    BOOST_TEST(!exists(env.finalPath()));
}

// Proves a digest mismatch fails with both digests, as kMismatch, and leaves nothing in place.
BOOST_AUTO_TEST_CASE(digest_mismatch_rejected) {
    Env env;
    FakeRelease r;
    r.tag = "v2.0.0";
    FakeAsset bad = asset("web-ui-2.0.0-arm64.tar.gz", "the real bytes");
    bad.digestOverride = "sha256:" + std::string(64, 'a');
    r.assets.push_back(bad);
    env.fake.addRelease("acme/web-ui", r);
    auto a = env.fetch(Env::request("web-ui", "acme/web-ui", "v2.0.0"));
    BOOST_TEST_REQUIRE(!a.has_value());
    BOOST_TEST(code(a.error()) == code(ErrorCode::kMismatch));
    BOOST_TEST(a.error().message().find(std::string(64, 'a')) != std::string::npos);
    BOOST_TEST(a.error().message().find(sha256("the real bytes")) != std::string::npos);
    BOOST_TEST(!dirHasFiles(env.work.path));
}

// Proves an HTML page served with 200 instead of the bytes is rejected, nothing left behind.
BOOST_AUTO_TEST_CASE(html_instead_of_bytes_rejected) {
    Env env;
    env.fake.htmlNext(1);
    auto a = env.fetch();
    BOOST_TEST_REQUIRE(!a.has_value());
    BOOST_TEST(code(a.error()) == code(ErrorCode::kMismatch));
    BOOST_TEST(a.error().message().find("HTML") != std::string::npos);
    BOOST_TEST(!dirHasFiles(env.work.path));
}

// Proves a truncated body is resumed with a Range request after one backoff and verifies.
BOOST_AUTO_TEST_CASE(truncated_body_resumed_with_range) {
    Env env;
    env.fake.truncateNext(1, 100'000);
    auto a = env.fetch();
    BOOST_TEST_REQUIRE(a.has_value(), (a ? "" : a.error().message()));
    BOOST_TEST(readFile(a->path) == env.content);
    auto reqs = env.fake.requests();
    BOOST_TEST_REQUIRE(reqs.size() == 3u);
    BOOST_TEST(!reqs[1].has("range"));
    BOOST_TEST(reqs[2].header("range") == "bytes=100000-");
    BOOST_TEST(sleepsMs(env.clock) == std::vector<int64_t>{60'000});
}

// Proves an interrupted download keeps its .part durably and the next fetch (a new run)
// resumes it instead of starting over.
BOOST_AUTO_TEST_CASE(truncated_body_resumed_by_next_fetch) {
    Env env(Env::tlsOptions(), 1);
    env.fake.truncateNext(1, 4096);
    auto a = env.fetch();
    BOOST_TEST_REQUIRE(!a.has_value());
    BOOST_TEST(code(a.error()) == code(ErrorCode::kNetwork));
    BOOST_TEST(!exists(env.finalPath()));
    BOOST_TEST(Poco::File(env.finalPath() + ".part").getSize() == 4096u);

    GithubClient fresh(env.cfg, env.work.path, env.clock, env.random);
    auto b = fresh.fetch(Env::request(), env.cancel);
    BOOST_TEST_REQUIRE(b.has_value(), (b ? "" : b.error().message()));
    BOOST_TEST(readFile(b->path) == env.content);
    BOOST_TEST(env.fake.requests().back().header("range") == "bytes=4096-");
}

// Proves that without Range support repeated truncation fails cleanly: a transient error
// after max_attempts, nothing at the final path.
BOOST_AUTO_TEST_CASE(truncated_without_range_fails_cleanly) {
    Env env(Env::tlsOptions(), 3);
    env.fake.setRangeSupport(false);
    env.fake.truncateNext(10, 1000);
    auto a = env.fetch();
    BOOST_TEST_REQUIRE(!a.has_value());
    BOOST_TEST(code(a.error()) == code(ErrorCode::kNetwork));
    BOOST_TEST(a.error().message().find("gave up after 3 attempts") != std::string::npos);
    BOOST_TEST(!exists(env.finalPath()));
    BOOST_TEST(env.fake.countRequests(env.assetPath()) == 3u);
    BOOST_TEST(sleepsMs(env.clock) == (std::vector<int64_t>{60'000, 120'000}));
}

// Proves retry-after is obeyed to the second.
BOOST_AUTO_TEST_CASE(retry_after_waits_exactly) {
    Env env;
    env.fake.script(env.releasePath(), limited(429, {{"retry-after", "17"}}));
    auto a = env.fetch();
    BOOST_TEST_REQUIRE(a.has_value(), (a ? "" : a.error().message()));
    BOOST_TEST(sleepsMs(env.clock) == std::vector<int64_t>{17'000});
    BOOST_TEST(env.fake.countRequests(env.releasePath()) == 2u);
}

// Proves a primary limit waits until x-ratelimit-reset as measured by the response's Date
// (the fake clock's wall time is 100,000,000 s off), not the local clock.
BOOST_AUTO_TEST_CASE(primary_limit_waits_until_reset_by_server_date) {
    Env env;
    env.fake.script(env.releasePath(),
                    limited(403,
                            {{"x-ratelimit-limit", "5000"},
                             {"x-ratelimit-remaining", "0"},
                             {"x-ratelimit-reset", std::to_string(kServerEpoch + 120)}},
                            R"({"message":"API rate limit exceeded"})"));
    auto a = env.fetch();
    BOOST_TEST_REQUIRE(a.has_value(), (a ? "" : a.error().message()));
    BOOST_TEST(sleepsMs(env.clock) == std::vector<int64_t>{120'000});
    BOOST_TEST(env.client->quota().remaining.value_or(-1) == 0);
}

// Proves a secondary limit without hints follows the formula and grows: 60, 120, 240 s.
BOOST_AUTO_TEST_CASE(secondary_limit_without_hints_grows) {
    Env env;
    for (int i = 0; i < 3; ++i)
        env.fake.script(env.releasePath(),
                        limited(403, {{"x-ratelimit-remaining", "4000"}},
                                R"({"message":"You have exceeded a secondary rate limit."})"));
    auto a = env.fetch();
    BOOST_TEST_REQUIRE(a.has_value(), (a ? "" : a.error().message()));
    BOOST_TEST(sleepsMs(env.clock) == (std::vector<int64_t>{60'000, 120'000, 240'000}));
}

// Proves limits end in kRateLimited once github.max_attempts requests were made.
BOOST_AUTO_TEST_CASE(rate_limit_gives_up_after_max_attempts) {
    Env env(Env::tlsOptions(), 2);
    for (int i = 0; i < 3; ++i)
        env.fake.script(env.releasePath(), limited(429, {}));
    auto a = env.fetch();
    BOOST_TEST_REQUIRE(!a.has_value());
    BOOST_TEST(code(a.error()) == code(ErrorCode::kRateLimited));
    BOOST_TEST(env.fake.countRequests(env.releasePath()) == 2u);
    BOOST_TEST(sleepsMs(env.clock) == std::vector<int64_t>{60'000});
}

// Proves a 403 without rate-limit signs is a permission error given up at once.
BOOST_AUTO_TEST_CASE(permission_403_gives_up_at_once) {
    Env env;
    env.fake.script(env.releasePath(),
                    limited(403, {{"x-ratelimit-remaining", "4321"}},
                            R"({"message":"Resource not accessible by personal access token"})"));
    auto a = env.fetch();
    BOOST_TEST_REQUIRE(!a.has_value());
    BOOST_TEST(code(a.error()) == code(ErrorCode::kPermission));
    BOOST_TEST(env.fake.countRequests(env.releasePath()) == 1u);
    BOOST_TEST(env.clock.sleeps().empty());
}

// Proves a 5xx is retried with backoff, and gives kHttp when it persists.
BOOST_AUTO_TEST_CASE(server_error_retried_then_http_error) {
    Env env(Env::tlsOptions(), 2);
    env.fake.script(env.releasePath(), limited(502, {}));
    auto a = env.fetch();
    BOOST_TEST_REQUIRE(a.has_value());
    BOOST_TEST(sleepsMs(env.clock) == std::vector<int64_t>{60'000});
    env.fake.script(env.releasePath(), limited(503, {}));
    env.fake.script(env.releasePath(), limited(503, {}));
    env.client->discard(*a);
    auto b = env.fetch();
    BOOST_TEST_REQUIRE(!b.has_value());
    BOOST_TEST(code(b.error()) == code(ErrorCode::kHttp));
}

// Proves a primary limit hit by one component's request pauses another component's request
// until the reset, although the first component gave up.
BOOST_AUTO_TEST_CASE(primary_limit_pauses_other_components) {
    Env env(Env::tlsOptions(), 1);
    FakeRelease other;
    other.tag = "v3.0.0";
    other.assets.push_back(asset("web-ui-3.0.0-arm64.tar.gz", "api bytes"));
    env.fake.addRelease("acme/api", other);
    env.fake.script(env.releasePath(),
                    limited(403, {{"x-ratelimit-remaining", "0"},
                                  {"x-ratelimit-reset", std::to_string(kServerEpoch + 300)}}));
    auto a = env.fetch();
    BOOST_TEST_REQUIRE(!a.has_value());
    BOOST_TEST(code(a.error()) == code(ErrorCode::kRateLimited));
    BOOST_TEST(env.clock.sleeps().empty());

    const auto before = env.clock.now();
    auto b = env.fetch(Env::request("api", "acme/api", "v3.0.0"));
    BOOST_TEST_REQUIRE(b.has_value(), (b ? "" : b.error().message()));
    BOOST_TEST(sleepsMs(env.clock) == std::vector<int64_t>{300'000});
    BOOST_TEST((env.clock.now() - before >= Millis(300'000)));
    BOOST_TEST(env.fake.countRequests("/repos/acme/api/") == 2u);
}

// Proves release metadata is requested with If-None-Match and a 304 reuses the cached JSON.
BOOST_AUTO_TEST_CASE(etag_304_reuses_cached_release) {
    Env env;
    auto a = env.fetch();
    BOOST_TEST_REQUIRE(a.has_value());
    env.client->discard(*a);
    env.fake.clearRequests();
    auto b = env.fetch();
    BOOST_TEST_REQUIRE(b.has_value(), (b ? "" : b.error().message()));
    auto reqs = env.fake.requests();
    BOOST_TEST_REQUIRE(reqs.size() == 2u);
    BOOST_TEST(reqs[0].has("if-none-match"));
    BOOST_TEST(readFile(b->path) == env.content);
}

// Proves missing releases, drafts and missing assets are kNotFound, with a message naming the
// component, the tag and the assets that exist.
BOOST_AUTO_TEST_CASE(not_found_cases_are_permanent_and_named) {
    Env env;
    auto none = env.fetch(Env::request("web-ui", "acme/web-ui", "v9.9.9"));
    BOOST_TEST_REQUIRE(!none.has_value());
    BOOST_TEST(code(none.error()) == code(ErrorCode::kNotFound));

    FakeRelease draft;
    draft.tag = "v1.3.0";
    draft.draft = true;
    draft.assets.push_back(asset("web-ui-1.3.0-arm64.tar.gz", "x"));
    env.fake.addRelease("acme/web-ui", draft);
    auto d = env.fetch(Env::request("web-ui", "acme/web-ui", "v1.3.0"));
    BOOST_TEST_REQUIRE(!d.has_value());
    BOOST_TEST(code(d.error()) == code(ErrorCode::kNotFound));

    auto req = Env::request();
    req.arch = "riscv64";
    auto miss = env.fetch(req);
    BOOST_TEST_REQUIRE(!miss.has_value());
    BOOST_TEST(code(miss.error()) == code(ErrorCode::kNotFound));
    BOOST_TEST(miss.error().message() ==
               "component 'web-ui' tag v1.2.0: download: asset 'web-ui-1.2.0-riscv64.tar.gz' not "
               "found; release has: web-ui-1.2.0-arm64.tar.gz, web-ui-1.2.0-amd64.tar.gz");
    BOOST_TEST(env.clock.sleeps().empty());
}

// Proves the free-space check runs before downloading and says how much is needed.
BOOST_AUTO_TEST_CASE(disk_space_checked_before_download) {
    Env env;
    const std::string json =
        R"({"id":1,"tag_name":"v1.2.0","draft":false,"prerelease":false,"assets":[)"
        R"({"id":5,"name":"web-ui-1.2.0-arm64.tar.gz","size":1125899906842624,"state":"uploaded",)"
        R"("url":"u","browser_download_url":"b","digest":null}]})";
    env.fake.script(env.releasePath(), ScriptedResponse{200, {}, json});
    auto a = env.fetch();
    BOOST_TEST_REQUIRE(!a.has_value());
    BOOST_TEST(code(a.error()) == code(ErrorCode::kIo));
    BOOST_TEST(a.error().message().find("needs 1073741824 MiB, has ") != std::string::npos);
    BOOST_TEST(env.fake.countRequests(env.assetPath()) == 0u);
}

// Proves concurrent fetches (several components, one shared asset too) all succeed.
BOOST_AUTO_TEST_CASE(concurrent_fetches) {
    Env env;
    env.fake.setRedirectDownloads(true);
    std::vector<std::thread> threads;
    std::vector<Expected<Artifact>> results(4, fail(ErrorCode::kGeneric, "not run"));
    for (int i = 0; i < 4; ++i)
        threads.emplace_back([&, i] {
            results[static_cast<size_t>(i)] =
                env.fetch(Env::request(i % 2 ? "web-ui" : "web-ui-b"));
        });
    for (auto& t : threads)
        t.join();
    for (const auto& r : results) {
        BOOST_TEST_REQUIRE(r.has_value(), (r ? "" : r.error().message()));
        BOOST_TEST(readFile(r->path) == env.content);
    }
}

// Proves the token never appears in captured logs or error messages, including the low-quota
// warning, retries and permission errors run above.
BOOST_AUTO_TEST_CASE(token_never_logged) {
    Env env;
    env.fake.setRateLimitHeaders(5000, 3, kServerEpoch + 60);
    env.fake.script(env.releasePath(), limited(403, {}, R"({"message":"Bad credentials"})"));
    auto a = env.fetch();
    BOOST_TEST_REQUIRE(!a.has_value());
    BOOST_TEST(a.error().message().find(kToken) == std::string::npos);
    auto b = env.fetch();
    BOOST_TEST_REQUIRE(b.has_value());
    const std::string logs = capture()->text();
    BOOST_TEST(logs.find("quota low: 3 of 5000") != std::string::npos);
    BOOST_TEST(!logs.empty());
    BOOST_TEST(logs.find(kToken) == std::string::npos);
    BOOST_TEST(logs.find("ghp_") == std::string::npos);
}

namespace {

// A fake clock whose next sleep runs a hook: "something happens while a retry waits".
class HookClock final : public Clock {
  public:
    SteadyTime now() const override { return inner.now(); }
    WallTime wallNow() const override { return inner.wallNow(); }
    bool sleepFor(Millis d, const CancelToken* cancel = nullptr) override {
        const bool ok = inner.sleepFor(d, cancel);
        if (onSleep) {
            auto f = std::move(onSleep);
            onSleep = nullptr;
            f();
        }
        return ok;
    }
    FakeClock inner;
    std::function<void()> onSleep;
};

std::string releaseJsonFor(const std::string& tag, const std::string& assetsJson = "") {
    return R"({"id":1,"tag_name":")" + tag + R"(","draft":false,"prerelease":false,"assets":[)" +
           assetsJson + "]}";
}

}  // namespace

// Proves a tag is sent percent-encoded in one path segment ('/' as %2F, '+' as %2B), exactly
// as built (the fake records the raw request target), and that the lookup works end to end.
BOOST_AUTO_TEST_CASE(tag_is_percent_encoded_in_the_request_target) {
    Env env;
    FakeRelease r;
    r.tag = "release/1.0+build.5";
    r.assets.push_back(asset("app.bin", "slash tag bytes"));
    env.fake.addRelease("acme/web-ui", r);
    auto req = Env::request("app", "acme/web-ui", "release/1.0+build.5");
    req.assetPattern = "app.bin";
    auto a = env.fetch(req);
    BOOST_TEST_REQUIRE(a.has_value(), (a ? "" : a.error().message()));
    BOOST_TEST(readFile(a->path) == "slash tag bytes");
    auto reqs = env.fake.requests();
    BOOST_TEST_REQUIRE(!reqs.empty());
    BOOST_TEST(reqs[0].uri == "/repos/acme/web-ui/releases/tags/release%2F1.0%2Bbuild.5");
}

// Proves a reload reaches a request already retrying: the retry after the wait carries the
// new token, not the one the fetch started with.
BOOST_AUTO_TEST_CASE(reload_reaches_a_retrying_request) {
    Env env;
    HookClock clock;
    GithubClient client(env.cfg, env.work.path, clock, env.random);
    env.fake.script(env.releasePath(), limited(429, {{"retry-after", "17"}}));
    const std::string newToken = "ghp_NEWtoken9876543210";
    clock.onSleep = [&] {
        auto cfg = env.cfg;
        cfg.token = Secret(newToken);
        client.reconfigure(cfg);
    };
    auto a = client.fetch(Env::request(), env.cancel);
    BOOST_TEST_REQUIRE(a.has_value(), (a ? "" : a.error().message()));
    auto reqs = env.fake.requests();
    BOOST_TEST_REQUIRE(reqs.size() == 3u);
    BOOST_TEST(reqs[0].header("authorization") == "Bearer " + kToken);
    BOOST_TEST(reqs[1].header("authorization") == "Bearer " + newToken);
    BOOST_TEST(reqs[2].header("authorization") == "Bearer " + newToken);
}

// Proves a metadata request that trickles (a byte every 50 ms, far inside the read timeout)
// is cut at its total deadline and retried as a transient error.
BOOST_AUTO_TEST_CASE(stalled_metadata_hits_the_deadline_and_is_retried) {
    Env env;
    TransferLimits lim;
    lim.metadataDeadline = Millis(300);
    env.client->setTransferLimits(lim);
    env.fake.trickleNext(1, 50);
    auto a = env.fetch();
    BOOST_TEST_REQUIRE(a.has_value(), (a ? "" : a.error().message()));
    BOOST_TEST(env.fake.countRequests(env.releasePath()) == 2u);
    BOOST_TEST(sleepsMs(env.clock) == std::vector<int64_t>{60'000});
    BOOST_TEST(capture()->text().find("no complete response within 300 ms") != std::string::npos);
}

// Proves a download below the low-speed floor is aborted and resumed rather than holding its
// slot forever.
BOOST_AUTO_TEST_CASE(slow_download_is_aborted_and_resumed) {
    Env env;
    auto first = env.fetch();  // caches the release: the next lookup is a 304 without a body
    BOOST_TEST_REQUIRE(first.has_value());
    env.client->discard(*first);
    TransferLimits lim;
    lim.lowSpeedBytesPerS = 4096;
    lim.lowSpeedWindow = Millis(300);
    env.client->setTransferLimits(lim);
    env.fake.clearRequests();
    env.fake.trickleNext(1, 20);
    auto a = env.fetch();
    BOOST_TEST_REQUIRE(a.has_value(), (a ? "" : a.error().message()));
    BOOST_TEST(readFile(a->path) == env.content);
    BOOST_TEST(env.fake.countRequests(env.assetPath()) == 2u);
    BOOST_TEST(sleepsMs(env.clock) == std::vector<int64_t>{60'000});
    BOOST_TEST(capture()->text().find("transfer slower than 4096 bytes/s") != std::string::npos);
}

// Proves a cancel interrupts a read that is still receiving (slowly): without the watchdog this
// trickle (about 14 s) would complete and the fetch succeed.
BOOST_AUTO_TEST_CASE(cancel_interrupts_a_slow_read) {
    Env env;
    TransferLimits lim;
    lim.metadataDeadline = Millis(3'600'000);
    env.client->setTransferLimits(lim);
    env.fake.trickleNext(1, 20);
    std::thread canceller([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        env.cancel.cancel();
    });
    auto a = env.fetch();
    canceller.join();
    BOOST_TEST_REQUIRE(!a.has_value());
    BOOST_TEST(code(a.error()) == code(ErrorCode::kCancelled));
}

// Proves statuses the client does not handle (204, a 302 without Location) are transient
// kHttp errors that keep the partial download, not a bad release: the next fetch resumes.
BOOST_AUTO_TEST_CASE(unexpected_status_is_transient_and_keeps_the_part) {
    Env env(Env::tlsOptions(), 1);
    env.fake.truncateNext(1, 4096);
    BOOST_TEST_REQUIRE(!env.fetch().has_value());
    BOOST_TEST_REQUIRE(Poco::File(env.finalPath() + ".part").getSize() == 4096u);

    env.fake.script(env.assetPath(), ScriptedResponse{204, {}, ""});
    auto a = env.fetch();
    BOOST_TEST_REQUIRE(!a.has_value());
    BOOST_TEST(code(a.error()) == code(ErrorCode::kHttp));
    BOOST_TEST(Poco::File(env.finalPath() + ".part").getSize() == 4096u);

    env.fake.script(env.assetPath(), ScriptedResponse{302, {}, ""});
    auto b = env.fetch();
    BOOST_TEST_REQUIRE(!b.has_value());
    BOOST_TEST(code(b.error()) == code(ErrorCode::kHttp));
    BOOST_TEST(Poco::File(env.finalPath() + ".part").getSize() == 4096u);

    auto c = env.fetch();
    BOOST_TEST_REQUIRE(c.has_value(), (c ? "" : c.error().message()));
    BOOST_TEST(readFile(c->path) == env.content);
    BOOST_TEST(env.fake.requests().back().header("range") == "bytes=4096-");
}

// Proves the release lookup follows a 301 (a renamed repository) on the same origin, with the
// token.
BOOST_AUTO_TEST_CASE(release_lookup_follows_a_permanent_redirect) {
    Env env;
    env.fake.script("/repos/acme/old-name/",
                    ScriptedResponse{301,
                                     {{"Location", env.fake.apiUrl() +
                                                       "/repos/acme/web-ui/releases/tags/v1.2.0"}},
                                     ""});
    auto a = env.fetch(Env::request("web-ui", "acme/old-name", "v1.2.0"));
    BOOST_TEST_REQUIRE(a.has_value(), (a ? "" : a.error().message()));
    auto reqs = env.fake.requests();
    BOOST_TEST_REQUIRE(reqs.size() >= 2u);
    BOOST_TEST(reqs[1].uri == "/repos/acme/web-ui/releases/tags/v1.2.0");
    BOOST_TEST(reqs[1].header("authorization") == "Bearer " + kToken);
    BOOST_TEST(env.clock.sleeps().empty());
}

// Proves a 403 (expired signed URL) and a 404 from the asset host are retried through the API
// for a fresh URL: no permission error, no "not found" verdict on the release.
BOOST_AUTO_TEST_CASE(asset_host_403_and_404_are_transient) {
    Env env;
    env.fake.setRedirectDownloads(true);
    env.fake.scriptAssetHost("/dl/", ScriptedResponse{403, {}, "<Error>AccessDenied</Error>"});
    env.fake.scriptAssetHost("/dl/", ScriptedResponse{404, {}, "<Error>NoSuchKey</Error>"});
    auto a = env.fetch();
    BOOST_TEST_REQUIRE(a.has_value(), (a ? "" : a.error().message()));
    BOOST_TEST(readFile(a->path) == env.content);
    BOOST_TEST(env.fake.countRequests(env.assetPath()) == 3u);
    BOOST_TEST(sleepsMs(env.clock) == (std::vector<int64_t>{60'000, 120'000}));
}

// Proves a .part left by another asset (a replaced asset with the same name) is discarded,
// not resumed: no Range request, the right bytes.
BOOST_AUTO_TEST_CASE(part_of_a_replaced_asset_is_not_resumed) {
    Env env;
    Poco::File(env.work.path + "/web-ui/v1.2.0").createDirectories();
    {
        std::ofstream(env.finalPath() + ".part", std::ios::binary) << std::string(4096, 'x');
        std::ofstream(env.finalPath() + ".part.meta") << "asset 1 size 307217 digest none\n";
    }
    auto a = env.fetch();
    BOOST_TEST_REQUIRE(a.has_value(), (a ? "" : a.error().message()));
    BOOST_TEST(readFile(a->path) == env.content);
    for (const auto& r : env.fake.requests())
        BOOST_TEST(!r.has("range"));
    BOOST_TEST(!exists(env.finalPath() + ".part.meta"));
}

// Proves a resumed download whose digest fails starts over once from byte 0 and succeeds
// (here the kept bytes were damaged on disk).
BOOST_AUTO_TEST_CASE(resumed_digest_mismatch_restarts_once) {
    Env env(Env::tlsOptions(), 1);
    env.fake.truncateNext(1, 4096);
    BOOST_TEST_REQUIRE(!env.fetch().has_value());
    {
        std::fstream f(env.finalPath() + ".part", std::ios::in | std::ios::out | std::ios::binary);
        f.write("damaged!", 8);
    }
    env.fake.clearRequests();
    auto a = env.fetch();
    BOOST_TEST_REQUIRE(a.has_value(), (a ? "" : a.error().message()));
    BOOST_TEST(readFile(a->path) == env.content);
    auto reqs = env.fake.requests();
    BOOST_TEST_REQUIRE(reqs.size() == 3u);
    BOOST_TEST(reqs[1].header("range") == "bytes=4096-");
    BOOST_TEST(!reqs[2].has("range"));
}

// Proves a successful answer that spent the last request (remaining 0) pauses the client
// until reset (by the server's Date) before its next request.
BOOST_AUTO_TEST_CASE(success_with_no_quota_left_pauses_until_reset) {
    Env env;
    env.fake.setRateLimitHeaders(5000, 0, kServerEpoch + 100);
    auto a = env.fetch();
    BOOST_TEST_REQUIRE(a.has_value(), (a ? "" : a.error().message()));
    BOOST_TEST(sleepsMs(env.clock) == std::vector<int64_t>{100'000});
}

// Proves hostile rate-limit values neither overflow nor end the pause: a reset 10^10 s ahead
// gives up at once as rate limited, and the next request still waits (the clamp, 24 h).
// An 18-digit retry-after does the same; absurd quota values are clamped.
BOOST_AUTO_TEST_CASE(hostile_rate_limit_values_are_clamped) {
    Env env(Env::tlsOptions(), 8);
    env.fake.script(
        env.releasePath(),
        limited(403, {{"x-ratelimit-limit", "99999999999999999"},
                      {"x-ratelimit-remaining", "0"},
                      {"x-ratelimit-reset", std::to_string(kServerEpoch + 10'000'000'000)}}));
    auto a = env.fetch();
    BOOST_TEST_REQUIRE(!a.has_value());
    BOOST_TEST(code(a.error()) == code(ErrorCode::kRateLimited));
    BOOST_TEST(env.clock.sleeps().empty());
    BOOST_TEST(env.client->quota().limit.value_or(-1) == INT_MAX);
    BOOST_TEST(env.client->quota().remaining.value_or(-1) == 0);

    auto b = env.fetch();
    BOOST_TEST_REQUIRE(b.has_value(), (b ? "" : b.error().message()));
    BOOST_TEST(sleepsMs(env.clock) == std::vector<int64_t>{86'400'000});

    env.client->discard(*b);
    env.fake.script(env.releasePath(), limited(429, {{"retry-after", "999999999999999999"}}));
    auto c = env.fetch();
    BOOST_TEST_REQUIRE(!c.has_value());
    BOOST_TEST(code(c.error()) == code(ErrorCode::kRateLimited));
    BOOST_TEST(env.fake.countRequests(env.releasePath()) == 3u);
    BOOST_TEST(sleepsMs(env.clock) == std::vector<int64_t>{86'400'000});
}

// Proves a release answering another tag than the one asked for is refused, and an oversized
// release JSON (> 4 MiB) is refused without parsing.
BOOST_AUTO_TEST_CASE(wrong_tag_and_oversized_release_refused) {
    Env env;
    env.fake.script(env.releasePath(), ScriptedResponse{200, {}, releaseJsonFor("v6.6.6")});
    auto a = env.fetch();
    BOOST_TEST_REQUIRE(!a.has_value());
    BOOST_TEST(code(a.error()) == code(ErrorCode::kMismatch));
    BOOST_TEST(a.error().message().find("v6.6.6") != std::string::npos);

    env.fake.script(env.releasePath(),
                    ScriptedResponse{200, {}, R"({"pad":")" + std::string(5 << 20, ' ') + "\"}"});
    auto b = env.fetch();
    BOOST_TEST_REQUIRE(!b.has_value());
    BOOST_TEST(code(b.error()) == code(ErrorCode::kRefused));
    BOOST_TEST(b.error().message().find("4 MiB") != std::string::npos);
}
