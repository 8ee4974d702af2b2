// Fake proxy: one Poco HTTPServer; each WebSocket connection runs its own loop on a
// server thread that both reads frames and executes the commands the test queued.
#include "fakes/proxy/fake_proxy.hpp"

#include <Poco/Buffer.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/WebSocket.h>
#include <Poco/ThreadPool.h>

#include <sys/socket.h>

#include <cstdlib>
#include <deque>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

namespace rra::fakes {

using Poco::Net::WebSocket;

namespace {

Poco::JSON::Object::Ptr announcementJson(const Announcement& a) {
    Poco::JSON::Object::Ptr o = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("component", a.component);
    o->set("repo", a.repo);
    o->set("tag", a.tag);
    o->set("published_at", a.publishedAt);
    return o;
}

std::string str(const Poco::JSON::Object::Ptr& o) {
    std::ostringstream os;
    o->stringify(os);
    return os.str();
}

}  // namespace

// One open WebSocket: commands queued by the test, executed on the connection thread.
struct FakeProxy::Conn {
    struct Command {
        enum class Kind { kText, kBinary, kFrame, kRawBytes, kDrop, kClose } kind;
        std::string payload;
        uint16_t code = 0;
        int flags = 0;
    };
    int number = 0;
    std::mutex m;
    std::deque<Command> outbox;

    void push(Command c) {
        std::lock_guard<std::mutex> lk(m);
        outbox.push_back(std::move(c));
    }
    std::deque<Command> take() {
        std::lock_guard<std::mutex> lk(m);
        std::deque<Command> out;
        out.swap(outbox);
        return out;
    }
};

class FakeProxy::Handler : public Poco::Net::HTTPRequestHandler {
  public:
    explicit Handler(FakeProxy& fake) : fake_(fake) {}
    void handleRequest(Poco::Net::HTTPServerRequest& req,
                       Poco::Net::HTTPServerResponse& resp) override {
        fake_.handle(req, resp);
    }

  private:
    FakeProxy& fake_;
};

class FakeProxy::Factory : public Poco::Net::HTTPRequestHandlerFactory {
  public:
    explicit Factory(FakeProxy& fake) : fake_(fake) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(
        const Poco::Net::HTTPServerRequest&) override {
        return new Handler(fake_);
    }

  private:
    FakeProxy& fake_;
};

FakeProxy::FakeProxy() : FakeProxy(Options{}) {}
FakeProxy::FakeProxy(Options options) : options_(std::move(options)), port_(options_.port) {}
FakeProxy::~FakeProxy() {
    stop();
}

std::string FakeProxy::url() const {
    bool tls = !options_.certFile.empty();
    return std::string(tls ? "wss://localhost:" : "ws://127.0.0.1:") + std::to_string(port_);
}

void FakeProxy::start() {
    if (server_)
        return;
    {
        std::lock_guard<std::mutex> lk(m_);
        stopping_ = false;
    }
    Poco::Net::SocketAddress addr("127.0.0.1", port_);
    std::unique_ptr<Poco::Net::ServerSocket> socket;
    if (!options_.certFile.empty()) {
        static std::once_flag once;
        std::call_once(once, [] { Poco::Net::initializeSSL(); });
        Poco::Net::Context::Ptr ctx =
            new Poco::Net::Context(Poco::Net::Context::TLS_SERVER_USE, options_.keyFile,
                                   options_.certFile, "", Poco::Net::Context::VERIFY_NONE);
        socket = std::make_unique<Poco::Net::SecureServerSocket>(addr, 64, ctx);
    } else {
        socket = std::make_unique<Poco::Net::ServerSocket>(addr, 64);
    }
    port_ = socket->address().port();
    auto params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(16);
    params->setKeepAlive(false);
    pool_ = std::make_unique<Poco::ThreadPool>(2, 16);
    server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(*this), *pool_, *socket, params);
    server_->start();
}

void FakeProxy::stop() {
    if (!server_)
        return;
    {
        std::lock_guard<std::mutex> lk(m_);
        stopping_ = true;
    }
    cv_.notify_all();
    server_->stop();
    {
        std::unique_lock<std::mutex> lk(m_);
        cv_.wait_for(lk, std::chrono::seconds(5), [this] { return activeHandlers_ == 0; });
    }
    server_.reset();
    pool_->joinAll();
    pool_.reset();
}

void FakeProxy::setSync(std::vector<Announcement> releases) {
    std::lock_guard<std::mutex> lk(m_);
    sync_ = std::move(releases);
}
void FakeProxy::setAutoAck(bool on) {
    std::lock_guard<std::mutex> lk(m_);
    autoAck_ = on;
}
void FakeProxy::setRefuseStatus(int status) {
    std::lock_guard<std::mutex> lk(m_);
    refuseStatus_ = status;
}
void FakeProxy::setHelloReply(HelloReply reply) {
    std::lock_guard<std::mutex> lk(m_);
    helloReply_ = reply;
}
void FakeProxy::setOnText(std::function<void(const std::string&)> fn) {
    std::lock_guard<std::mutex> lk(m_);
    onText_ = std::move(fn);
}

std::string FakeProxy::encodeSync(const std::vector<Announcement>& releases) {
    Poco::JSON::Object::Ptr o = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("type", "sync");
    Poco::JSON::Array::Ptr arr = new Poco::JSON::Array;
    for (const auto& a : releases)
        arr->add(announcementJson(a));
    o->set("releases", arr);
    return str(o);
}

std::string FakeProxy::encodeRelease(const Announcement& a) {
    Poco::JSON::Object::Ptr o = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("type", "release");
    o->set("component", a.component);
    o->set("repo", a.repo);
    o->set("tag", a.tag);
    o->set("published_at", a.publishedAt);
    return str(o);
}

bool FakeProxy::broadcast(const std::function<void(Conn&)>& fn) {
    std::lock_guard<std::mutex> lk(m_);
    for (auto& c : conns_)
        fn(*c);
    return !conns_.empty();
}

bool FakeProxy::pushRelease(const Announcement& a) {
    return pushRaw(encodeRelease(a));
}
bool FakeProxy::pushSync() {
    std::vector<Announcement> s;
    {
        std::lock_guard<std::mutex> lk(m_);
        s = sync_;
    }
    return pushRaw(encodeSync(s));
}
bool FakeProxy::pushRaw(const std::string& text) {
    return broadcast([&](Conn& c) { c.push({Conn::Command::Kind::kText, text}); });
}
bool FakeProxy::pushBinary(const std::string& data) {
    return broadcast([&](Conn& c) { c.push({Conn::Command::Kind::kBinary, data}); });
}
bool FakeProxy::pushFrame(int flags, const std::string& payload) {
    return broadcast([&](Conn& c) { c.push({Conn::Command::Kind::kFrame, payload, 0, flags}); });
}
bool FakeProxy::pushRawBytes(const std::string& bytes) {
    return broadcast([&](Conn& c) { c.push({Conn::Command::Kind::kRawBytes, bytes}); });
}
bool FakeProxy::dropConnections() {
    return broadcast([&](Conn& c) { c.push({Conn::Command::Kind::kDrop, ""}); });
}
bool FakeProxy::closeConnections(uint16_t code, const std::string& reason) {
    return broadcast([&](Conn& c) { c.push({Conn::Command::Kind::kClose, reason, code}); });
}

std::vector<ReceivedMessage> FakeProxy::messages() const {
    std::lock_guard<std::mutex> lk(m_);
    return messages_;
}
std::vector<ReceivedMessage> FakeProxy::messages(const std::string& type) const {
    std::lock_guard<std::mutex> lk(m_);
    std::vector<ReceivedMessage> out;
    for (const auto& msg : messages_)
        if (msg.type == type)
            out.push_back(msg);
    return out;
}
std::vector<Handshake> FakeProxy::handshakes() const {
    std::lock_guard<std::mutex> lk(m_);
    return handshakes_;
}
std::vector<uint16_t> FakeProxy::closeCodesReceived() const {
    std::lock_guard<std::mutex> lk(m_);
    return closeCodes_;
}
int FakeProxy::connectionsAccepted() const {
    std::lock_guard<std::mutex> lk(m_);
    return accepted_;
}
int FakeProxy::openConnections() const {
    std::lock_guard<std::mutex> lk(m_);
    return static_cast<int>(conns_.size());
}
int FakeProxy::pingsReceived() const {
    std::lock_guard<std::mutex> lk(m_);
    return pings_;
}
int FakeProxy::commandsSent() const {
    std::lock_guard<std::mutex> lk(m_);
    return commandsSent_;
}

bool FakeProxy::waitFor(const std::function<bool()>& pred, Millis timeout) const {
    // pred takes the lock itself through the accessors, so poll it with a short cv wait.
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
        if (std::chrono::steady_clock::now() >= deadline)
            return false;
        std::unique_lock<std::mutex> lk(m_);
        cv_.wait_for(lk, Millis(20));
    }
    return true;
}

bool FakeProxy::waitForMessages(const std::string& type, size_t n, Millis timeout) const {
    return waitFor([&] { return messages(type).size() >= n; }, timeout);
}

void FakeProxy::notify() {
    cv_.notify_all();
}

void FakeProxy::handle(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp) {
    static const std::regex kPath("^/v1/agents/[A-Za-z0-9._-]{1,64}/stream$");
    Handshake hs{req.getURI(), req.get("Sec-WebSocket-Protocol", ""), req.get("Authorization", ""),
                 req.get("User-Agent", "")};
    int refuse = 0;
    {
        std::lock_guard<std::mutex> lk(m_);
        refuse = refuseStatus_;
        if (stopping_)
            refuse = 503;
    }
    if (!refuse && !std::regex_match(hs.path, kPath))
        refuse = 404;
    if (!refuse && hs.subprotocol.find("raspi-release.v1") == std::string::npos)
        refuse = 400;
    if (refuse) {
        hs.status = refuse;
        {
            std::lock_guard<std::mutex> lk(m_);
            handshakes_.push_back(hs);
        }
        notify();
        resp.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(refuse));
        resp.setContentLength(0);
        resp.send().flush();
        return;
    }

    std::unique_ptr<WebSocket> ws;
    try {
        resp.set("Sec-WebSocket-Protocol", "raspi-release.v1");
        ws = std::make_unique<WebSocket>(req, resp);
    } catch (const Poco::Exception&) {
        hs.status = 400;
        std::lock_guard<std::mutex> lk(m_);
        handshakes_.push_back(hs);
        return;
    }
    hs.status = 101;
    auto conn = std::make_shared<Conn>();
    {
        std::lock_guard<std::mutex> lk(m_);
        handshakes_.push_back(hs);
        conn->number = ++accepted_;
        conns_.push_back(conn);
        ++activeHandlers_;
    }
    notify();

    auto send = [&](const std::string& text) {
        ws->sendFrame(text.data(), static_cast<int>(text.size()), WebSocket::FRAME_TEXT);
    };
    bool abrupt = false;
    try {
        ws->setReceiveTimeout(Poco::Timespan(5, 0));
        for (;;) {
            {
                std::lock_guard<std::mutex> lk(m_);
                if (stopping_) {
                    abrupt = true;
                    break;
                }
            }
            bool leave = false;
            for (auto& cmd : conn->take()) {
                using K = Conn::Command::Kind;
                if (cmd.kind == K::kText) {
                    send(cmd.payload);
                } else if (cmd.kind == K::kBinary) {
                    ws->sendFrame(cmd.payload.data(), static_cast<int>(cmd.payload.size()),
                                  WebSocket::FRAME_BINARY);
                } else if (cmd.kind == K::kFrame) {
                    ws->sendFrame(cmd.payload.data(), static_cast<int>(cmd.payload.size()),
                                  cmd.flags);
                } else if (cmd.kind == K::kRawBytes) {
                    ::send(ws->impl()->sockfd(), cmd.payload.data(), cmd.payload.size(),
                           MSG_NOSIGNAL);
                } else if (cmd.kind == K::kDrop) {
                    abrupt = leave = true;
                    break;
                } else {
                    ws->shutdown(cmd.code, cmd.payload);
                    leave = true;
                    break;
                }
                {
                    std::lock_guard<std::mutex> lk(m_);
                    ++commandsSent_;
                }
                notify();
            }
            if (leave)
                break;
            if (!ws->poll(Poco::Timespan(0, 20000), Poco::Net::Socket::SELECT_READ) &&
                ws->available() <= 0)
                continue;
            Poco::Buffer<char> buf(0);
            int flags = 0;
            int n = ws->receiveFrame(buf, flags);
            if (n == 0 && flags == 0)
                break;
            int op = flags & WebSocket::FRAME_OP_BITMASK;
            if (op == WebSocket::FRAME_OP_PING) {
                {
                    std::lock_guard<std::mutex> lk(m_);
                    ++pings_;
                }
                ws->sendFrame(buf.begin(), n, WebSocket::FRAME_FLAG_FIN | WebSocket::FRAME_OP_PONG);
                continue;
            }
            if (op == WebSocket::FRAME_OP_CLOSE) {
                uint16_t code =
                    n >= 2 ? static_cast<uint16_t>((static_cast<unsigned char>(buf[0]) << 8) |
                                                   static_cast<unsigned char>(buf[1]))
                           : 1005;
                {
                    std::lock_guard<std::mutex> lk(m_);
                    closeCodes_.push_back(code);
                }
                notify();
                ws->shutdown(code);
                break;
            }
            if (op != WebSocket::FRAME_OP_TEXT)
                continue;

            ReceivedMessage msg;
            msg.connection = conn->number;
            msg.raw.assign(buf.begin(), static_cast<size_t>(n));
            try {
                Poco::JSON::Parser parser;
                auto v = parser.parse(msg.raw);
                if (v.type() == typeid(Poco::JSON::Object::Ptr)) {
                    msg.json = v.extract<Poco::JSON::Object::Ptr>();
                    auto t = msg.json->get("type");
                    if (t.isString())
                        msg.type = t.extract<std::string>();
                }
            } catch (const Poco::Exception&) {
            }
            std::function<void(const std::string&)> onText;
            bool autoAck;
            HelloReply reply;
            std::vector<Announcement> sync;
            {
                std::lock_guard<std::mutex> lk(m_);
                messages_.push_back(msg);
                onText = onText_;
                autoAck = autoAck_;
                reply = helloReply_;
                sync = sync_;
            }
            notify();
            if (onText)
                onText(msg.raw);
            if (msg.type == "telemetry" && autoAck && msg.json) {
                Poco::JSON::Object::Ptr ack = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
                ack->set("type", "ack");
                ack->set("id", msg.json->optValue<std::string>("id", ""));
                send(str(ack));
            } else if (msg.type == "hello" || msg.type == "inventory") {
                if (reply == HelloReply::kSync) {
                    send(encodeSync(sync));
                } else if (reply == HelloReply::kClose4001) {
                    ws->shutdown(4001, "unauthorized");
                    break;
                } else if (reply == HelloReply::kErrorUnauthorized) {
                    send(R"({"type":"error","code":"unauthorized","message":"bad token"})");
                }
            }
        }
    } catch (const Poco::Exception&) {
        abrupt = true;
    }
    if (abrupt) {
        try {
            ws->close();
        } catch (const Poco::Exception&) {
        }
    }
    {
        std::lock_guard<std::mutex> lk(m_);
        conns_.erase(std::remove(conns_.begin(), conns_.end(), conn), conns_.end());
        --activeHandlers_;
    }
    notify();
}

}  // namespace rra::fakes
