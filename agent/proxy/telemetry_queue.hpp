// Telemetry waiting for the proxy's ack: bounded (oldest dropped), acked by id, and
// resent in order with the same ids after a reconnect. Pure data structure, not
// thread-safe: ProxyClient guards it.
#pragma once

#include "common/events.hpp"

#include <cstddef>
#include <deque>
#include <string>
#include <vector>

namespace rra::proxy {

class TelemetryQueue {
  public:
    explicit TelemetryQueue(size_t capacity);

    // Appends; when full, drops the oldest first. Returns how many were dropped now.
    size_t push(TelemetryEvent ev);
    // Removes the event with this id; false when unknown (already acked or dropped).
    bool ack(const std::string& id);
    // Events not yet sent on the current connection, oldest first; marks them sent.
    std::vector<TelemetryEvent> takeUnsent();
    // A new connection: everything unacked must be sent again.
    void markAllUnsent();
    // Shrinking drops the oldest; returns how many.
    size_t setCapacity(size_t capacity);

    size_t size() const { return items_.size(); }
    size_t capacity() const { return capacity_; }
    size_t droppedTotal() const { return dropped_; }

  private:
    struct Item {
        TelemetryEvent ev;
        bool sent = false;
    };
    size_t trim();

    size_t capacity_;
    std::deque<Item> items_;
    size_t dropped_ = 0;
};

}  // namespace rra::proxy
