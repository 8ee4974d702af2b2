// Scriptable in-process fakes for the deployment engine: a deployer that simulates the
// installed release and fails, refuses, hangs or blocks on demand; a fetcher with
// scripted errors and gates; a telemetry sink that records events in order.
#pragma once

#include "common/clock.hpp"
#include "deploy/engine.hpp"
#include "plugins/deployer.hpp"

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace rra::deploy::test {

// Blocks callers until opened; a held caller gives up when its cancel flag rises.
class Gate {
  public:
    void open() {
        {
            std::lock_guard<std::mutex> lk(m_);
            open_ = true;
        }
        cv_.notify_all();
    }
    // Returns false when cancelled (or after 20 s, so a broken test cannot hang forever).
    bool pass(const std::atomic<bool>& cancelled) {
        std::unique_lock<std::mutex> lk(m_);
        ++waiting_;
        cv_.notify_all();
        bool ok =
            cv_.wait_for(lk, std::chrono::seconds(20), [&] { return open_ || cancelled.load(); });
        --waiting_;
        return ok && open_;
    }
    // Wakes pass() callers so they re-check their cancel flag.
    void poke() { cv_.notify_all(); }
    bool waitForWaiters(int n, Millis timeout = Millis(5000)) {
        std::unique_lock<std::mutex> lk(m_);
        return cv_.wait_for(lk, timeout, [&] { return waiting_ >= n; });
    }

  private:
    std::mutex m_;
    std::condition_variable cv_;
    bool open_ = false;
    int waiting_ = 0;
};

class FakeDeployer final : public plugins::Deployer {
  public:
    FakeDeployer(std::string name, std::optional<std::string> installed)
        : name_(std::move(name)), installed_(std::move(installed)) {}

    // ---- script (set before the engine runs the component) ----
    std::set<std::string> installFails, installRefuses, installPending, installTimesOut;
    std::set<std::string> installThrows;  // like a host out of threads (std::system_error)
    bool discoverThrows = false;
    std::set<std::string> verifyFails, verifyTimesOut;
    bool rollbackFails = false;
    // Set: what a failed rollback leaves installed (default: the failed tag stays).
    std::optional<std::optional<std::string>> rollbackFailureLeaves;
    bool discoverFails = false;
    plugins::Discovery verdict;  // verdict fields returned by discover (tag is simulated)
    std::map<std::string, std::shared_ptr<Gate>> installGates, verifyGates;  // by tag
    std::string discoverHold;  // non-empty: discover waits for discoverGate
    std::shared_ptr<Gate> discoverGate;
    std::shared_ptr<Gate> rollbackGate;  // set: rollback waits for it
    bool hasConfirm = true;
    bool confirmFails = false;

    // ---- observations ----
    std::vector<std::string> calls() const {
        std::lock_guard<std::mutex> lk(m_);
        return calls_;
    }
    std::optional<std::string> installed() const {
        std::lock_guard<std::mutex> lk(m_);
        return installed_;
    }
    std::vector<Millis> verifyTimeouts() const {
        std::lock_guard<std::mutex> lk(m_);
        return verifyTimeouts_;
    }
    int maxConcurrentHooks() const { return maxInside_.load(); }
    bool cancelled() const { return cancelled_.load(); }

    // ---- Deployer ----
    const std::string& component() const override { return name_; }
    const std::string& type() const override { return type_; }

    Expected<plugins::Discovery> discover(Millis) override {
        Scope s(*this);
        record("discover");
        if (discoverGate && !discoverGate->pass(cancelled_))
            return fail(ErrorCode::kCancelled, "discover cancelled");
        if (discoverThrows)
            throw std::bad_alloc();
        if (discoverFails)
            return fail(ErrorCode::kIo, "cannot read install state");
        std::lock_guard<std::mutex> lk(m_);
        plugins::Discovery d = verdict;
        d.tag = installed_;
        return d;
    }

    plugins::HookResult install(const std::string& tag, const std::string& artifactPath,
                                const std::optional<std::string>& fromTag, bool isDowngrade,
                                Millis) override {
        Scope s(*this);
        record("install " + tag + " from " + (fromTag ? *fromTag : "-") +
               (isDowngrade ? " downgrade" : "") + (artifactPath.empty() ? " NOPATH" : ""));
        if (auto g = gate(installGates, tag); g && !g->pass(cancelled_))
            return {RRA_CANCELLED, "install cancelled", false};
        if (installThrows.count(tag))
            throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again),
                                    "thread");
        if (installRefuses.count(tag))
            return {RRA_REFUSED, "asset refused", false};
        set(tag);
        if (installTimesOut.count(tag)) {
            degraded_ = true;
            return {RRA_ERROR, "", true};
        }
        if (installFails.count(tag))
            return {RRA_ERROR, "install of " + tag + " broke", false};
        if (installPending.count(tag))
            return {RRA_PENDING_RESTART, "", false};
        return {};
    }

    plugins::HookResult verify(const std::string& tag, Millis timeout) override {
        Scope s(*this);
        record("verify " + tag);
        {
            std::lock_guard<std::mutex> lk(m_);
            verifyTimeouts_.push_back(timeout);
        }
        if (auto g = gate(verifyGates, tag); g && !g->pass(cancelled_))
            return {RRA_CANCELLED, "verify cancelled", false};
        if (verifyTimesOut.count(tag)) {
            degraded_ = true;
            return {RRA_ERROR, "", true};
        }
        if (verifyFails.count(tag))
            return {RRA_ERROR, tag + " unhealthy", false};
        return {};
    }

    plugins::HookResult rollback(const std::optional<std::string>& toTag,
                                 const std::string& failedTag, Millis) override {
        Scope s(*this);
        record("rollback " + (toTag ? *toTag : "-") + " failed " + failedTag);
        if (rollbackGate && !rollbackGate->pass(cancelled_))
            return {RRA_CANCELLED, "rollback cancelled", false};
        if (rollbackFails) {
            if (rollbackFailureLeaves)
                set(*rollbackFailureLeaves);
            return {RRA_ERROR, "rollback broke", false};
        }
        set(toTag);
        return {};
    }

    bool supportsConfirm() const override { return hasConfirm; }
    plugins::HookResult confirm(const std::string& tag, Millis) override {
        Scope s(*this);
        record("confirm " + tag);
        if (confirmFails)
            return {RRA_ERROR, "confirm broke", false};
        return {};
    }

    void cancel() override {
        cancelled_ = true;
        std::lock_guard<std::mutex> lk(m_);
        for (auto& [t, g] : installGates)
            g->poke();
        for (auto& [t, g] : verifyGates)
            g->poke();
        if (discoverGate)
            discoverGate->poke();
        if (rollbackGate)
            rollbackGate->poke();
    }
    bool degraded() const override { return degraded_.load(); }

  private:
    struct Scope {
        explicit Scope(FakeDeployer& d) : d_(d) {
            int now = ++d_.inside_;
            int prev = d_.maxInside_.load();
            while (now > prev && !d_.maxInside_.compare_exchange_weak(prev, now)) {
            }
        }
        ~Scope() { --d_.inside_; }
        FakeDeployer& d_;
    };
    void record(const std::string& c) {
        std::lock_guard<std::mutex> lk(m_);
        calls_.push_back(c);
    }
    void set(const std::optional<std::string>& tag) {
        std::lock_guard<std::mutex> lk(m_);
        installed_ = tag;
    }
    std::shared_ptr<Gate> gate(std::map<std::string, std::shared_ptr<Gate>>& gates,
                               const std::string& tag) {
        std::lock_guard<std::mutex> lk(m_);
        auto it = gates.find(tag);
        return it == gates.end() ? nullptr : it->second;
    }

    std::string name_;
    std::string type_ = "fake";
    mutable std::mutex m_;
    std::optional<std::string> installed_;
    std::vector<std::string> calls_;
    std::vector<Millis> verifyTimeouts_;
    std::atomic<bool> cancelled_{false};
    std::atomic<bool> degraded_{false};
    std::atomic<int> inside_{0}, maxInside_{0};
};

class FakeFetcher final : public Fetcher {
  public:
    explicit FakeFetcher(FakeClock* clock = nullptr) : clock_(clock) {}

    // Errors by "component/tag"; gates by "component/tag" (hold until opened or cancel).
    void failWith(const std::string& component, const std::string& tag, ErrorCode code,
                  int times = 1'000'000) {
        std::lock_guard<std::mutex> lk(m_);
        errors_[component + "/" + tag] = {code, times};
    }
    void holdOn(const std::string& component, const std::string& tag, std::shared_ptr<Gate> g) {
        std::lock_guard<std::mutex> lk(m_);
        gates_[component + "/" + tag] = std::move(g);
    }
    Millis advancePerFetch{0};  // FakeClock time one download takes

    Expected<Artifact> fetch(const config::ComponentConfig& c, const std::string& tag,
                             const CancelToken& cancel) override {
        int now = ++inside_;
        int prev = maxInside_.load();
        while (now > prev && !maxInside_.compare_exchange_weak(prev, now)) {
        }
        struct Leave {
            std::atomic<int>& n;
            ~Leave() { --n; }
        } leave{inside_};
        std::shared_ptr<Gate> g;
        {
            std::lock_guard<std::mutex> lk(m_);
            fetches_.push_back(c.name + "/" + tag);
            auto it = gates_.find(c.name + "/" + tag);
            if (it != gates_.end())
                g = it->second;
        }
        if (g) {
            // The gate watches a flag mirrored from the engine's cancel token.
            std::atomic<bool> flag{false};
            std::thread watcher([&] {
                while (!flag.load()) {
                    if (cancel.waitFor(Millis(5)) == false) {
                        flag = true;
                        g->poke();
                        return;
                    }
                }
            });
            bool ok = g->pass(flag);
            flag = true;
            watcher.join();
            if (!ok)
                return fail(ErrorCode::kCancelled, "download of " + tag + " cancelled");
        }
        if (clock_ && advancePerFetch.count())
            clock_->advance(advancePerFetch);
        {
            std::lock_guard<std::mutex> lk(m_);
            auto it = errors_.find(c.name + "/" + tag);
            if (it != errors_.end() && it->second.second > 0) {
                --it->second.second;
                return fail(it->second.first,
                            "release " + tag + " of " + c.repo + ": scripted error");
            }
        }
        return Artifact{"/tmp/fake/" + c.name + "-" + tag + ".tar.gz", 42, "00"};
    }
    void discard(const config::ComponentConfig& c, const std::string& tag,
                 const Artifact&) override {
        std::lock_guard<std::mutex> lk(m_);
        discards_.push_back(c.name + "/" + tag);
    }

    std::vector<std::string> fetches() const {
        std::lock_guard<std::mutex> lk(m_);
        return fetches_;
    }
    std::vector<std::string> discards() const {
        std::lock_guard<std::mutex> lk(m_);
        return discards_;
    }
    int maxConcurrent() const { return maxInside_.load(); }

  private:
    FakeClock* clock_;
    mutable std::mutex m_;
    std::map<std::string, std::pair<ErrorCode, int>> errors_;
    std::map<std::string, std::shared_ptr<Gate>> gates_;
    std::vector<std::string> fetches_, discards_;
    std::atomic<int> inside_{0}, maxInside_{0};
};

class RecordingSink final : public TelemetrySink {
  public:
    void send(TelemetryEvent e) override {
        std::lock_guard<std::mutex> lk(m_);
        events_.push_back(std::move(e));
    }
    std::vector<TelemetryEvent> events() const {
        std::lock_guard<std::mutex> lk(m_);
        return events_;
    }
    // Compact one-line form: "apply_failed web v4 from v1 install rb=v1 ok=1".
    static std::string line(const TelemetryEvent& e) {
        std::ostringstream os;
        os << toString(e.event) << " " << e.component << " " << e.tag << " from "
           << (e.fromTag ? *e.fromTag : "-");
        if (e.event == TelemetryKind::kApplyFailed) {
            os << " " << (e.phase ? toString(*e.phase) : "?")
               << " rb=" << (e.rolledBackTo ? *e.rolledBackTo : "-")
               << " ok=" << (e.rollbackOk ? (*e.rollbackOk ? "1" : "0") : "?");
        }
        return os.str();
    }
    std::vector<std::string> lines(const std::string& component = "") const {
        std::vector<std::string> out;
        for (const auto& e : events())
            if (component.empty() || e.component == component)
                out.push_back(line(e));
        return out;
    }

  private:
    mutable std::mutex m_;
    std::vector<TelemetryEvent> events_;
};

inline config::ComponentConfig component(const std::string& name,
                                         std::optional<std::string> pin = std::nullopt) {
    config::ComponentConfig c;
    c.name = name;
    c.type = "fake";
    c.repo = "acme/" + name;
    c.asset = name + "-{version}.tar.gz";
    c.verifyTimeoutS = 60;
    c.pin = std::move(pin);
    c.origin = "test";
    return c;
}

inline Announcement ann(const std::string& component, const std::string& tag) {
    return Announcement{component, "acme/" + component, tag, ""};
}

}  // namespace rra::deploy::test
