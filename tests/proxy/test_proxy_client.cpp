// Proves ProxyClient against the fake proxy over ws:// and wss://: hello content, sync and
// release delivery, telemetry ack and resend, garbage tolerance, close codes, 4001/401
// handling, heartbeat, inventory, and that the token never reaches the log.
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "common/version.hpp"
#include "fakes/proxy/fake_proxy.hpp"
#include "proxy/messages.hpp"
#include "proxy/proxy_client.hpp"

#include <Poco/AutoPtr.h>
#include <Poco/Channel.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Logger.h>
#include <Poco/Message.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Net/WebSocket.h>
#include <Poco/Pipe.h>
#include <Poco/PipeStream.h>
#include <Poco/Process.h>

#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <set>
#include <thread>

using namespace rra;
using namespace rra::proxy;
using rra::fakes::FakeProxy;

namespace rra::proxy {
std::ostream& operator<<(std::ostream& os, ProxyClient::State s) {
    return os << toString(s);
}
}  // namespace rra::proxy

namespace {

const std::string kToken = "s3cr3t-proxy-t0ken-do-not-log";
constexpr Millis kWait{5000};

bool waitUntil(const std::function<bool()>& pred, Millis timeout = kWait) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
        if (std::chrono::steady_clock::now() >= deadline)
            return false;
        std::this_thread::sleep_for(Millis(5));
    }
    return true;
}

class CaptureChannel : public Poco::Channel {
  public:
    void log(const Poco::Message& msg) override {
        std::lock_guard<std::mutex> lk(m_);
        lines_.push_back(msg.getText());
        if (msg.getPriority() <= Poco::Message::PRIO_ERROR)
            ++errors_;
    }
    std::vector<std::string> lines() const {
        std::lock_guard<std::mutex> lk(m_);
        return lines_;
    }
    int errors() const {
        std::lock_guard<std::mutex> lk(m_);
        return errors_;
    }
    size_t count(const std::string& needle) const {
        std::lock_guard<std::mutex> lk(m_);
        return static_cast<size_t>(std::count_if(lines_.begin(), lines_.end(), [&](auto& l) {
            return l.find(needle) != std::string::npos;
        }));
    }

  private:
    mutable std::mutex m_;
    std::vector<std::string> lines_;
    int errors_ = 0;
};

struct Announced {
    std::vector<Announcement> batch;
    bool fromSync;
};

// A fake proxy, a client wired to it on a fake clock, and every log line of "proxy".
struct ClientFixture {
    explicit ClientFixture(FakeProxy::Options opts = {}) : fake(std::move(opts)) {
        capture = new CaptureChannel;
        auto& log = Poco::Logger::get("proxy");
        previousLevel = log.getLevel();
        log.setChannel(capture);
        log.setLevel(Poco::Message::PRIO_TRACE);
        fake.setSync({{"web-ui", "acme/web-ui", "v2.4.0", "2026-12-01T10:00:00Z"},
                      {"web-ui", "acme/web-ui", "v2.5.0", "2026-12-02T10:00:00Z"}});
        fake.start();
        cfg.url = fake.url();
        cfg.token = Secret(kToken);
        cfg.heartbeatS = 30;
        cfg.reconnectInitialMs = 100;
        cfg.reconnectMaxMs = 7000;
        cfg.telemetryQueue = 100;
    }
    ~ClientFixture() {
        client.reset();
        fake.stop();
        for (const auto& l : capture->lines()) {
            BOOST_CHECK_MESSAGE(l.find(kToken) == std::string::npos, "token in log: " << l);
            // Poco renders a format/argument type mismatch as [ERRFMT] instead of failing.
            BOOST_CHECK_MESSAGE(l.find("[ERRFMT]") == std::string::npos, "bad format: " << l);
        }
        for (const auto& h : fake.handshakes())
            BOOST_CHECK(h.path.find(kToken) == std::string::npos);
        auto& log = Poco::Logger::get("proxy");
        log.setChannel(nullptr);
        log.setLevel(previousLevel);
    }

    void makeClient() {
        ProxyClient::Callbacks cb;
        cb.inventory = [this] {
            std::function<void()> hook;
            {
                std::lock_guard<std::mutex> lk(m);
                ++inventoryCalls;
                hook = onInventory;
            }
            if (hook)
                hook();
            std::lock_guard<std::mutex> lk(m);
            return inventory;
        };
        cb.announce = [this](std::vector<Announcement> batch, bool fromSync) {
            std::lock_guard<std::mutex> lk(m);
            announced.push_back({std::move(batch), fromSync});
        };
        cb.connected = [this] { ++connectedCalls; };
        client = std::make_unique<ProxyClient>(cfg, "pi-test", "arm64", "1.4.0", cb, clock, random);
    }
    void startClient() {
        makeClient();
        client->start();
    }
    std::vector<Announced> announcements() {
        std::lock_guard<std::mutex> lk(m);
        return announced;
    }
    static TelemetryEvent event(const std::string& tag, TelemetryKind kind) {
        TelemetryEvent ev;
        ev.component = "web-ui";
        ev.tag = tag;
        ev.fromTag = "v2.3.1";
        ev.event = kind;
        return ev;
    }
    std::vector<std::string> telemetryIds(int connection) {
        std::vector<std::string> out;
        for (const auto& msg : fake.messages("telemetry"))
            if (msg.connection == connection)
                out.push_back(msg.json->getValue<std::string>("id"));
        return out;
    }

    FakeClock clock;
    FixedRandom random{0.0};
    FakeProxy fake;
    Poco::AutoPtr<CaptureChannel> capture;
    int previousLevel = Poco::Message::PRIO_INFORMATION;
    config::ProxySection cfg;
    std::unique_ptr<ProxyClient> client;
    std::mutex m;
    std::vector<ComponentReport> inventory = {
        {"web-ui", "acme/web-ui", "tarball", std::string("v2.3.1")},
        {"sensor", "acme/sensor", "deb", std::nullopt}};
    int inventoryCalls = 0;
    std::function<void()> onInventory;  // runs on the client thread inside the callback
    std::vector<Announced> announced;
    std::atomic<int> connectedCalls{0};
};

// The same over TLS, with certificates made for this test run.
struct TlsFixture {
    static std::string pkiDir() {
        static std::string dir = [] {
            char tmpl[] = "/tmp/rra-proxy-pki-XXXXXX";
            return std::string(mkdtemp(tmpl));
        }();
        return dir;
    }
    static const fakes::TestPki& pki() {
        static fakes::TestPki p = fakes::TestPki::generate(pkiDir());
        return p;
    }
};

FakeProxy::Options tlsOptions() {
    FakeProxy::Options o;
    o.certFile = TlsFixture::pki().certFile;
    o.keyFile = TlsFixture::pki().keyFile;
    return o;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(proxy_client)

BOOST_FIXTURE_TEST_CASE(hello_carries_inventory_and_headers, ClientFixture) {
    // First message is hello with the discovered current tags (null when nothing is
    // installed), and the upgrade request carries path, subprotocol, token and User-Agent.
    startClient();
    BOOST_REQUIRE(fake.waitForHello(1, kWait));
    auto hello = fake.messages("hello")[0];
    BOOST_TEST(fake.messages()[0].type == "hello");
    BOOST_TEST(hello.json->getValue<int>("protocol") == 1);
    BOOST_TEST(hello.json->getValue<std::string>("agent_id") == "pi-test");
    BOOST_TEST(hello.json->getValue<std::string>("agent_version") == "1.4.0");
    BOOST_TEST(hello.json->getValue<std::string>("arch") == "arm64");
    auto comps = hello.json->getArray("components");
    BOOST_REQUIRE(comps->size() == 2u);
    BOOST_TEST(comps->getObject(0)->getValue<std::string>("current") == "v2.3.1");
    BOOST_TEST(comps->getObject(0)->getValue<std::string>("kind") == "tarball");
    BOOST_TEST(comps->getObject(1)->isNull("current"));

    auto hs = fake.handshakes();
    BOOST_REQUIRE(hs.size() == 1u);
    BOOST_TEST(hs[0].path == "/v1/agents/pi-test/stream");
    BOOST_TEST(hs[0].subprotocol == "raspi-release.v1");
    BOOST_TEST(hs[0].authorization == "Bearer " + kToken);
    BOOST_TEST(hs[0].userAgent == std::string(kUserAgent));
    BOOST_TEST(hs[0].userAgent.rfind("raspi-release-agent/", 0) == 0u);

    BOOST_TEST(waitUntil([&] { return connectedCalls.load() == 1; }));
    BOOST_TEST(toString(client->state()) == std::string("connected"));
}

BOOST_FIXTURE_TEST_CASE(no_token_no_authorization_header, ClientFixture) {
    // Without a configured token the request has no Authorization header at all.
    cfg.token = Secret();
    startClient();
    BOOST_REQUIRE(fake.waitForHello(1, kWait));
    BOOST_TEST(fake.handshakes()[0].authorization == "");
}

BOOST_FIXTURE_TEST_CASE(url_path_is_joined, ClientFixture) {
    // A proxy.url with a path prefix gets /v1/agents/<id>/stream appended to it.
    cfg.url = fake.url() + "/base/";
    startClient();
    BOOST_REQUIRE(fake.waitFor([&] { return !fake.handshakes().empty(); }, kWait));
    BOOST_TEST(fake.handshakes()[0].path == "/base/v1/agents/pi-test/stream");
}

BOOST_FIXTURE_TEST_CASE(sync_and_release_reach_the_engine, ClientFixture) {
    // The sync answering hello arrives as one batch; a release message as a single entry.
    startClient();
    BOOST_REQUIRE(waitUntil([&] { return announcements().size() == 1; }));
    auto a = announcements();
    BOOST_TEST(a[0].fromSync);
    BOOST_REQUIRE(a[0].batch.size() == 2u);
    BOOST_TEST(a[0].batch[1].tag == "v2.5.0");
    BOOST_TEST(a[0].batch[1].publishedAt == "2026-12-02T10:00:00Z");

    BOOST_TEST(fake.pushRelease({"web-ui", "acme/web-ui", "v2.6.0", "2026-12-04T10:00:00Z"}));
    BOOST_REQUIRE(waitUntil([&] { return announcements().size() == 2; }));
    a = announcements();
    BOOST_TEST(!a[1].fromSync);
    BOOST_REQUIRE(a[1].batch.size() == 1u);
    BOOST_TEST(a[1].batch[0].component == "web-ui");
    BOOST_TEST(a[1].batch[0].repo == "acme/web-ui");
    BOOST_TEST(a[1].batch[0].tag == "v2.6.0");
}

BOOST_FIXTURE_TEST_CASE(telemetry_is_sent_and_acked, ClientFixture) {
    // Events get unique ids and every contract field, the fake acks them, the queue empties.
    startClient();
    BOOST_REQUIRE(fake.waitForHello(1, kWait));
    client->sendTelemetry(event("v2.4.0", TelemetryKind::kApplyStarted));
    auto failed = event("v2.4.0", TelemetryKind::kApplyFailed);
    failed.durationMs = 250;
    failed.phase = ApplyPhase::kInstall;
    failed.error = "disk full";
    failed.rolledBackTo = "v2.3.1";
    failed.rollbackOk = true;
    client->sendTelemetry(failed);
    BOOST_REQUIRE(fake.waitForTelemetry(2, kWait));
    auto t = fake.messages("telemetry");
    auto id0 = t[0].json->getValue<std::string>("id");
    auto id1 = t[1].json->getValue<std::string>("id");
    BOOST_TEST(id0.size() == 36u);  // UUID text form
    BOOST_TEST(id0 != id1);
    BOOST_TEST(t[0].json->getValue<std::string>("event") == "apply_started");
    BOOST_TEST(t[0].json->getValue<std::string>("agent_id") == "pi-test");
    BOOST_TEST(t[0].json->getValue<std::string>("at").back() == 'Z');
    BOOST_TEST(t[1].json->getValue<std::string>("event") == "apply_failed");
    BOOST_TEST(t[1].json->getValue<std::string>("phase") == "install");
    BOOST_TEST(t[1].json->getValue<bool>("rollback_ok"));
    BOOST_TEST(t[1].json->getValue<int64_t>("duration_ms") == 250);
    BOOST_TEST(waitUntil([&] { return client->pendingTelemetry() == 0; }));
}

BOOST_FIXTURE_TEST_CASE(unacked_telemetry_is_resent_with_same_ids, ClientFixture) {
    // Telemetry not acked before the connection drops goes out again, same ids, same order.
    fake.setAutoAck(false);
    startClient();
    BOOST_REQUIRE(fake.waitForHello(1, kWait));
    client->sendTelemetry(event("v2.4.0", TelemetryKind::kApplyStarted));
    client->sendTelemetry(event("v2.4.0", TelemetryKind::kApplySucceeded));
    BOOST_REQUIRE(fake.waitForTelemetry(2, kWait));
    BOOST_TEST(client->pendingTelemetry() == 2u);
    fake.setAutoAck(true);
    BOOST_TEST(fake.dropConnections());
    BOOST_REQUIRE(fake.waitForHello(2, kWait));
    BOOST_REQUIRE(fake.waitForTelemetry(4, kWait));
    auto first = telemetryIds(1), second = telemetryIds(2);
    BOOST_TEST(first.size() == 2u);
    BOOST_TEST(first == second, boost::test_tools::per_element());
    BOOST_TEST(waitUntil([&] { return client->pendingTelemetry() == 0; }));
    // hello comes before the resent telemetry on the new connection
    auto all = fake.messages();
    auto helloAt = std::find_if(all.begin(), all.end(),
                                [](auto& x) { return x.connection == 2 && x.type == "hello"; });
    auto telemetryAt = std::find_if(
        all.begin(), all.end(), [](auto& x) { return x.connection == 2 && x.type == "telemetry"; });
    BOOST_TEST((helloAt < telemetryAt));
}

BOOST_FIXTURE_TEST_CASE(queue_overflow_drops_the_oldest, ClientFixture) {
    // With a queue of 2, three events while offline keep the newest two and log the drop.
    cfg.telemetryQueue = 2;
    makeClient();
    client->sendTelemetry(event("v1.0.0", TelemetryKind::kApplyStarted));
    client->sendTelemetry(event("v1.0.1", TelemetryKind::kApplyStarted));
    client->sendTelemetry(event("v1.0.2", TelemetryKind::kApplyStarted));
    BOOST_TEST(client->pendingTelemetry() == 2u);
    BOOST_TEST(capture->count("dropped") >= 1u);
    client->start();
    BOOST_REQUIRE(fake.waitForTelemetry(2, kWait));
    auto t = fake.messages("telemetry");
    BOOST_TEST(t[0].json->getValue<std::string>("tag") == "v1.0.1");
    BOOST_TEST(t[1].json->getValue<std::string>("tag") == "v1.0.2");
}

BOOST_FIXTURE_TEST_CASE(garbage_frames_keep_the_connection, ClientFixture) {
    // Non-JSON, a JSON array, a missing or non-string type and an unknown type are
    // dropped; the connection stays up and later messages still arrive.
    startClient();
    BOOST_REQUIRE(waitUntil([&] { return announcements().size() == 1; }));
    for (const char* g : {"not json at all", "[1,2,3]", "{\"no_type\":1}", "{\"type\":5}",
                          "{\"type\":\"from-the-future\",\"x\":1}",
                          "{\"type\":\"release\",\"component\":\"web-ui\"}"})
        BOOST_TEST(fake.pushRaw(g));
    BOOST_TEST(fake.pushRelease({"web-ui", "acme/web-ui", "v9.0.0", ""}));
    BOOST_REQUIRE(waitUntil([&] { return announcements().size() == 2; }));
    BOOST_TEST(announcements()[1].batch[0].tag == "v9.0.0");
    BOOST_TEST(fake.connectionsAccepted() == 1);
    BOOST_TEST(fake.closeCodesReceived().empty());
    BOOST_TEST(capture->count("dropped a frame") == 5u);
}

BOOST_FIXTURE_TEST_CASE(binary_frame_closes_4000_and_reconnects, ClientFixture) {
    // A binary frame is a protocol error: the agent closes with 4000, waits the backoff
    // (on the fake clock) and reconnects with a new hello.
    startClient();
    BOOST_REQUIRE(fake.waitForHello(1, kWait));
    BOOST_TEST(fake.pushBinary("\x01\x02"));
    BOOST_REQUIRE(fake.waitForHello(2, kWait));
    auto codes = fake.closeCodesReceived();
    BOOST_REQUIRE(!codes.empty());
    BOOST_TEST(codes[0] == 4000);
    auto sleeps = clock.sleeps();
    BOOST_REQUIRE(!sleeps.empty());
    BOOST_TEST(sleeps[0].count() == 100);
}

BOOST_FIXTURE_TEST_CASE(close_4001_waits_the_cap_and_logs_an_error_each_time, ClientFixture) {
    // A 4001 close means a wrong token: every retry waits the cap and logs an error.
    fake.setHelloReply(FakeProxy::HelloReply::kClose4001);
    startClient();
    BOOST_REQUIRE(fake.waitForHello(3, kWait));
    BOOST_REQUIRE(waitUntil([&] { return clock.sleeps().size() >= 3; }));
    for (auto d : clock.sleeps())
        BOOST_TEST(d.count() == 7000);
    BOOST_TEST(capture->count("4001") >= 3u);
    BOOST_TEST(capture->errors() >= 3);
    // The delay is printed (Poco's %?d takes Poco::Int64, which is long, not long long).
    BOOST_TEST(capture->count("retrying in 7000 ms") >= 3u);
    // A fixed token (here: the proxy accepting again) brings the connection up.
    fake.setHelloReply(FakeProxy::HelloReply::kSync);
    BOOST_TEST(waitUntil([&] { return connectedCalls.load() >= 1; }));
}

BOOST_FIXTURE_TEST_CASE(http_401_and_403_are_unauthorized, ClientFixture) {
    // A 401 or 403 answer to the upgrade waits the cap each time and logs an error, and
    // the token still never shows up in the log.
    for (int status : {401, 403}) {
        fake.setRefuseStatus(status);
        size_t before = clock.sleeps().size();
        int errorsBefore = capture->errors();
        if (!client)
            startClient();
        BOOST_REQUIRE(waitUntil([&] { return clock.sleeps().size() >= before + 3; }));
        auto sleeps = clock.sleeps();
        for (size_t i = before; i < sleeps.size(); ++i)
            BOOST_TEST(sleeps[i].count() == 7000);
        BOOST_TEST(capture->errors() >= errorsBefore + 3);
        BOOST_TEST(capture->count("HTTP " + std::to_string(status)) >= 3u);
        BOOST_TEST(fake.messages("hello").empty());
        BOOST_TEST(waitUntil([&] { return client->state() == ProxyClient::State::kUnauthorized; }));
    }
}

BOOST_FIXTURE_TEST_CASE(http_401_is_one_request_per_attempt, ClientFixture) {
    // Exactly one upgrade request per attempt, with the Bearer token, then the cap delay.
    // (Poco 1.11's WebSocket::connect() does not retry with empty credentials, newer Poco
    // resends at once after a 401; the client does its own upgrade, so neither matters.)
    fake.setRefuseStatus(401);
    startClient();
    BOOST_REQUIRE(waitUntil([&] { return clock.sleeps().size() >= 3; }));
    client->stop();
    const size_t attempts = clock.sleeps().size();  // each finished attempt slept once
    auto hs = fake.handshakes();
    BOOST_TEST(hs.size() >= attempts);
    BOOST_TEST(hs.size() <= attempts + 1);  // one more may have started before stop()
    for (const auto& h : hs) {
        BOOST_TEST(h.status == 401);
        BOOST_TEST(h.authorization == "Bearer " + kToken);
    }
}

BOOST_FIXTURE_TEST_CASE(error_unauthorized_is_handled_like_4001, ClientFixture) {
    // An error message with code "unauthorized" makes the agent leave and wait the cap.
    fake.setHelloReply(FakeProxy::HelloReply::kErrorUnauthorized);
    startClient();
    BOOST_REQUIRE(fake.waitForHello(2, kWait));
    BOOST_REQUIRE(waitUntil([&] { return !clock.sleeps().empty(); }));
    BOOST_TEST(clock.sleeps()[0].count() == 7000);
    BOOST_TEST(capture->count("unauthorized") >= 1u);
    // The agent leaves with 4001 (unauthorized), not 1000, which means "agent stopping".
    BOOST_REQUIRE(fake.waitFor([&] { return !fake.closeCodesReceived().empty(); }, kWait));
    BOOST_TEST(fake.closeCodesReceived()[0] == 4001);
}

BOOST_FIXTURE_TEST_CASE(other_error_messages_keep_the_connection, ClientFixture) {
    // An error with another code is logged; the connection stays.
    startClient();
    BOOST_REQUIRE(waitUntil([&] { return announcements().size() == 1; }));
    BOOST_TEST(fake.pushRaw(R"({"type":"error","code":"internal","message":"oops"})"));
    BOOST_TEST(fake.pushRelease({"web-ui", "acme/web-ui", "v3.0.0", ""}));
    BOOST_REQUIRE(waitUntil([&] { return announcements().size() == 2; }));
    BOOST_TEST(fake.connectionsAccepted() == 1);
    BOOST_TEST(capture->count("oops") == 1u);
}

BOOST_FIXTURE_TEST_CASE(send_inventory_after_reload, ClientFixture) {
    // sendInventory sends a fresh inventory (new component set); its sync reaches the engine.
    startClient();
    BOOST_REQUIRE(waitUntil([&] { return announcements().size() == 1; }));
    {
        std::lock_guard<std::mutex> lk(m);
        inventory.push_back({"printer", "acme/printer", "deb", std::nullopt});
    }
    client->sendInventory();
    BOOST_REQUIRE(fake.waitForMessages("inventory", 1, kWait));
    auto inv = fake.messages("inventory")[0].json;
    BOOST_TEST(!inv->has("protocol"));
    BOOST_TEST(inv->getValue<std::string>("agent_id") == "pi-test");
    BOOST_TEST(inv->getArray("components")->size() == 3u);
    BOOST_REQUIRE(waitUntil([&] { return announcements().size() == 2; }));
    BOOST_TEST(announcements()[1].fromSync);
    BOOST_TEST(fake.connectionsAccepted() == 1);
}

BOOST_FIXTURE_TEST_CASE(stop_closes_with_1000_promptly, ClientFixture) {
    // stop() sends close 1000 and returns within a second.
    startClient();
    BOOST_REQUIRE(fake.waitForHello(1, kWait));
    auto t0 = std::chrono::steady_clock::now();
    client->stop();
    auto took = std::chrono::steady_clock::now() - t0;
    BOOST_TEST(std::chrono::duration_cast<Millis>(took).count() < 1000);
    BOOST_REQUIRE(fake.waitFor([&] { return !fake.closeCodesReceived().empty(); }, kWait));
    BOOST_TEST(fake.closeCodesReceived()[0] == 1000);
    BOOST_TEST(toString(client->state()) == std::string("disconnected"));
}

BOOST_FIXTURE_TEST_CASE(heartbeat_pings_and_detects_a_dead_link, ClientFixture) {
    // One heartbeat of silence sends a ping; two intervals without any frame mean dead:
    // the agent reconnects (virtual time, no real waiting).
    cfg.heartbeatS = 10;
    startClient();
    BOOST_REQUIRE(waitUntil([&] { return announcements().size() == 1; }));
    BOOST_TEST(fake.pingsReceived() == 0);
    clock.advance(Millis(10000));
    BOOST_REQUIRE(fake.waitFor([&] { return fake.pingsReceived() >= 1; }, kWait));
    BOOST_TEST(fake.connectionsAccepted() == 1);
    // The pong refreshed liveness; now jump past two intervals with nothing received.
    BOOST_REQUIRE(waitUntil([&] { return capture->count("no frame") == 0; }));
    clock.advance(Millis(20000));
    BOOST_REQUIRE(fake.waitForHello(2, kWait));
    BOOST_TEST(capture->count("no frame from the proxy") >= 1u);
}

BOOST_FIXTURE_TEST_CASE(frames_waiting_after_a_long_step_are_read_before_the_dead_check,
                        ClientFixture) {
    // The inventory callback blocks (here: past two heartbeat intervals of virtual time)
    // while the proxy's frames wait in the socket: they are read, the connection stays.
    cfg.heartbeatS = 10;
    startClient();
    BOOST_REQUIRE(waitUntil([&] { return announcements().size() == 1; }));
    {
        std::lock_guard<std::mutex> lk(m);
        onInventory = [this] {
            int sent = fake.commandsSent();
            fake.pushRelease({"web-ui", "acme/web-ui", "v9.0.0", ""});
            fake.waitFor([&] { return fake.commandsSent() > sent; }, kWait);
            clock.advance(Millis(25000));
        };
    }
    client->sendInventory();
    BOOST_REQUIRE(waitUntil([&] { return announcements().size() >= 3; }));  // release + sync
    BOOST_TEST(announcements()[1].batch.at(0).tag == "v9.0.0");
    BOOST_TEST(fake.connectionsAccepted() == 1);
    BOOST_TEST(capture->count("no frame") == 0u);
}

BOOST_FIXTURE_TEST_CASE(a_frame_trickling_in_is_dead_after_two_intervals, ClientFixture) {
    // Slow loris: the proxy sends the first byte of a frame and then (almost) nothing.
    // Poco's timeout is per read, not per frame; the agent still gives up once no complete
    // frame came for two intervals, and reconnects.
    cfg.heartbeatS = 10;
    startClient();
    BOOST_REQUIRE(waitUntil([&] { return announcements().size() == 1; }));
    BOOST_TEST(fake.pushRawBytes("\x81"));
    BOOST_REQUIRE(waitUntil([&] {
        clock.advance(Millis(2000));  // virtual time only; the read stays blocked
        return fake.messages("hello").size() >= 2;
    }));
    BOOST_TEST(capture->count("no complete frame from the proxy") >= 1u);
}

BOOST_FIXTURE_TEST_CASE(an_upgrade_answer_trickling_in_times_out, ClientFixture) {
    // Slow loris during the handshake: a server that answers the upgrade with a few bytes
    // and then nothing. The whole answer must come within kConnectTimeout (virtual time),
    // not each read; then the agent tries again.
    fake.stop();
    Poco::Net::ServerSocket listener(Poco::Net::SocketAddress("127.0.0.1", 0));
    std::atomic<int> accepted{0};
    std::atomic<bool> done{false};
    std::thread server([&] {
        std::vector<Poco::Net::StreamSocket> held;
        while (!done) {
            if (!listener.poll(Poco::Timespan(0, 20000), Poco::Net::Socket::SELECT_READ))
                continue;
            held.push_back(listener.acceptConnection());
            ++accepted;
            held.back().sendBytes("HTTP/1.1 1", 10);  // and never the rest
        }
    });
    cfg.url = "ws://127.0.0.1:" + std::to_string(listener.address().port());
    startClient();
    BOOST_TEST(waitUntil([&] {
        clock.advance(Millis(1000));
        return accepted.load() >= 2;
    }));
    BOOST_TEST(capture->count("did not answer the upgrade") >= 1u);
    client->stop();  // also not held by the pending handshake read
    done = true;
    server.join();
}

BOOST_FIXTURE_TEST_CASE(stop_is_not_held_by_a_pending_read, ClientFixture) {
    // stop() while the client is blocked inside a half-received frame returns promptly
    // (the per-read timeout here would be 60 s).
    startClient();
    BOOST_REQUIRE(waitUntil([&] { return announcements().size() == 1; }));
    BOOST_TEST(fake.pushRawBytes("\x81"));
    BOOST_REQUIRE(fake.waitFor([&] { return fake.commandsSent() >= 1; }, kWait));
    std::this_thread::sleep_for(Millis(300));  // let the client enter the read
    auto t0 = std::chrono::steady_clock::now();
    client->stop();
    auto took = std::chrono::steady_clock::now() - t0;
    BOOST_TEST(std::chrono::duration_cast<Millis>(took).count() < 5000);
    BOOST_TEST(toString(client->state()) == std::string("disconnected"));
}

BOOST_FIXTURE_TEST_CASE(a_message_over_1_mib_closes_4000, ClientFixture) {
    // Incoming messages are capped at 1 MiB, one frame or fragments together: the agent
    // closes with 4000 (protocol error) and reconnects.
    startClient();
    BOOST_REQUIRE(waitUntil([&] { return announcements().size() == 1; }));
    BOOST_TEST(fake.pushRaw(std::string(ProxyClient::kMaxMessageBytes + 1, ' ')));
    BOOST_REQUIRE(fake.waitForHello(2, kWait));
    BOOST_TEST(capture->count("a frame larger than") == 1u);
    const std::string half(ProxyClient::kMaxMessageBytes / 2 + 1, ' ');
    BOOST_REQUIRE(waitUntil([&] { return fake.openConnections() == 1; }));
    BOOST_TEST(fake.pushFrame(Poco::Net::WebSocket::FRAME_OP_TEXT, half));
    BOOST_TEST(fake.pushFrame(
        Poco::Net::WebSocket::FRAME_FLAG_FIN | Poco::Net::WebSocket::FRAME_OP_CONT, half));
    BOOST_REQUIRE(fake.waitForHello(3, kWait));
    BOOST_TEST(capture->count("a message larger than") == 1u);
    BOOST_REQUIRE(fake.waitFor([&] { return !fake.closeCodesReceived().empty(); }, kWait));
    for (auto code : fake.closeCodesReceived())
        BOOST_TEST(code == 4000);
}

BOOST_FIXTURE_TEST_CASE(fragmented_text_is_reassembled, ClientFixture) {
    // A text message split over a text frame and continuations arrives as one message.
    startClient();
    BOOST_REQUIRE(waitUntil([&] { return announcements().size() == 1; }));
    std::string msg = FakeProxy::encodeRelease({"web-ui", "acme/web-ui", "v7.0.0", ""});
    using Poco::Net::WebSocket;
    BOOST_TEST(fake.pushFrame(WebSocket::FRAME_OP_TEXT, msg.substr(0, 10)));
    BOOST_TEST(fake.pushFrame(WebSocket::FRAME_OP_CONT, msg.substr(10, 10)));
    BOOST_TEST(fake.pushFrame(WebSocket::FRAME_FLAG_FIN | WebSocket::FRAME_OP_PING, "p"));
    BOOST_TEST(
        fake.pushFrame(WebSocket::FRAME_FLAG_FIN | WebSocket::FRAME_OP_CONT, msg.substr(20)));
    BOOST_REQUIRE(waitUntil([&] { return announcements().size() == 2; }));
    BOOST_TEST(announcements()[1].batch.at(0).tag == "v7.0.0");
    BOOST_TEST(fake.connectionsAccepted() == 1);
}

BOOST_FIXTURE_TEST_CASE(proxy_text_is_logged_as_one_bounded_line, ClientFixture) {
    // Error messages, unknown types and release names from the proxy cannot forge log
    // lines (newlines) or flood the log (length capped).
    startClient();
    BOOST_REQUIRE(waitUntil([&] { return announcements().size() == 1; }));
    BOOST_TEST(
        fake.pushRaw(R"({"type":"error","code":"internal\nX","message":"oops\nFORGED: ok"})"));
    BOOST_TEST(fake.pushRaw(R"({"type":"error","code":"internal","message":")" +
                            std::string(20000, 'y') + "\"}"));
    BOOST_TEST(fake.pushRaw(R"({"type":"new\r\nFORGED"})"));
    BOOST_TEST(fake.pushRelease({"web\nFORGED", "acme/web-ui", "v1\r\n", ""}));
    BOOST_REQUIRE(waitUntil([&] { return announcements().size() == 2; }));
    BOOST_TEST(capture->count("oops") == 1u);
    for (const auto& l : capture->lines()) {
        BOOST_TEST(l.find_first_of("\r\n") == std::string::npos, l);
        BOOST_TEST(l.size() < 1000u);
    }
}

struct BadFrames {
    std::string name;
    std::vector<std::pair<int, std::string>> frames;  // flags, payload
};
std::ostream& operator<<(std::ostream& os, const BadFrames& c) {
    return os << c.name;
}
using WS = Poco::Net::WebSocket;
const std::vector<BadFrames> kBadFrames = {
    {"ping over 125 bytes", {{WS::FRAME_FLAG_FIN | WS::FRAME_OP_PING, std::string(126, 'p')}}},
    {"fragmented ping", {{WS::FRAME_OP_PING, "p"}}},
    {"continuation without a message", {{WS::FRAME_FLAG_FIN | WS::FRAME_OP_CONT, "{}"}}},
    {"unknown opcode", {{WS::FRAME_FLAG_FIN | 0x3, "{}"}}},
    {"unknown control opcode", {{WS::FRAME_FLAG_FIN | 0xB, ""}}},
    {"text inside a fragmented message",
     {{WS::FRAME_OP_TEXT, R"({"type":)"}, {WS::FRAME_FLAG_FIN | WS::FRAME_OP_TEXT, "{}"}}},
    {"reserved bit", {{WS::FRAME_FLAG_FIN | WS::FRAME_FLAG_RSV1 | WS::FRAME_OP_TEXT, "{}"}}},
};

BOOST_DATA_TEST_CASE_F(ClientFixture, framing_violations_close_4000,
                       boost::unit_test::data::make(kBadFrames), c) {
    // Frames RFC 6455 forbids are protocol errors: close 4000 and reconnect, never ignored
    // (and never an invalid pong echoed back).
    startClient();
    BOOST_REQUIRE(waitUntil([&] { return announcements().size() == 1; }));
    for (const auto& [flags, payload] : c.frames)
        BOOST_TEST(fake.pushFrame(flags, payload));
    BOOST_REQUIRE(fake.waitForHello(2, kWait));
    BOOST_REQUIRE(fake.waitFor([&] { return !fake.closeCodesReceived().empty(); }, kWait));
    BOOST_TEST(fake.closeCodesReceived()[0] == 4000);
    BOOST_TEST(capture->count("closing with 4000") == 1u);
}

BOOST_FIXTURE_TEST_CASE(url_escapes_stay_escaped_in_the_request_line, ClientFixture) {
    // proxy.url "…/a%20b" is requested as /a%20b/…, not with a raw space.
    cfg.url = fake.url() + "/a%20b";
    startClient();
    BOOST_REQUIRE(fake.waitFor([&] { return !fake.handshakes().empty(); }, kWait));
    BOOST_TEST(fake.handshakes()[0].path == "/a%20b/v1/agents/pi-test/stream");
}

BOOST_FIXTURE_TEST_CASE(reconfigure_identity, ClientFixture) {
    // A new agent_id reconnects (it is in the URL); a new arch alone is sent in an inventory.
    startClient();
    BOOST_REQUIRE(waitUntil([&] { return announcements().size() == 1; }));
    client->reconfigure(cfg, "pi-other", "arm64");
    BOOST_REQUIRE(fake.waitForHello(2, kWait));
    BOOST_TEST(fake.handshakes().back().path == "/v1/agents/pi-other/stream");
    BOOST_TEST(fake.messages("hello")[1].json->getValue<std::string>("agent_id") == "pi-other");
    client->reconfigure(cfg, "pi-other", "armhf");
    BOOST_REQUIRE(fake.waitForMessages("inventory", 1, kWait));
    auto inv = fake.messages("inventory")[0].json;
    BOOST_TEST(inv->getValue<std::string>("arch") == "armhf");
    BOOST_TEST(inv->getValue<std::string>("agent_id") == "pi-other");
    BOOST_TEST(fake.connectionsAccepted() == 2);
    // The old overload keeps the identity.
    auto next = cfg;
    next.token = Secret(kToken + "-2");
    client->reconfigure(next);
    BOOST_REQUIRE(fake.waitForHello(3, kWait));
    BOOST_TEST(fake.messages("hello")[2].json->getValue<std::string>("arch") == "armhf");
    BOOST_TEST(fake.messages("hello")[2].json->getValue<std::string>("agent_id") == "pi-other");
}

BOOST_FIXTURE_TEST_CASE(survives_proxy_restart_on_same_port, ClientFixture) {
    // The proxy going away and coming back on the same port: the agent reconnects and
    // re-syncs by itself.
    startClient();
    BOOST_REQUIRE(waitUntil([&] { return announcements().size() == 1; }));
    uint16_t port = fake.port();
    fake.stop();
    BOOST_REQUIRE(waitUntil([&] { return clock.sleeps().size() >= 2; }));
    fake.start();
    BOOST_TEST(fake.port() == port);
    BOOST_REQUIRE(fake.waitForHello(2, kWait));
    BOOST_REQUIRE(waitUntil([&] { return announcements().size() == 2; }));
    BOOST_TEST(connectedCalls.load() == 2);
}

BOOST_FIXTURE_TEST_CASE(reconfigure_reconnects_with_new_token, ClientFixture) {
    // A changed token closes the connection (1000) and reconnects at once with the new one.
    startClient();
    BOOST_REQUIRE(fake.waitForHello(1, kWait));
    auto next = cfg;
    next.token = Secret(kToken + "-2");
    client->reconfigure(next);
    BOOST_REQUIRE(fake.waitForHello(2, kWait));
    auto hs = fake.handshakes();
    BOOST_TEST(hs.back().authorization == "Bearer " + kToken + "-2");
    BOOST_TEST(fake.closeCodesReceived().at(0) == 1000);
    // Unchanged connection settings do not reconnect.
    next.reconnectMaxMs = 9000;
    client->reconfigure(next);
    std::this_thread::sleep_for(Millis(200));
    BOOST_TEST(fake.connectionsAccepted() == 2);
}

BOOST_AUTO_TEST_CASE(wss_with_configured_ca) {
    // Over wss:// with the proxy's CA configured the client connects and says hello.
    ClientFixture f(tlsOptions());
    f.cfg.caFile = TlsFixture::pki().caFile;
    BOOST_TEST(f.cfg.url.rfind("wss://", 0) == 0u);
    f.startClient();
    BOOST_REQUIRE(f.fake.waitForHello(1, kWait));
    BOOST_REQUIRE(waitUntil([&] { return f.announcements().size() == 1; }));
    f.client->sendTelemetry(f.event("v2.4.0", TelemetryKind::kApplyStarted));
    BOOST_TEST(waitUntil([&] { return f.client->pendingTelemetry() == 0; }));
}

BOOST_AUTO_TEST_CASE(wss_with_wrong_ca_is_refused) {
    // A server certificate from another CA fails verification: no upgrade, no hello.
    ClientFixture f(tlsOptions());
    f.cfg.caFile = TlsFixture::pki().otherCaFile;
    f.startClient();
    BOOST_REQUIRE(waitUntil([&] { return f.clock.sleeps().size() >= 2; }));
    BOOST_TEST(f.fake.handshakes().empty());
    BOOST_TEST(f.fake.messages().empty());
    BOOST_TEST(f.client->state() != ProxyClient::State::kConnected);
    BOOST_TEST(f.capture->count("cannot connect") >= 2u);
}

BOOST_AUTO_TEST_CASE(wss_without_ca_uses_system_store_and_refuses_test_ca) {
    // Without proxy.ca_file only the system trust store counts: the test CA is unknown.
    ClientFixture f(tlsOptions());
    f.startClient();
    BOOST_REQUIRE(waitUntil([&] { return f.clock.sleeps().size() >= 2; }));
    BOOST_TEST(f.fake.messages().empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(fake_proxy_program)

BOOST_AUTO_TEST_CASE(cli_prints_port_and_messages_and_takes_commands) {
    // The fake-proxy program prints its port, echoes what the agent sends as JSON lines,
    // serves the scripted sync and pushes a release on command.
    Poco::Pipe inPipe, outPipe;
    Poco::ProcessHandle ph = Poco::Process::launch(std::string(RRA_BINARY_DIR) + "/bin/fake-proxy",
                                                   {}, &inPipe, &outPipe, nullptr);
    Poco::PipeOutputStream toFake(inPipe);
    std::mutex lm;
    std::vector<std::string> lines;
    std::thread reader([&] {
        Poco::PipeInputStream from(outPipe);
        std::string line;
        while (std::getline(from, line)) {
            std::lock_guard<std::mutex> lk(lm);
            lines.push_back(line);
        }
    });
    auto lineCount = [&] {
        std::lock_guard<std::mutex> lk(lm);
        return lines.size();
    };
    bool ok = waitUntil([&] { return lineCount() >= 1; });
    if (ok) {
        toFake << "sync web-ui acme/web-ui v2.4.0 v2.5.0" << std::endl;
        ClientFixture f;
        f.fake.stop();
        {
            std::lock_guard<std::mutex> lk(lm);
            f.cfg.url = "ws://127.0.0.1:" + lines[0];
        }
        f.startClient();
        BOOST_TEST(waitUntil([&] { return f.announcements().size() == 1; }));
        BOOST_TEST(lineCount() >= 2u);
        {
            std::lock_guard<std::mutex> lk(lm);
            if (lines.size() >= 2) {
                Poco::JSON::Parser p;
                auto hello = p.parse(lines[1]).extract<Poco::JSON::Object::Ptr>();
                BOOST_TEST(hello->getValue<std::string>("type") == "hello");
            }
        }
        if (f.announcements().size() == 1)
            BOOST_TEST(f.announcements()[0].batch.size() == 2u);
        toFake << "release web-ui acme/web-ui v2.6.0" << std::endl;
        BOOST_TEST(waitUntil([&] { return f.announcements().size() == 2; }));
        f.client->sendTelemetry(f.event("v2.6.0", TelemetryKind::kApplyStarted));
        BOOST_TEST(waitUntil([&] { return lineCount() >= 3u; }));
        BOOST_TEST(waitUntil([&] { return f.client->pendingTelemetry() == 0; }));
        f.client->stop();
    }
    BOOST_TEST(ok, "fake-proxy printed no port");
    toFake << "quit" << std::endl;
    toFake.close();
    if (!waitUntil([&] { return !Poco::Process::isRunning(ph); }))
        Poco::Process::kill(ph);
    reader.join();
    BOOST_TEST(ph.wait() == 0);
}

BOOST_AUTO_TEST_SUITE_END()
