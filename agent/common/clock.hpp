// Time as a dependency: production code asks a Clock, tests pass a FakeClock whose sleeps
// advance virtual time instantly, so no test waits for a backoff.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace rra {

using SteadyTime = std::chrono::steady_clock::time_point;
using WallTime = std::chrono::system_clock::time_point;
using Millis = std::chrono::milliseconds;

// A flag a long operation polls; cancel() also wakes sleepers.
class CancelToken {
  public:
    void cancel() {
        {
            std::lock_guard<std::mutex> lk(m_);
            cancelled_ = true;
        }
        cv_.notify_all();
    }
    bool cancelled() const { return cancelled_.load(); }
    // Sleeps up to `d`; returns false when cancelled first.
    bool waitFor(Millis d) const {
        std::unique_lock<std::mutex> lk(m_);
        return !cv_.wait_for(lk, d, [this] { return cancelled_.load(); });
    }

  private:
    std::atomic<bool> cancelled_{false};
    mutable std::mutex m_;
    mutable std::condition_variable cv_;
};

class Clock {
  public:
    virtual ~Clock() = default;
    virtual SteadyTime now() const = 0;
    virtual WallTime wallNow() const = 0;
    // Sleeps for `d` or until `cancel` fires; returns false when cancelled.
    virtual bool sleepFor(Millis d, const CancelToken* cancel = nullptr) = 0;
};

class SystemClock final : public Clock {
  public:
    SteadyTime now() const override { return std::chrono::steady_clock::now(); }
    WallTime wallNow() const override { return std::chrono::system_clock::now(); }
    bool sleepFor(Millis d, const CancelToken* cancel = nullptr) override {
        if (cancel)
            return cancel->waitFor(d);
        std::this_thread::sleep_for(d);
        return true;
    }
    static SystemClock& instance() {
        static SystemClock c;
        return c;
    }
};

// Virtual time for tests: sleepFor() records the request and advances time at once.
class FakeClock final : public Clock {
  public:
    SteadyTime now() const override {
        std::lock_guard<std::mutex> lk(m_);
        return steady_;
    }
    WallTime wallNow() const override {
        std::lock_guard<std::mutex> lk(m_);
        return wall_;
    }
    bool sleepFor(Millis d, const CancelToken* cancel = nullptr) override {
        if (cancel && cancel->cancelled())
            return false;
        std::lock_guard<std::mutex> lk(m_);
        sleeps_.push_back(d);
        steady_ += d;
        wall_ += d;
        return true;
    }
    void advance(Millis d) {
        std::lock_guard<std::mutex> lk(m_);
        steady_ += d;
        wall_ += d;
    }
    void setWall(WallTime t) {
        std::lock_guard<std::mutex> lk(m_);
        wall_ = t;
    }
    std::vector<Millis> sleeps() const {
        std::lock_guard<std::mutex> lk(m_);
        return sleeps_;
    }

  private:
    mutable std::mutex m_;
    SteadyTime steady_{std::chrono::hours(1000)};
    WallTime wall_{std::chrono::seconds(1'800'000'000)};
    std::vector<Millis> sleeps_;
};

}  // namespace rra
