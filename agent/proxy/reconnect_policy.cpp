// Reconnect backoff arithmetic.
#include "proxy/reconnect_policy.hpp"

#include <algorithm>
#include <cmath>

namespace rra::proxy {

ReconnectPolicy::ReconnectPolicy(Millis initial, Millis max, Clock& clock, Random& random)
    : clock_(clock), random_(random) {
    setBounds(initial, max);
}

void ReconnectPolicy::setBounds(Millis initial, Millis max) {
    initial_ = std::max(initial, Millis(1));
    max_ = std::max(max, initial_);
}

Millis ReconnectPolicy::nextDelay() {
    // Doubling stops at the cap; 62 keeps the shift defined.
    double ceiling = static_cast<double>(initial_.count());
    for (int i = 0; i < attempt_ && ceiling < static_cast<double>(max_.count()) && i < 62; ++i)
        ceiling *= 2;
    ceiling = std::min(ceiling, static_cast<double>(max_.count()));
    double lo = static_cast<double>(initial_.count());
    double d = random_.uniform(lo, ceiling);
    d = std::clamp(d, lo, ceiling);
    ++attempt_;
    return Millis(static_cast<int64_t>(std::llround(d)));
}

void ReconnectPolicy::onConnected() {
    connected_ = true;
    connectedAt_ = clock_.now();
}

void ReconnectPolicy::onDisconnected() {
    if (connected_ && clock_.now() - connectedAt_ >= kResetAfter)
        attempt_ = 0;
    connected_ = false;
}

}  // namespace rra::proxy
