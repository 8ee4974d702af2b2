// Bounded queue of unacknowledged telemetry.
#include "proxy/telemetry_queue.hpp"

#include <algorithm>

namespace rra::proxy {

TelemetryQueue::TelemetryQueue(size_t capacity) : capacity_(std::max<size_t>(capacity, 1)) {}

size_t TelemetryQueue::trim() {
    size_t n = 0;
    while (items_.size() > capacity_) {
        items_.pop_front();
        ++n;
    }
    dropped_ += n;
    return n;
}

size_t TelemetryQueue::push(TelemetryEvent ev) {
    items_.push_back(Item{std::move(ev), false});
    return trim();
}

bool TelemetryQueue::ack(const std::string& id) {
    auto it =
        std::find_if(items_.begin(), items_.end(), [&](const Item& i) { return i.ev.id == id; });
    if (it == items_.end())
        return false;
    items_.erase(it);
    return true;
}

std::vector<TelemetryEvent> TelemetryQueue::takeUnsent() {
    std::vector<TelemetryEvent> out;
    for (auto& i : items_) {
        if (i.sent)
            continue;
        i.sent = true;
        out.push_back(i.ev);
    }
    return out;
}

void TelemetryQueue::markAllUnsent() {
    for (auto& i : items_)
        i.sent = false;
}

size_t TelemetryQueue::setCapacity(size_t capacity) {
    capacity_ = std::max<size_t>(capacity, 1);
    return trim();
}

}  // namespace rra::proxy
