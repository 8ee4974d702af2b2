// A scriptable raspi-release-proxy for tests: Poco HTTPServer with the WebSocket upgrade
// at /v1/agents/<id>/stream on 127.0.0.1 (ws:// or wss://), recording what the agent sends
// and sending what the test asks for (shared/spec/proxy-protocol.md).
#pragma once

#include "common/clock.hpp"
#include "common/events.hpp"
#include "fakes/pki/test_pki.hpp"

#include <Poco/JSON/Object.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace Poco::Net {
class HTTPServer;
class HTTPServerRequest;
class HTTPServerResponse;
}  // namespace Poco::Net
namespace Poco {
class ThreadPool;
}

namespace rra::fakes {

// Certificates for the TLS variant: fakes/pki/test_pki.hpp.

struct ReceivedMessage {
    int connection = 0;  // 1-based accept order
    std::string type;    // "" when the frame was not a JSON object with a string type
    std::string raw;
    Poco::JSON::Object::Ptr json;  // null when not a JSON object
};

struct Handshake {
    std::string path, subprotocol, authorization, userAgent;
    int status = 0;  // what the fake answered: 101, 401, 404, ...
};

class FakeProxy {
  public:
    struct Options {
        std::string certFile, keyFile;  // both set: TLS (wss://)
        uint16_t port = 0;              // 0: ephemeral on the first start
    };
    // What the fake does when a hello or inventory arrives.
    enum class HelloReply { kSync, kNothing, kClose4001, kErrorUnauthorized };

    FakeProxy();
    explicit FakeProxy(Options options);
    ~FakeProxy();
    FakeProxy(const FakeProxy&) = delete;
    FakeProxy& operator=(const FakeProxy&) = delete;

    void start();  // listens; after stop(), the same port again
    void stop();   // closes the listener and drops every connection without a close frame
    uint16_t port() const { return port_; }
    std::string url() const;  // ws://127.0.0.1:<port> or wss://localhost:<port>

    // Script.
    void setSync(std::vector<Announcement> releases);
    void setAutoAck(bool on);
    void setRefuseStatus(int status);  // 0 accepts; e.g. 401/403 refuses the upgrade
    void setHelloReply(HelloReply reply);

    // Actions on every open connection; each returns false when none is open.
    bool pushRelease(const Announcement& a);
    bool pushSync();
    bool pushRaw(const std::string& text);
    bool pushBinary(const std::string& data);
    // One frame with exactly these flags (FIN, RSV, opcode), nothing checked.
    bool pushFrame(int flags, const std::string& payload);
    // Bytes straight onto the TCP stream (ws:// only), e.g. half a frame header.
    bool pushRawBytes(const std::string& bytes);
    bool dropConnections();  // TCP close, no close frame
    bool closeConnections(uint16_t code, const std::string& reason = "");

    // Observations.
    std::vector<ReceivedMessage> messages() const;
    std::vector<ReceivedMessage> messages(const std::string& type) const;
    std::vector<Handshake> handshakes() const;
    std::vector<uint16_t> closeCodesReceived() const;  // close frames sent by the agent
    int connectionsAccepted() const;
    int openConnections() const;
    int pingsReceived() const;
    int commandsSent() const;  // push* commands written to a socket so far

    // Bounded waits; true when the condition held in time.
    bool waitFor(const std::function<bool()>& pred, Millis timeout) const;
    bool waitForMessages(const std::string& type, size_t n, Millis timeout) const;
    bool waitForHello(size_t n = 1, Millis timeout = Millis(5000)) const {
        return waitForMessages("hello", n, timeout);
    }
    bool waitForTelemetry(size_t n, Millis timeout = Millis(5000)) const {
        return waitForMessages("telemetry", n, timeout);
    }

    // Called (on a connection thread) for every text frame received; for the CLI.
    void setOnText(std::function<void(const std::string&)> fn);

    static std::string encodeSync(const std::vector<Announcement>& releases);
    static std::string encodeRelease(const Announcement& a);

  private:
    struct Conn;
    class Handler;
    class Factory;
    friend class Handler;

    void handle(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp);
    bool broadcast(const std::function<void(Conn&)>& fn);
    void notify();

    Options options_;
    uint16_t port_ = 0;
    std::unique_ptr<Poco::ThreadPool> pool_;
    std::unique_ptr<Poco::Net::HTTPServer> server_;

    mutable std::mutex m_;
    mutable std::condition_variable cv_;
    bool stopping_ = false;
    int activeHandlers_ = 0;
    std::vector<std::shared_ptr<Conn>> conns_;
    std::vector<Announcement> sync_;
    bool autoAck_ = true;
    int refuseStatus_ = 0;
    HelloReply helloReply_ = HelloReply::kSync;
    std::vector<ReceivedMessage> messages_;
    std::vector<Handshake> handshakes_;
    std::vector<uint16_t> closeCodes_;
    int accepted_ = 0;
    int pings_ = 0;
    int commandsSent_ = 0;
    std::function<void(const std::string&)> onText_;
};

}  // namespace rra::fakes
