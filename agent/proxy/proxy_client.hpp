// The agent's one WebSocket connection to the raspi-release-proxy: connect, hello, read
// loop, heartbeat, reconnect with backoff, telemetry delivery until acked
// (shared/spec/proxy-protocol.md). Decisions live in messages / reconnect_policy /
// telemetry_queue; this file owns the socket and its thread.
#pragma once

#include "common/clock.hpp"
#include "common/events.hpp"
#include "common/random.hpp"
#include "config/config.hpp"
#include "proxy/reconnect_policy.hpp"
#include "proxy/telemetry_queue.hpp"

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace rra::proxy {

class ProxyClient {
  public:
    // Called on the client's own thread; keep them short and never call stop() from them.
    struct Callbacks {
        std::function<std::vector<ComponentReport>()> inventory;  // for every hello / inventory
        // Raw decoded entries (the app filters with filterAnnouncements).
        std::function<void(std::vector<Announcement> batch, bool fromSync)> announce;
        // The first sync on a connection arrived: the agent is "healthy".
        std::function<void()> connected;
    };
    enum class State { kDisconnected, kConnecting, kConnected, kUnauthorized };

    ProxyClient(const config::ProxySection& cfg, std::string agentId, std::string arch,
                std::string agentVersion, Callbacks callbacks, Clock& clock, Random& random);
    ~ProxyClient();
    ProxyClient(const ProxyClient&) = delete;
    ProxyClient& operator=(const ProxyClient&) = delete;

    void start();  // background thread: connect, hello, read loop, heartbeat, reconnect
    // Closes with 1000 and joins. Prompt (< 1 s) except while a TCP/TLS connect is in
    // flight, which is bounded by kConnectTimeout.
    void stop();
    // Reconnects at once if url, token, CA file or heartbeat changed; backoff bounds and
    // queue size apply from now on.
    void reconfigure(const config::ProxySection& cfg);
    // The same, and the agent's identity: a new agent_id reconnects (it is in the URL and
    // the hello), a new arch alone sends an inventory carrying it. Cheap when nothing
    // changed, so a reload may call it every time.
    void reconfigure(const config::ProxySection& cfg, const std::string& agentId,
                     const std::string& arch);
    void sendInventory();  // after a reload changed the component set or a repo
    // Fills `id` (UUID) and `at` (now) when empty; queued; sent when connected, resent
    // after each reconnect until acked. Thread-safe.
    void sendTelemetry(TelemetryEvent ev);

    State state() const { return state_.load(); }
    size_t pendingTelemetry() const;

    static constexpr Millis kConnectTimeout{5000};
    static constexpr Millis kPollInterval{50};
    // Longest sleep of a connected, idle client: work from other threads (telemetry,
    // inventory, reconfigure, stop) wakes it at once, so this only paces pings and the
    // liveness check, and keeps an idle agent's wake-ups few.
    static constexpr Millis kIdleWait{250};
    // Largest message taken from the proxy (one frame or all fragments of one message);
    // a larger one closes the connection with 4000.
    static constexpr int kMaxMessageBytes = 1024 * 1024;

  private:
    enum class Outcome { kStopped, kReconfigure, kUnauthorized, kFailed };
    struct Link;  // the Poco session + WebSocket of one connection

    void run();
    Outcome runConnection(const config::ProxySection& cfg, const std::string& agentId);
    Outcome serve(Link& link, const config::ProxySection& cfg, const std::string& agentId);
    // Nothing: keep the connection; otherwise leave it with that outcome.
    std::optional<Outcome> handleText(Link& link, const std::string& text, bool& synced);
    // Sends a close frame; with waitForPeer, reads (bounded) until the peer's close.
    void closeLink(Link& link, uint16_t code, const std::string& reason, bool waitForPeer = true);
    std::vector<ComponentReport> inventory();
    void wakeLoop();  // any thread: ends the client thread's idle wait
    // Client thread: waits up to `timeout` until `fd` is readable (true) or wakeLoop().
    bool waitReadable(int fd, Millis timeout);

    const std::string agentVersion_;
    const Callbacks callbacks_;
    Clock& clock_;
    ReconnectPolicy policy_;  // client thread only

    mutable std::mutex m_;
    config::ProxySection cfg_;
    std::string agentId_, arch_;
    TelemetryQueue queue_;
    std::atomic<bool> stopping_{false};  // also read, lock-free, by the read watchdog
    bool reconnectRequested_ = false;
    bool inventoryRequested_ = false;
    std::shared_ptr<CancelToken> wake_;  // interrupts the backoff sleep
    int wakeFd_ = -1;                    // eventfd: interrupts the connected idle wait
    std::thread thread_;
    std::atomic<State> state_{State::kDisconnected};
};

const char* toString(ProxyClient::State s);

}  // namespace rra::proxy
