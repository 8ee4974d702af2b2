// When to reconnect to the proxy: exponential backoff with full jitter, reset after a
// connection stayed up for 60 s, the cap every time when unauthorized. Pure code on
// Clock + Random; the caller sleeps.
#pragma once

#include "common/clock.hpp"
#include "common/random.hpp"

namespace rra::proxy {

class ReconnectPolicy {
  public:
    static constexpr Millis kResetAfter{60000};

    ReconnectPolicy(Millis initial, Millis max, Clock& clock, Random& random);

    // Reconfigure bounds (config reload); the attempt count is kept.
    void setBounds(Millis initial, Millis max);

    // Retry n (0-based since the last reset) waits uniform(initial, ceiling_n) with
    // ceiling_n = min(max, initial * 2^n): the first retry waits `initial`, later ones
    // spread over a growing window so a fleet does not reconnect in lock-step.
    Millis nextDelay();
    // The token is wrong: wait the cap, every time. Does not advance the attempt count.
    Millis unauthorizedDelay() const { return max_; }

    void onConnected();     // a connection is up (WebSocket upgrade succeeded)
    void onDisconnected();  // it went down; resets the backoff if it lasted >= 60 s
    void reset() { attempt_ = 0; }
    int attempt() const { return attempt_; }

  private:
    Millis initial_, max_;
    Clock& clock_;
    Random& random_;
    int attempt_ = 0;
    bool connected_ = false;
    SteadyTime connectedAt_{};
};

}  // namespace rra::proxy
