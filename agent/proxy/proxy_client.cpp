// ProxyClient: all socket I/O happens on the client thread (OpenSSL forbids concurrent
// read and write on one connection), other threads only queue work and wake it.
#include "proxy/proxy_client.hpp"

#include "common/version.hpp"
#include "proxy/messages.hpp"

#include <Poco/Buffer.h>
#include <Poco/Logger.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Net/WebSocket.h>
#include <Poco/Net/WebSocketImpl.h>
#include <Poco/String.h>
#include <Poco/URI.h>
#include <Poco/UUIDGenerator.h>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <string_view>

namespace rra::proxy {

using Poco::Net::WebSocket;

namespace {

constexpr Millis kCloseWait{500};
constexpr size_t kMaxLoggedText = 300;  // bytes of proxy-supplied text in one log line

Poco::Logger& logger() {
    return Poco::Logger::get("proxy");
}

void initSslOnce() {
    static std::once_flag once;
    std::call_once(once, [] { Poco::Net::initializeSSL(); });
}

struct Target {
    bool tls = false;
    std::string host;
    uint16_t port = 0;
    std::string path;     // request target
    std::string display;  // scheme://host:port for logs (never user info)
};

// The path of proxy.url as written: Poco::URI::getPath() decodes it, and "a%20b" would put
// a raw space into the request line. Escapes are kept; bytes a path may not hold are escaped.
std::string rawPath(const std::string& url) {
    size_t start = url.find("://");
    start = start == std::string::npos ? 0 : start + 3;
    size_t slash = url.find_first_of("/?#", start);
    if (slash == std::string::npos || url[slash] != '/')
        return "";
    size_t end = url.find_first_of("?#", slash);
    std::string_view raw(url);
    raw = raw.substr(slash, end == std::string::npos ? std::string::npos : end - slash);
    static constexpr std::string_view kKeep = "-._~!$&'()*+,;=:@/%";
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (char ch : raw) {
        auto c = static_cast<unsigned char>(ch);
        if (std::isalnum(c) || (c != 0 && kKeep.find(ch) != std::string_view::npos)) {
            out += ch;
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 0xF];
        }
    }
    return out;
}

Expected<Target> parseTarget(const std::string& url, const std::string& agentId) {
    try {
        Poco::URI uri(url);
        Target t;
        std::string scheme = Poco::toLower(uri.getScheme());
        if (scheme == "wss") {
            t.tls = true;
        } else if (scheme != "ws") {
            return fail(ErrorCode::kConfig, "proxy.url: scheme must be ws:// or wss://");
        }
        t.host = uri.getHost();
        if (t.host.empty())
            return fail(ErrorCode::kConfig, "proxy.url: no host");
        t.port = uri.getPort() != 0 ? uri.getPort() : (t.tls ? 443 : 80);
        std::string base = rawPath(url);
        while (!base.empty() && base.back() == '/')
            base.pop_back();
        std::string id;
        Poco::URI::encode(agentId, "/?#%", id);
        t.path = base + "/v1/agents/" + id + "/stream";
        if (!uri.getRawQuery().empty())
            t.path += "?" + uri.getRawQuery();
        t.display = scheme + "://" + t.host + ":" + std::to_string(t.port);
        return t;
    } catch (const Poco::Exception& e) {
        return fail(ErrorCode::kConfig, "proxy.url: " + e.displayText());
    }
}

bool isLoopback(const std::string& host) {
    return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1" || host == "[::1]";
}

uint16_t closeCode(const Poco::Buffer<char>& payload, int n) {
    if (n < 2)
        return 1005;  // "no status received"
    return static_cast<uint16_t>((static_cast<unsigned char>(payload[0]) << 8) |
                                 static_cast<unsigned char>(payload[1]));
}

// Cuts a blocking read on the client thread short when its deadline passes or the client
// stops. Poco reads a frame (and an HTTP response) with one timeout per recv(), so a peer
// sending a byte now and then would hold a read open forever: no pings, never dead, and
// stop() waiting for it. shutdown(SHUT_RD) wakes the blocked recv() with end-of-file; it
// is a plain system call on the descriptor and touches no TLS state, so it is safe from
// this thread. The descriptor stays open while armed: only the blocked thread closes it.
class ReadWatchdog {
  public:
    ReadWatchdog(const Clock& clock, const std::atomic<bool>& stopping)
        : clock_(clock), stopping_(stopping), thread_([this] { loop(); }) {}
    ~ReadWatchdog() {
        {
            std::lock_guard<std::mutex> lk(m_);
            quit_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }
    ReadWatchdog(const ReadWatchdog&) = delete;
    ReadWatchdog& operator=(const ReadWatchdog&) = delete;

    // Runs `read` (which blocks on `fd`); true when the watchdog cut it short, and then
    // the socket can no longer be read. Exceptions of `read` pass through otherwise.
    template <class Read>
    bool guard(int fd, SteadyTime deadline, Read&& read) {
        arm(fd, deadline);
        try {
            read();
        } catch (...) {
            if (disarm())
                return true;
            throw;
        }
        return disarm();
    }

  private:
    void arm(int fd, SteadyTime deadline) {
        {
            std::lock_guard<std::mutex> lk(m_);
            fd_ = fd;
            deadline_ = deadline;
            armed_ = true;
            fired_ = false;
        }
        cv_.notify_all();
    }
    bool disarm() {
        std::lock_guard<std::mutex> lk(m_);
        armed_ = false;
        return fired_;
    }
    void loop() {
        std::unique_lock<std::mutex> lk(m_);
        while (!quit_) {
            if (!armed_) {
                cv_.wait(lk);
                continue;
            }
            // The clock may be virtual (tests), so poll it rather than wait for the deadline.
            if (stopping_.load() || clock_.now() >= deadline_) {
                ::shutdown(fd_, SHUT_RD);
                fired_ = true;
                armed_ = false;
                continue;
            }
            cv_.wait_for(lk, ProxyClient::kPollInterval);
        }
    }

    const Clock& clock_;
    const std::atomic<bool>& stopping_;
    std::mutex m_;
    std::condition_variable cv_;
    bool quit_ = false, armed_ = false, fired_ = false;
    int fd_ = -1;
    SteadyTime deadline_{};
    std::thread thread_;
};

// Poco's WebSocket::connect() answers a 401 by sending the request again at once, with
// whatever an empty HTTPCredentials makes of the challenge (Basic with no user, or the
// same Bearer): two requests with no wait. The contract wants one request per attempt and
// the cap delay before the next, so the upgrade request is sent here and only Poco's key
// and accept check are reused (protected members, hence the subclass).
class Upgrade : public WebSocket {
  public:
    static std::string prepare(Poco::Net::HTTPClientSession& cs, Poco::Net::HTTPRequest& request) {
        std::string key = createKey();
        request.set("Connection", "Upgrade");
        request.set("Upgrade", "websocket");
        request.set("Sec-WebSocket-Version", WEBSOCKET_VERSION);
        request.set("Sec-WebSocket-Key", key);
        request.setChunkedTransferEncoding(false);
        cs.setKeepAlive(true);
        return key;
    }
    // After a 101 answer: checks the accept header and takes over the session's socket.
    static std::unique_ptr<WebSocket> complete(Poco::Net::HTTPClientSession& cs,
                                               Poco::Net::HTTPResponse& response,
                                               const std::string& key) {
        Poco::Net::StreamSocket socket(completeHandshake(cs, response, key));
        return std::make_unique<WebSocket>(socket);
    }
};

}  // namespace

const char* toString(ProxyClient::State s) {
    switch (s) {
        case ProxyClient::State::kDisconnected:
            return "disconnected";
        case ProxyClient::State::kConnecting:
            return "connecting";
        case ProxyClient::State::kConnected:
            return "connected";
        case ProxyClient::State::kUnauthorized:
            return "unauthorized";
    }
    return "?";
}

struct ProxyClient::Link {
    Target target;
    ReadWatchdog* watchdog = nullptr;  // outlived by the Link: declared after it
    // The WebSocket reads leftovers from the session's buffer: the session outlives it.
    std::unique_ptr<Poco::Net::HTTPClientSession> session;
    std::unique_ptr<WebSocket> ws;
    ~Link() {
        try {
            if (ws)
                ws->close();
        } catch (...) {
        }
        ws.reset();
        session.reset();
    }
};

ProxyClient::ProxyClient(const config::ProxySection& cfg, std::string agentId, std::string arch,
                         std::string agentVersion, Callbacks callbacks, Clock& clock,
                         Random& random)
    : agentVersion_(std::move(agentVersion)),
      callbacks_(std::move(callbacks)),
      clock_(clock),
      policy_(Millis(cfg.reconnectInitialMs), Millis(cfg.reconnectMaxMs), clock, random),
      cfg_(cfg),
      agentId_(std::move(agentId)),
      arch_(std::move(arch)),
      queue_(static_cast<size_t>(std::max(cfg.telemetryQueue, 1))),
      wakeFd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

ProxyClient::~ProxyClient() {
    stop();
    if (wakeFd_ >= 0)
        ::close(wakeFd_);
}

void ProxyClient::start() {
    std::lock_guard<std::mutex> lk(m_);
    if (thread_.joinable())
        return;
    stopping_ = false;
    thread_ = std::thread([this] { run(); });
}

void ProxyClient::stop() {
    std::thread t;
    {
        std::lock_guard<std::mutex> lk(m_);
        stopping_ = true;
        if (wake_)
            wake_->cancel();
        t = std::move(thread_);
    }
    wakeLoop();
    if (t.joinable())
        t.join();
    state_ = State::kDisconnected;
}

void ProxyClient::reconfigure(const config::ProxySection& cfg) {
    std::string agentId, arch;
    {
        std::lock_guard<std::mutex> lk(m_);
        agentId = agentId_;
        arch = arch_;
    }
    reconfigure(cfg, agentId, arch);
}

void ProxyClient::reconfigure(const config::ProxySection& cfg, const std::string& agentId,
                              const std::string& arch) {
    std::lock_guard<std::mutex> lk(m_);
    bool reconnect = cfg.url != cfg_.url || cfg.token != cfg_.token || cfg.caFile != cfg_.caFile ||
                     cfg.heartbeatS != cfg_.heartbeatS || agentId != agentId_;
    if (arch != arch_ && !reconnect) {
        logger().information("agent arch changed to %s: sending an inventory", arch);
        inventoryRequested_ = true;
    }
    cfg_ = cfg;
    agentId_ = agentId;
    arch_ = arch;
    size_t dropped = queue_.setCapacity(static_cast<size_t>(std::max(cfg.telemetryQueue, 1)));
    if (dropped > 0)
        logger().warning("telemetry queue shrunk to %z: dropped %z oldest events (%z so far)",
                         queue_.capacity(), dropped, queue_.droppedTotal());
    if (reconnect) {
        logger().information("proxy settings changed: reconnecting");
        reconnectRequested_ = true;
        if (wake_)
            wake_->cancel();
    }
    wakeLoop();
}

void ProxyClient::sendInventory() {
    {
        std::lock_guard<std::mutex> lk(m_);
        inventoryRequested_ = true;
    }
    wakeLoop();
}

void ProxyClient::wakeLoop() {
    if (wakeFd_ < 0)
        return;
    uint64_t one = 1;
    // Non-blocking: a counter already at its maximum means a wake-up is pending anyway.
    [[maybe_unused]] ssize_t n = ::write(wakeFd_, &one, sizeof one);
}

bool ProxyClient::waitReadable(int fd, Millis timeout) {
    if (wakeFd_ < 0) {
        pollfd p{fd, POLLIN, 0};
        return ::poll(&p, 1, static_cast<int>(std::min(timeout, kPollInterval).count())) > 0;
    }
    pollfd p[2] = {{fd, POLLIN, 0}, {wakeFd_, POLLIN, 0}};
    int rc = ::poll(p, 2, static_cast<int>(timeout.count()));
    if (rc <= 0)
        return false;
    if (p[1].revents & POLLIN) {
        uint64_t count = 0;
        [[maybe_unused]] ssize_t n = ::read(wakeFd_, &count, sizeof count);
    }
    // Errors and hang-ups count as readable: the read that follows reports them.
    return (p[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

void ProxyClient::sendTelemetry(TelemetryEvent ev) {
    if (ev.id.empty())
        ev.id = Poco::UUIDGenerator::defaultGenerator().createRandom().toString();
    if (ev.at == WallTime{})
        ev.at = clock_.wallNow();
    {
        std::lock_guard<std::mutex> lk(m_);
        size_t dropped = queue_.push(std::move(ev));
        if (dropped > 0)
            logger().warning(
                "telemetry queue full (%z events): dropped the oldest, %z dropped so far",
                queue_.capacity(), queue_.droppedTotal());
    }
    wakeLoop();
}

size_t ProxyClient::pendingTelemetry() const {
    std::lock_guard<std::mutex> lk(m_);
    return queue_.size();
}

std::vector<ComponentReport> ProxyClient::inventory() {
    if (!callbacks_.inventory)
        return {};
    return callbacks_.inventory();
}

void ProxyClient::run() {
    bool unauthorized = false;
    for (;;) {
        config::ProxySection cfg;
        std::string agentId;
        {
            std::lock_guard<std::mutex> lk(m_);
            if (stopping_)
                break;
            reconnectRequested_ = false;
            cfg = cfg_;
            agentId = agentId_;
        }
        state_ = unauthorized ? State::kUnauthorized : State::kConnecting;
        Outcome out = runConnection(cfg, agentId);
        if (out == Outcome::kStopped)
            break;
        unauthorized = out == Outcome::kUnauthorized;
        state_ = unauthorized ? State::kUnauthorized : State::kDisconnected;
        if (out == Outcome::kReconfigure) {
            policy_.reset();
            continue;
        }
        auto tok = std::make_shared<CancelToken>();
        {
            std::lock_guard<std::mutex> lk(m_);
            if (stopping_)
                break;
            policy_.setBounds(Millis(cfg_.reconnectInitialMs), Millis(cfg_.reconnectMaxMs));
            wake_ = tok;
            if (reconnectRequested_)
                tok->cancel();
        }
        Millis delay = unauthorized ? policy_.unauthorizedDelay() : policy_.nextDelay();
        if (unauthorized)
            logger().error(
                "proxy refused our credentials (check the proxy token); retrying in %?d ms",
                static_cast<Poco::Int64>(delay.count()));
        else
            logger().information("reconnecting to the proxy in %?d ms",
                                 static_cast<Poco::Int64>(delay.count()));
        clock_.sleepFor(delay, tok.get());
        std::lock_guard<std::mutex> lk(m_);
        wake_.reset();
    }
    state_ = State::kDisconnected;
}

ProxyClient::Outcome ProxyClient::runConnection(const config::ProxySection& cfg,
                                                const std::string& agentId) {
    auto target = parseTarget(cfg.url, agentId);
    if (!target) {
        logger().error("cannot connect to the proxy: %s", target.error().message());
        return Outcome::kFailed;
    }
    if (!target->tls && !cfg.token.empty() && !isLoopback(target->host))
        logger().warning("sending the proxy token over unencrypted ws:// to %s", target->display);
    Link link;
    link.target = *target;
    ReadWatchdog watchdog(clock_, stopping_);  // destroyed (joined) before the Link closes
    link.watchdog = &watchdog;
    Poco::Net::HTTPResponse response;
    try {
        if (target->tls) {
            initSslOnce();
            Poco::Net::Context::Params params;
            params.caLocation = cfg.caFile.value_or("");
            params.verificationMode = Poco::Net::Context::VERIFY_STRICT;
            params.loadDefaultCAs = !cfg.caFile.has_value();
            Poco::Net::Context::Ptr ctx =
                new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, params);
            link.session =
                std::make_unique<Poco::Net::HTTPSClientSession>(target->host, target->port, ctx);
        } else {
            link.session =
                std::make_unique<Poco::Net::HTTPClientSession>(target->host, target->port);
        }
        link.session->setTimeout(Poco::Timespan(kConnectTimeout.count() * 1000));
        Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, target->path,
                                       Poco::Net::HTTPMessage::HTTP_1_1);
        request.set("Sec-WebSocket-Protocol", kSubprotocol);
        if (!cfg.token.empty())
            request.set("Authorization", "Bearer " + cfg.token.reveal());
        request.set("User-Agent", kUserAgent);
        const std::string key = Upgrade::prepare(*link.session, request);
        link.session->sendRequest(request);
        // The whole answer, not each read of it, must come within the connect timeout.
        bool cut =
            watchdog.guard(link.session->socket().impl()->sockfd(), clock_.now() + kConnectTimeout,
                           [&] { link.session->receiveResponse(response); });
        if (cut) {
            if (stopping_)
                return Outcome::kStopped;
            logger().warning("proxy %s did not answer the upgrade within %?d ms", target->display,
                             static_cast<Poco::Int64>(kConnectTimeout.count()));
            return Outcome::kFailed;
        }
        const int status = response.getStatus();
        if (status == 401 || status == 403) {
            logger().error("proxy %s refused the connection with HTTP %d (unauthorized)",
                           target->display, status);
            return Outcome::kUnauthorized;
        }
        if (status != Poco::Net::HTTPResponse::HTTP_SWITCHING_PROTOCOLS) {
            logger().warning("cannot connect to the proxy %s: HTTP %d %s", target->display, status,
                             excerpt(response.getReason(), kMaxLoggedText));
            return Outcome::kFailed;
        }
        link.ws = Upgrade::complete(*link.session, response, key);
    } catch (const Poco::Exception& e) {
        logger().warning("cannot connect to the proxy %s: %s", target->display,
                         excerpt(e.displayText(), kMaxLoggedText));
        return Outcome::kFailed;
    } catch (const std::exception& e) {
        logger().warning("cannot connect to the proxy %s: %s", target->display,
                         excerpt(e.what(), kMaxLoggedText));
        return Outcome::kFailed;
    }

    std::string proto = response.get("Sec-WebSocket-Protocol", "");
    if (!proto.empty() && proto != kSubprotocol) {
        logger().error("proxy %s chose subprotocol '%s', expected '%s'", target->display,
                       excerpt(proto), std::string(kSubprotocol));
        closeLink(link, kCloseProtocolError, "unsupported subprotocol");
        return Outcome::kFailed;
    }

    policy_.onConnected();
    state_ = State::kConnected;
    logger().information("connected to the proxy %s", target->display);
    Outcome out = Outcome::kFailed;
    try {
        out = serve(link, cfg, agentId);
    } catch (const Poco::Exception& e) {
        logger().warning("proxy connection %s lost: %s", target->display,
                         excerpt(e.displayText(), kMaxLoggedText));
    } catch (const std::exception& e) {
        logger().warning("proxy connection %s lost: %s", target->display,
                         excerpt(e.what(), kMaxLoggedText));
    }
    policy_.onDisconnected();
    return out;
}

void ProxyClient::closeLink(Link& link, uint16_t code, const std::string& reason,
                            bool waitForPeer) {
    try {
        link.ws->shutdown(code, reason);
        if (!waitForPeer)
            return;
        // Wait (bounded) for the peer's close frame so it sees a clean close handshake.
        auto deadline = std::chrono::steady_clock::now() + kCloseWait;
        while (std::chrono::steady_clock::now() < deadline) {
            if (!link.ws->poll(Poco::Timespan(kPollInterval.count() * 1000),
                               Poco::Net::Socket::SELECT_READ) &&
                link.ws->available() <= 0)
                continue;
            Poco::Buffer<char> buf(0);
            int flags = 0;
            int n = link.ws->receiveFrame(buf, flags);
            if ((n == 0 && flags == 0) ||
                (flags & WebSocket::FRAME_OP_BITMASK) == WebSocket::FRAME_OP_CLOSE)
                break;
        }
    } catch (const Poco::Exception&) {
        // The peer went away first: nothing left to close politely.
    }
}

namespace {

// What makes a received frame a protocol violation (RFC 6455 5.2, 5.4, 5.5); "" if none.
std::string frameViolation(int flags, int n, bool inFragments) {
    const int op = flags & WebSocket::FRAME_OP_BITMASK;
    const bool fin = (flags & WebSocket::FRAME_FLAG_FIN) != 0;
    if (flags &
        (WebSocket::FRAME_FLAG_RSV1 | WebSocket::FRAME_FLAG_RSV2 | WebSocket::FRAME_FLAG_RSV3))
        return "reserved bits set";
    switch (op) {
        case WebSocket::FRAME_OP_PING:
        case WebSocket::FRAME_OP_PONG:
        case WebSocket::FRAME_OP_CLOSE:
            if (!fin || n > 125)
                return "control frame fragmented or longer than 125 bytes";
            return "";
        case WebSocket::FRAME_OP_CONT:
            return inFragments ? "" : "continuation frame without a message";
        case WebSocket::FRAME_OP_TEXT:
            return inFragments ? "text frame inside a fragmented message" : "";
        case WebSocket::FRAME_OP_BINARY:
            return "";
        default:
            return "unknown opcode " + std::to_string(op);
    }
}

}  // namespace

ProxyClient::Outcome ProxyClient::serve(Link& link, const config::ProxySection& cfg,
                                        const std::string& agentId) {
    WebSocket& ws = *link.ws;
    const int fd = ws.impl()->sockfd();
    const Millis heartbeat(static_cast<int64_t>(std::max(cfg.heartbeatS, 1)) * 1000);
    // Poco checks the declared length before allocating the payload.
    ws.setMaxPayloadSize(kMaxMessageBytes);
    ws.setReceiveTimeout(Poco::Timespan(heartbeat.count() * 2000));
    ws.setSendTimeout(Poco::Timespan(kConnectTimeout.count() * 1000));

    std::string arch;
    {
        std::lock_guard<std::mutex> lk(m_);
        queue_.markAllUnsent();
        inventoryRequested_ = false;  // hello carries the same inventory
        arch = arch_;
    }
    std::string hello = encodeHello(agentId, agentVersion_, arch, inventory());
    ws.sendFrame(hello.data(), static_cast<int>(hello.size()), WebSocket::FRAME_TEXT);
    logger().debug("sent hello");

    SteadyTime lastFrame = clock_.now();
    SteadyTime lastPing = lastFrame;
    bool synced = false;
    std::string fragments;
    bool inFragments = false;
    auto protocolError = [&](const std::string& what, bool waitForPeer) {
        logger().warning("proxy %s sent %s: closing with 4000 (protocol error)",
                         link.target.display, what);
        closeLink(link, kCloseProtocolError, "protocol error", waitForPeer);
        return Outcome::kFailed;
    };

    for (;;) {
        bool wantInventory = false;
        std::vector<TelemetryEvent> telemetry;
        {
            std::lock_guard<std::mutex> lk(m_);
            if (stopping_) {
                closeLink(link, kCloseNormal, "agent stopping");
                return Outcome::kStopped;
            }
            if (reconnectRequested_) {
                closeLink(link, kCloseNormal, "reconfigured");
                return Outcome::kReconfigure;
            }
            wantInventory = inventoryRequested_;
            inventoryRequested_ = false;
            arch = arch_;
            telemetry = queue_.takeUnsent();
        }
        if (wantInventory) {
            std::string inv = encodeInventory(agentId, arch, inventory());
            ws.sendFrame(inv.data(), static_cast<int>(inv.size()), WebSocket::FRAME_TEXT);
            logger().debug("sent inventory");
        }
        for (const auto& ev : telemetry) {
            std::string t = encodeTelemetry(agentId, ev);
            ws.sendFrame(t.data(), static_cast<int>(t.size()), WebSocket::FRAME_TEXT);
            logger().debug("sent telemetry %s (%s %s %s)", ev.id, std::string(toString(ev.event)),
                           ev.component, ev.tag);
        }

        if (clock_.now() - lastPing >= heartbeat) {
            ws.sendFrame("", 0, WebSocket::FRAME_FLAG_FIN | WebSocket::FRAME_OP_PING);
            lastPing = clock_.now();
        }

        // available() first: bytes TLS or the WebSocket already buffered do not show on
        // the descriptor.
        if (ws.available() <= 0 && !waitReadable(fd, kIdleWait)) {
            // Dead only after a look at the socket found nothing: frames that arrived while
            // this thread was busy elsewhere (an inventory waiting for discovery) count.
            if (clock_.now() - lastFrame >= 2 * heartbeat) {
                logger().warning("no frame from the proxy for %?d ms: connection considered dead",
                                 static_cast<Poco::Int64>(2 * heartbeat.count()));
                return Outcome::kFailed;
            }
            continue;
        }

        // A frame must be complete within two intervals of the previous one, however slowly
        // its bytes trickle in; one that started after this thread was busy past that point
        // gets one more interval.
        const SteadyTime deadline = std::max(lastFrame + 2 * heartbeat, clock_.now() + heartbeat);
        Poco::Buffer<char> buf(0);
        int flags = 0;
        int n = 0;
        bool cut = false;
        try {
            cut = link.watchdog->guard(fd, deadline, [&] { n = ws.receiveFrame(buf, flags); });
        } catch (const Poco::Net::WebSocketException& e) {
            if (e.code() != WebSocket::WS_ERR_PAYLOAD_TOO_BIG)
                throw;
            // The rest of that frame is still unread: no waiting for a close frame behind it.
            return protocolError(
                "a frame larger than " + std::to_string(kMaxMessageBytes) + " bytes", false);
        }
        if (cut) {
            if (stopping_) {
                closeLink(link, kCloseNormal, "agent stopping", false);
                return Outcome::kStopped;
            }
            logger().warning(
                "no complete frame from the proxy within %?d ms: connection considered dead",
                static_cast<Poco::Int64>(
                    std::chrono::duration_cast<Millis>(clock_.now() - lastFrame).count()));
            return Outcome::kFailed;
        }
        if (n == 0 && flags == 0) {
            logger().warning("proxy %s closed the connection", link.target.display);
            return Outcome::kFailed;
        }
        lastFrame = clock_.now();
        const std::string violation = frameViolation(flags, n, inFragments);
        if (!violation.empty())
            return protocolError("a bad frame (" + violation + ")", true);
        const int op = flags & WebSocket::FRAME_OP_BITMASK;
        const bool fin = (flags & WebSocket::FRAME_FLAG_FIN) != 0;
        switch (op) {
            case WebSocket::FRAME_OP_PING:
                ws.sendFrame(buf.begin(), n, WebSocket::FRAME_FLAG_FIN | WebSocket::FRAME_OP_PONG);
                break;
            case WebSocket::FRAME_OP_PONG:
                break;
            case WebSocket::FRAME_OP_CLOSE: {
                uint16_t code = closeCode(buf, n);
                try {
                    ws.shutdown(code == kCloseUnauthorized ? kCloseUnauthorized : kCloseNormal);
                } catch (const Poco::Exception&) {
                }
                if (code == kCloseUnauthorized) {
                    logger().error("proxy %s closed the connection with 4001 (unauthorized)",
                                   link.target.display);
                    return Outcome::kUnauthorized;
                }
                logger().warning("proxy %s closed the connection with code %hu",
                                 link.target.display, code);
                return Outcome::kFailed;
            }
            case WebSocket::FRAME_OP_BINARY:
                return protocolError("a binary frame", true);
            default: {  // text or its continuation (frameViolation allows nothing else)
                if (fragments.size() + static_cast<size_t>(n) >
                    static_cast<size_t>(kMaxMessageBytes))
                    return protocolError(
                        "a message larger than " + std::to_string(kMaxMessageBytes) + " bytes",
                        true);
                if (op == WebSocket::FRAME_OP_TEXT)
                    fragments.assign(buf.begin(), static_cast<size_t>(n));
                else
                    fragments.append(buf.begin(), static_cast<size_t>(n));
                inFragments = !fin;
                if (inFragments)
                    break;
                std::string text;
                text.swap(fragments);
                if (auto out = handleText(link, text, synced))
                    return *out;
                break;
            }
        }
    }
}

std::optional<ProxyClient::Outcome> ProxyClient::handleText(Link& link, const std::string& text,
                                                            bool& synced) {
    auto in = decode(text);
    if (!in) {
        logger().warning("dropped a frame from the proxy: %s",
                         excerpt(in.error().message(), kMaxLoggedText));
        return std::nullopt;
    }
    for (const auto& w : in->warnings)
        logger().warning("proxy message: %s", excerpt(w, kMaxLoggedText));
    switch (in->type) {
        case Incoming::Type::kSync:
            logger().information("sync from the proxy: %z releases", in->releases.size());
            if (callbacks_.announce)
                callbacks_.announce(std::move(in->releases), true);
            if (!synced) {
                synced = true;
                if (callbacks_.connected)
                    callbacks_.connected();
            }
            break;
        case Incoming::Type::kRelease:
            logger().information("release from the proxy: %s %s",
                                 excerpt(in->releases[0].component), excerpt(in->releases[0].tag));
            if (callbacks_.announce)
                callbacks_.announce(std::move(in->releases), false);
            break;
        case Incoming::Type::kAck: {
            std::lock_guard<std::mutex> lk(m_);
            if (!queue_.ack(in->ackId))
                logger().debug("ack for unknown telemetry id %s", excerpt(in->ackId));
            break;
        }
        case Incoming::Type::kError:
            if (in->errorCode == "unauthorized") {
                logger().error("proxy error 'unauthorized': %s",
                               excerpt(in->errorMessage, kMaxLoggedText));
                closeLink(link, kCloseUnauthorized, "unauthorized");
                return Outcome::kUnauthorized;
            }
            logger().warning("proxy error '%s': %s", excerpt(in->errorCode),
                             excerpt(in->errorMessage, kMaxLoggedText));
            break;
        case Incoming::Type::kUnknown:
            logger().debug("ignored proxy message of unknown type '%s'", excerpt(in->rawType));
            break;
    }
    return std::nullopt;
}

}  // namespace rra::proxy
