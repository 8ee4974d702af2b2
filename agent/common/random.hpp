// Randomness as a dependency so jitter is reproducible in tests.
#pragma once

#include <mutex>
#include <random>

namespace rra {

class Random {
  public:
    virtual ~Random() = default;
    // Uniform in [lo, hi].
    virtual double uniform(double lo, double hi) = 0;
};

class SystemRandom final : public Random {
  public:
    SystemRandom() : gen_(std::random_device{}()) {}
    explicit SystemRandom(uint64_t seed) : gen_(seed) {}
    double uniform(double lo, double hi) override {
        std::lock_guard<std::mutex> lk(m_);
        if (hi <= lo)
            return lo;
        return std::uniform_real_distribution<double>(lo, hi)(gen_);
    }

  private:
    std::mutex m_;
    std::mt19937_64 gen_;
};

// Always returns the same fraction of the range: 0 = low end, 1 = high end.
class FixedRandom final : public Random {
  public:
    explicit FixedRandom(double fraction) : f_(fraction) {}
    double uniform(double lo, double hi) override { return lo + (hi - lo) * f_; }

  private:
    double f_;
};

}  // namespace rra
