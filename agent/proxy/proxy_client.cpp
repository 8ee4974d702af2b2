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
#include <Poco/Net/WebSocket.h>
#include <Poco/String.h>
#include <Poco/URI.h>
#include <Poco/UUIDGenerator.h>

#include <algorithm>

namespace rra::proxy {

using Poco::Net::WebSocket;

namespace {

constexpr int kMaxPayload = 16 * 1024 * 1024;
constexpr Millis kCloseWait{500};

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
        std::string base = uri.getPath();
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
    : agentId_(std::move(agentId)),
      arch_(std::move(arch)),
      agentVersion_(std::move(agentVersion)),
      callbacks_(std::move(callbacks)),
      clock_(clock),
      policy_(Millis(cfg.reconnectInitialMs), Millis(cfg.reconnectMaxMs), clock, random),
      cfg_(cfg),
      queue_(static_cast<size_t>(std::max(cfg.telemetryQueue, 1))) {}

ProxyClient::~ProxyClient() {
    stop();
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
    if (t.joinable())
        t.join();
    state_ = State::kDisconnected;
}

void ProxyClient::reconfigure(const config::ProxySection& cfg) {
    std::lock_guard<std::mutex> lk(m_);
    bool reconnect = cfg.url != cfg_.url || cfg.token != cfg_.token || cfg.caFile != cfg_.caFile ||
                     cfg.heartbeatS != cfg_.heartbeatS;
    cfg_ = cfg;
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
}

void ProxyClient::sendInventory() {
    std::lock_guard<std::mutex> lk(m_);
    inventoryRequested_ = true;
}

void ProxyClient::sendTelemetry(TelemetryEvent ev) {
    if (ev.id.empty())
        ev.id = Poco::UUIDGenerator::defaultGenerator().createRandom().toString();
    if (ev.at == WallTime{})
        ev.at = clock_.wallNow();
    std::lock_guard<std::mutex> lk(m_);
    size_t dropped = queue_.push(std::move(ev));
    if (dropped > 0)
        logger().warning("telemetry queue full (%z events): dropped the oldest, %z dropped so far",
                         queue_.capacity(), queue_.droppedTotal());
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
        {
            std::lock_guard<std::mutex> lk(m_);
            if (stopping_)
                break;
            reconnectRequested_ = false;
            cfg = cfg_;
        }
        state_ = unauthorized ? State::kUnauthorized : State::kConnecting;
        Outcome out = runConnection(cfg);
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
                static_cast<long long>(delay.count()));
        else
            logger().information("reconnecting to the proxy in %?d ms",
                                 static_cast<long long>(delay.count()));
        clock_.sleepFor(delay, tok.get());
        std::lock_guard<std::mutex> lk(m_);
        wake_.reset();
    }
    state_ = State::kDisconnected;
}

ProxyClient::Outcome ProxyClient::runConnection(const config::ProxySection& cfg) {
    auto target = parseTarget(cfg.url, agentId_);
    if (!target) {
        logger().error("cannot connect to the proxy: %s", target.error().message());
        return Outcome::kFailed;
    }
    if (!target->tls && !cfg.token.empty() && !isLoopback(target->host))
        logger().warning("sending the proxy token over unencrypted ws:// to %s", target->display);
    Link link;
    link.target = *target;
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
        link.ws = std::make_unique<WebSocket>(*link.session, request, response);
    } catch (const Poco::Exception& e) {
        int status = response.getStatus();
        if (status == 401 || status == 403) {
            logger().error("proxy %s refused the connection with HTTP %d (unauthorized)",
                           target->display, status);
            return Outcome::kUnauthorized;
        }
        logger().warning("cannot connect to the proxy %s: %s", target->display, e.displayText());
        return Outcome::kFailed;
    } catch (const std::exception& e) {
        logger().warning("cannot connect to the proxy %s: %s", target->display,
                         std::string(e.what()));
        return Outcome::kFailed;
    }

    std::string proto = response.get("Sec-WebSocket-Protocol", "");
    if (!proto.empty() && proto != kSubprotocol) {
        logger().error("proxy %s chose subprotocol '%s', expected '%s'", target->display, proto,
                       std::string(kSubprotocol));
        closeLink(link, kCloseProtocolError, "unsupported subprotocol");
        return Outcome::kFailed;
    }

    policy_.onConnected();
    state_ = State::kConnected;
    logger().information("connected to the proxy %s", target->display);
    Outcome out = Outcome::kFailed;
    try {
        out = serve(link, cfg);
    } catch (const Poco::Exception& e) {
        logger().warning("proxy connection %s lost: %s", target->display, e.displayText());
    } catch (const std::exception& e) {
        logger().warning("proxy connection %s lost: %s", target->display, std::string(e.what()));
    }
    policy_.onDisconnected();
    return out;
}

void ProxyClient::closeLink(Link& link, uint16_t code, const std::string& reason) {
    try {
        link.ws->shutdown(code, reason);
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

ProxyClient::Outcome ProxyClient::serve(Link& link, const config::ProxySection& cfg) {
    WebSocket& ws = *link.ws;
    const Millis heartbeat(static_cast<int64_t>(std::max(cfg.heartbeatS, 1)) * 1000);
    ws.setMaxPayloadSize(kMaxPayload);
    ws.setReceiveTimeout(Poco::Timespan(heartbeat.count() * 2000));
    ws.setSendTimeout(Poco::Timespan(kConnectTimeout.count() * 1000));

    {
        std::lock_guard<std::mutex> lk(m_);
        queue_.markAllUnsent();
        inventoryRequested_ = false;  // hello carries the same inventory
    }
    std::string hello = encodeHello(agentId_, agentVersion_, arch_, inventory());
    ws.sendFrame(hello.data(), static_cast<int>(hello.size()), WebSocket::FRAME_TEXT);
    logger().debug("sent hello");

    SteadyTime lastFrame = clock_.now();
    SteadyTime lastPing = lastFrame;
    bool synced = false;
    std::string fragments;
    bool inFragments = false;

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
            telemetry = queue_.takeUnsent();
        }
        if (wantInventory) {
            std::string inv = encodeInventory(agentId_, arch_, inventory());
            ws.sendFrame(inv.data(), static_cast<int>(inv.size()), WebSocket::FRAME_TEXT);
            logger().debug("sent inventory");
        }
        for (const auto& ev : telemetry) {
            std::string t = encodeTelemetry(agentId_, ev);
            ws.sendFrame(t.data(), static_cast<int>(t.size()), WebSocket::FRAME_TEXT);
            logger().debug("sent telemetry %s (%s %s %s)", ev.id, std::string(toString(ev.event)),
                           ev.component, ev.tag);
        }

        SteadyTime now = clock_.now();
        if (now - lastFrame >= 2 * heartbeat) {
            logger().warning("no frame from the proxy for %?d ms: connection considered dead",
                             static_cast<long long>(2 * heartbeat.count()));
            return Outcome::kFailed;
        }
        if (now - lastPing >= heartbeat) {
            ws.sendFrame("", 0, WebSocket::FRAME_FLAG_FIN | WebSocket::FRAME_OP_PING);
            lastPing = now;
        }

        if (!ws.poll(Poco::Timespan(kPollInterval.count() * 1000),
                     Poco::Net::Socket::SELECT_READ) &&
            ws.available() <= 0)
            continue;

        Poco::Buffer<char> buf(0);
        int flags = 0;
        int n = ws.receiveFrame(buf, flags);
        if (n == 0 && flags == 0) {
            logger().warning("proxy %s closed the connection", link.target.display);
            return Outcome::kFailed;
        }
        lastFrame = clock_.now();
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
                logger().warning("proxy sent a binary frame: closing with 4000 (protocol error)");
                closeLink(link, kCloseProtocolError, "binary frame");
                return Outcome::kFailed;
            case WebSocket::FRAME_OP_TEXT:
            case WebSocket::FRAME_OP_CONT: {
                if (op == WebSocket::FRAME_OP_TEXT) {
                    fragments.assign(buf.begin(), static_cast<size_t>(n));
                    inFragments = !fin;
                } else if (inFragments) {
                    if (fragments.size() + static_cast<size_t>(n) > kMaxPayload) {
                        closeLink(link, kCloseProtocolError, "message too big");
                        return Outcome::kFailed;
                    }
                    fragments.append(buf.begin(), static_cast<size_t>(n));
                    inFragments = !fin;
                } else {
                    break;  // continuation of a binary message we already refused
                }
                if (inFragments)
                    break;
                std::string text;
                text.swap(fragments);
                if (auto out = handleText(link, text, synced))
                    return *out;
                break;
            }
            default:
                logger().warning("proxy sent a frame with unknown opcode %d: ignored", op);
        }
    }
}

std::optional<ProxyClient::Outcome> ProxyClient::handleText(Link& link, const std::string& text,
                                                            bool& synced) {
    auto in = decode(text);
    if (!in) {
        logger().warning("dropped a frame from the proxy: %s", in.error().message());
        return std::nullopt;
    }
    for (const auto& w : in->warnings)
        logger().warning("proxy message: %s", w);
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
            logger().information("release from the proxy: %s %s", in->releases[0].component,
                                 in->releases[0].tag);
            if (callbacks_.announce)
                callbacks_.announce(std::move(in->releases), false);
            break;
        case Incoming::Type::kAck: {
            std::lock_guard<std::mutex> lk(m_);
            if (!queue_.ack(in->ackId))
                logger().debug("ack for unknown telemetry id %s", in->ackId);
            break;
        }
        case Incoming::Type::kError:
            if (in->errorCode == "unauthorized") {
                logger().error("proxy error 'unauthorized': %s", in->errorMessage);
                closeLink(link, kCloseNormal, "unauthorized");
                return Outcome::kUnauthorized;
            }
            logger().warning("proxy error '%s': %s", in->errorCode, in->errorMessage);
            break;
        case Incoming::Type::kUnknown:
            logger().debug("ignored proxy message of unknown type '%s'", in->rawType);
            break;
    }
    return std::nullopt;
}

}  // namespace rra::proxy
