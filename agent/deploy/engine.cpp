// The deployment engine; see engine.hpp. One worker thread per component while it has
// work (none while idle); all component state is guarded by one mutex that is never held
// across a hook, a fetch or a sleep.
#include "deploy/engine.hpp"

#include "deploy/inflight_marker.hpp"
#include "deploy/selection.hpp"

#include <Poco/Logger.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

namespace rra::deploy {
namespace {

Poco::Logger& log() {
    return Poco::Logger::get("deploy");
}

std::string show(const std::optional<std::string>& tag) {
    return tag ? *tag : "(none)";
}

std::string who(const std::string& component, const std::string& tag) {
    return "component '" + component + "' tag " + tag;
}

// GitHub owner/repo names are case-insensitive, and the proxy's announcement filter
// compares them so: an announcement it let through must not be dropped here.
bool sameRepoName(const std::string& a, const std::string& b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

// Failed tags outlive the component's state (rule 6: never again in this process, even
// after a remove and re-add); a different repo is a different release history.
std::string failedKey(const config::ComponentConfig& cfg) {
    std::string repo = cfg.repo;
    std::transform(repo.begin(), repo.end(), repo.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    return cfg.name + "\n" + repo;
}

std::string hookError(const plugins::HookResult& r, const char* hook) {
    std::string msg = std::string(hook) + ": ";
    if (r.timedOut)
        return msg + "timed out; deployer retired" +
               (r.message.empty() ? "" : " (" + r.message + ")");
    if (r.message.empty())
        return msg + "failed with status " + std::to_string(r.status);
    return msg + r.message;
}

struct PendingConfirm {
    std::string tag;
    std::optional<std::string> fromTag;
    uint64_t durationMs = 0;
};

struct Comp {
    config::ComponentConfig cfg;
    std::shared_ptr<plugins::Deployer> deployer;
    // The instance the worker is calling now: a reload may have replaced `deployer`
    // meanwhile, and shutdown must cancel the one that is busy (rule 10).
    std::shared_ptr<plugins::Deployer> active;
    size_t order = 0;

    bool needsDiscovery = true;
    bool initialDiscovery = true;  // markers and verdicts are read on the first success only
    bool discovered = false;
    std::optional<std::string> current;
    TagSet candidates;
    // Every SemVer tag announced for this repo, whatever its intake (bounded by distinct
    // tags): candidates are rebuilt from it when a pin goes or an asset is fixed, and a
    // tag not in it is "a new release" that ends the degraded state (rule 8).
    TagSet announced;
    TagSet failed;
    std::optional<std::string> inFlight;
    std::string phase = "discovering";
    bool degraded = false;
    TagSet deferred;  // transient download failures: skipped until the next announcement
    bool awaitingRestart = false;
    std::optional<PendingConfirm> pendingConfirm;

    bool removed = false;
    bool running = false;
    std::thread thread;
};
using CompPtr = std::shared_ptr<Comp>;

struct Failure {
    ApplyPhase phase;
    std::string error;
    bool touched = false;    // the system may be changed: roll back
    bool badRelease = true;  // the tag joins the failed set
    bool retired = false;    // the deployer missed a deadline: no more calls
};

}  // namespace

struct Engine::Impl : std::enable_shared_from_this<Engine::Impl> {
    Impl(EngineOptions o, Fetcher& f, TelemetrySink& t, Clock& c, Random& r)
        : opts(std::move(o)),
          fetcher(f),
          sink(t),
          clock(c),
          random(r),
          markers(opts.runtimeDir),
          slotLimit(std::max(1, opts.maxParallelDownloads)),
          slots(slotLimit) {}

    EngineOptions opts;
    Fetcher& fetcher;
    TelemetrySink& sink;
    Clock& clock;
    Random& random;
    MarkerStore markers;

    mutable std::mutex m;
    std::condition_variable cv;  // worker exits, discoveries
    std::map<std::string, CompPtr> comps;
    std::map<std::string, TagSet> failedByKey;  // failedKey() -> tags, for the process lifetime
    std::vector<CompPtr> retired;               // removed while their worker still runs
    std::vector<std::thread> zombies;
    bool healthy = false;
    bool stopping = false;
    CancelToken stop;
    std::function<void()> listener;
    std::mutex listenerMutex;  // held while the listener runs (see setStatusListener)

    std::mutex slotMutex;
    std::condition_variable slotCv;
    int slotLimit;
    int slots;  // free slots; below zero after a reload lowered the limit mid-download

    // ---- helpers ------------------------------------------------------------------

    void notifyListener() {
        std::lock_guard<std::mutex> lk(listenerMutex);
        if (listener)
            listener();
    }

    void setPhase(Comp& c, const std::string& phase) {
        {
            std::lock_guard<std::mutex> lk(m);
            c.phase = phase;
        }
        notifyListener();
    }

    // Caller holds m.
    void ensureWorker(const CompPtr& c) {
        if (c->running || stopping)
            return;
        if (c->thread.joinable())
            zombies.push_back(std::move(c->thread));
        auto self = shared_from_this();
        try {
            c->thread = std::thread([self, c] { self->run(c); });
        } catch (const std::exception& e) {
            // No thread (std::system_error): not "running", so the next announcement or
            // reload tries again instead of waiting for a worker that never existed.
            log().error("component '" + c->cfg.name + "': cannot start its worker: " + e.what());
            return;
        }
        c->running = true;  // the worker blocks on m (held by the caller) until it sees this
    }

    void reapZombies() {
        std::vector<std::thread> done;
        {
            std::lock_guard<std::mutex> lk(m);
            done.swap(zombies);
            for (auto it = retired.begin(); it != retired.end();) {
                if ((*it)->running) {
                    ++it;
                    continue;
                }
                if ((*it)->thread.joinable())
                    done.push_back(std::move((*it)->thread));
                it = retired.erase(it);
            }
        }
        for (auto& t : done)
            t.join();
    }

    TelemetryEvent event(TelemetryKind kind, const std::string& component, const std::string& tag,
                         const std::optional<std::string>& from) {
        TelemetryEvent e;
        e.component = component;
        e.tag = tag;
        e.fromTag = from;
        e.event = kind;
        e.at = clock.wallNow();
        return e;
    }

    int64_t since(SteadyTime start) const {
        return std::chrono::duration_cast<Millis>(clock.now() - start).count();
    }

    void writeMarker(const InflightMarker& mk) {
        if (auto st = markers.write(mk); !st)
            log().error(who(mk.component, mk.tag) + ": in-flight marker: " + st.error().message());
    }
    void removeMarker(const std::string& component, const std::string& tag) {
        if (auto st = markers.remove(component); !st)
            log().error(who(component, tag) + ": in-flight marker: " + st.error().message());
    }

    bool acquireSlot() {
        std::unique_lock<std::mutex> lk(slotMutex);
        slotCv.wait(lk, [this] { return slots > 0 || stop.cancelled(); });
        if (stop.cancelled())
            return false;
        --slots;
        return true;
    }
    void releaseSlot() {
        {
            std::lock_guard<std::mutex> lk(slotMutex);
            ++slots;
        }
        slotCv.notify_one();
    }

    // Caller holds m.
    void markFailed(Comp& c, const std::string& tag) {
        c.failed.insert(tag);
        c.candidates.erase(tag);
        failedByKey[failedKey(c.cfg)].insert(tag);
    }

    // Caller holds m. Candidates again from every tag announced (rules 2, 12): after a pin
    // is removed or an asset fixed, older announcements may be eligible again. Before
    // discovery nothing is "not newer"; discovery prunes.
    void rebuildCandidates(Comp& c) {
        bool known = c.discovered && !c.needsDiscovery;
        for (const auto& e : c.announced) {
            if (c.failed.contains(e.tag) || (e.version.isPrerelease() && !c.cfg.allowPrerelease))
                continue;
            if (known && !isNewer(e.tag, c.current))
                continue;
            c.candidates.insert(e.tag);
        }
    }

    // Caller holds m. What the worker should apply next, if anything.
    std::optional<Target> pick(const Comp& c) const {
        if (c.degraded || c.awaitingRestart || c.pendingConfirm || c.removed || !c.discovered)
            return std::nullopt;
        return nextTarget(SelectionView{c.current, c.cfg.pin, c.cfg.allowPrerelease, c.candidates,
                                        c.failed, c.deferred});
    }

    // ---- worker -------------------------------------------------------------------

    void run(CompPtr c) {
        // One hold of m from the loop's last check to running = false: an announcement in
        // between would otherwise find the worker "running" and be left unserved.
        std::unique_lock<std::mutex> lk(m, std::defer_lock);
        try {
            work(c, lk);
        } catch (const std::exception& e) {
            fault(c, lk, e.what());
        } catch (...) {
            fault(c, lk, "unknown exception");
        }
        if (stopping && c->phase != "pending_restart")
            c->phase = "stopped";
        else if (c->degraded)
            c->phase = "degraded";
        else if (c->awaitingRestart)
            c->phase = "pending_restart";
        else if (c->pendingConfirm)
            c->phase = "awaiting_health";
        else
            c->phase = "idle";
        c->running = false;
        cv.notify_all();
        lk.unlock();
        notifyListener();
    }

    // An exception that escaped a step (its state is unknown): the component is left
    // alone until a new release or a restart, like after a failed rollback (rule 8); the
    // in-flight marker, if any, stays for the next run.
    void fault(const CompPtr& c, std::unique_lock<std::mutex>& lk, const std::string& what) {
        if (!lk.owns_lock())
            lk.lock();
        log().error("component '" + c->cfg.name + "': internal error: " + what +
                    "; component degraded");
        c->degraded = true;
        c->needsDiscovery = false;  // leaving the degraded state discovers again
        c->inFlight.reset();
        c->active.reset();
    }

    // Returns with lk held.
    void work(const CompPtr& c, std::unique_lock<std::mutex>& lk) {
        lk.lock();
        while (!stopping && !c->removed) {
            if (c->needsDiscovery) {
                lk.unlock();
                discover(c);
                lk.lock();
                c->active.reset();
                continue;
            }
            if (c->pendingConfirm && healthy && !c->degraded) {
                PendingConfirm pc = *c->pendingConfirm;
                c->pendingConfirm.reset();
                lk.unlock();
                confirm(c, pc);
                lk.lock();
                c->active.reset();
                continue;
            }
            auto target = pick(*c);
            if (!target)
                break;
            if (double jitter = opts.applyJitterS; jitter > 0) {
                c->phase = "waiting";
                lk.unlock();
                notifyListener();
                auto delay = Millis(static_cast<int64_t>(random.uniform(0, jitter) * 1000));
                bool slept = clock.sleepFor(delay, &stop);
                lk.lock();
                if (!slept || stopping || c->removed)
                    break;
                target = pick(*c);  // a newer release may have arrived meanwhile
                if (!target)
                    break;
            }
            c->inFlight = target->tag;
            auto cfg = c->cfg;
            auto deployer = c->deployer;
            c->active = deployer;
            auto from = c->current;
            lk.unlock();
            apply(c, cfg, deployer, *target, from);
            lk.lock();
            c->active.reset();
            c->inFlight.reset();
        }
    }

    // Rules 1 and 11, and verdicts handed across a restart.
    void discover(const CompPtr& c) {
        std::shared_ptr<plugins::Deployer> d;
        config::ComponentConfig cfg;
        bool initial;
        {
            std::lock_guard<std::mutex> lk(m);
            d = c->deployer;
            c->active = d;
            cfg = c->cfg;
            initial = c->initialDiscovery;
            c->phase = "discovering";
        }
        notifyListener();
        auto found = d->degraded()
                         ? Expected<plugins::Discovery>(fail(
                               ErrorCode::kUnsupported, "deployer retired after a missed deadline"))
                         : d->discover(opts.discoverDeadline);
        if (!found) {
            log().error("component '" + cfg.name +
                        "': discovery failed: " + found.error().message() +
                        "; not deployed until a new release is announced");
            std::lock_guard<std::mutex> lk(m);
            c->needsDiscovery = false;
            c->degraded = true;
            cv.notify_all();
            return;
        }
        std::optional<std::string> current = found->tag;
        std::optional<std::string> failedTag;
        bool degraded = false;
        std::optional<PendingConfirm> pending;
        if (initial) {
            auto marker = markers.read(cfg.name);
            if (!marker)
                log().error("component '" + cfg.name + "': " + marker.error().message());
            if (found->verdict != RRA_VERDICT_NONE) {
                if (marker && *marker)
                    removeMarker(cfg.name, (*marker)->tag);
                handleVerdict(cfg.name, *found, failedTag, pending);
            } else if (marker && *marker) {
                recoverFromMarker(cfg, d, **marker, current, failedTag, degraded);
            }
        }
        {
            std::lock_guard<std::mutex> lk(m);
            c->current = current;
            c->discovered = true;
            c->needsDiscovery = false;
            c->initialDiscovery = false;
            if (failedTag)
                markFailed(*c, *failedTag);
            if (degraded)
                c->degraded = true;
            if (pending)
                c->pendingConfirm = pending;
            if (!c->cfg.pin)
                c->candidates.eraseNotNewerThan(current);
            c->phase = "idle";
            cv.notify_all();
        }
        log().information("component '" + cfg.name + "': current release " + show(current));
        notifyListener();
    }

    void handleVerdict(const std::string& name, const plugins::Discovery& found,
                       std::optional<std::string>& failedTag,
                       std::optional<PendingConfirm>& pending) {
        switch (found.verdict) {
            case RRA_VERDICT_SUCCEEDED: {
                log().information(who(name, found.verdictTag) + ": applied by the previous run");
                auto e = event(TelemetryKind::kApplySucceeded, name, found.verdictTag,
                               found.verdictFromTag);
                e.durationMs = static_cast<int64_t>(found.verdictDurationMs);
                sink.send(std::move(e));
                break;
            }
            case RRA_VERDICT_FAILED: {
                log().error(who(name, found.verdictTag) +
                            ": failed after restart: " + found.verdictError);
                failedTag = found.verdictTag;
                auto e = event(TelemetryKind::kApplyFailed, name, found.verdictTag,
                               found.verdictFromTag);
                e.durationMs = static_cast<int64_t>(found.verdictDurationMs);
                e.phase = ApplyPhase::kVerify;
                e.error = found.verdictError.empty() ? "failed after restart" : found.verdictError;
                e.rolledBackTo = found.tag;
                e.rollbackOk = found.tag == found.verdictFromTag;
                sink.send(std::move(e));
                break;
            }
            case RRA_VERDICT_PENDING:
                log().information(who(name, found.verdictTag) +
                                  ": on probation until the agent is healthy");
                pending =
                    PendingConfirm{found.verdictTag, found.verdictFromTag, found.verdictDurationMs};
                break;
            default:
                break;
        }
    }

    void recoverFromMarker(const config::ComponentConfig& cfg,
                           const std::shared_ptr<plugins::Deployer>& d, const InflightMarker& mk,
                           std::optional<std::string>& current,
                           std::optional<std::string>& failedTag, bool& degraded) {
        const std::string what =
            mk.interrupted ? "agent stopped during apply" : "agent died during apply";
        log().warning(who(cfg.name, mk.tag) + ": " + what + " (phase " + toString(mk.phase) +
                      "); discovered " + show(current));
        bool ok = true;
        std::string error = what;
        if (mk.recovering) {
            // The run before this one died rolling this apply back: rolling back again
            // could crash-loop the agent (rule 11). Leave the component to the operator.
            ok = false;
            degraded = true;
            error += "; the agent died while rolling back; not rolled back again";
            log().error(who(cfg.name, mk.tag) + ": " + error + "; component degraded");
        } else if (!sameTag(current, mk.fromTag)) {
            InflightMarker again = mk;
            again.recovering = true;
            writeMarker(again);
            auto r = d->rollback(mk.fromTag, mk.tag, opts.rollbackDeadline);
            if (r.ok()) {
                current = mk.fromTag;
            } else {
                ok = false;
                degraded = true;
                error += "; " + hookError(r, "rollback");
                log().error(who(cfg.name, mk.tag) + ": rollback to " + show(mk.fromTag) +
                            " failed: " + r.message + "; component degraded");
                if (!d->degraded())
                    if (auto again = d->discover(opts.discoverDeadline))
                        current = again->tag;
            }
        }
        if (!mk.interrupted || mk.recovering)
            failedTag = mk.tag;
        auto e = event(TelemetryKind::kApplyFailed, cfg.name, mk.tag, mk.fromTag);
        auto nowMs = std::chrono::duration_cast<Millis>(clock.wallNow().time_since_epoch()).count();
        e.durationMs = mk.startedAtMs > 0 && nowMs > mk.startedAtMs ? nowMs - mk.startedAtMs : 0;
        e.phase = mk.phase;
        e.error = error;
        e.rolledBackTo = current;
        e.rollbackOk = ok;
        sink.send(std::move(e));
        removeMarker(cfg.name, mk.tag);
    }

    void confirm(const CompPtr& c, const PendingConfirm& pc) {
        std::shared_ptr<plugins::Deployer> d;
        std::string name;
        {
            std::lock_guard<std::mutex> lk(m);
            d = c->deployer;
            c->active = d;
            name = c->cfg.name;
            c->phase = "confirm";
        }
        notifyListener();
        auto start = clock.now();
        plugins::HookResult r;  // a deployer without confirm commits on its own
        if (d->supportsConfirm())
            r = d->confirm(pc.tag, opts.confirmDeadline);
        if (r.ok()) {
            log().information(who(name, pc.tag) + ": confirmed");
            auto e = event(TelemetryKind::kApplySucceeded, name, pc.tag, pc.fromTag);
            e.durationMs = static_cast<int64_t>(pc.durationMs) + since(start);
            sink.send(std::move(e));
            std::lock_guard<std::mutex> lk(m);
            c->current = pc.tag;
            c->candidates.eraseNotNewerThan(c->current);
            return;
        }
        Failure f{ApplyPhase::kVerify, hookError(r, "confirm"), true, true, r.timedOut};
        finishFailure(c, name, d, pc.tag, pc.fromTag, start, f);
    }

    // Where an attempt is, for the handler of an unexpected exception.
    struct Attempt {
        ApplyPhase phase = ApplyPhase::kDownload;
        bool closed = false;  // the outcome is being handled (telemetry, sets, marker)
    };

    // Rules 5, 6, 8: one attempt at `target`. An exception (bad_alloc, a thread that
    // cannot be created) must not terminate the agent: it fails the step like a hook
    // error would, with a rollback once the system may have been touched.
    void apply(const CompPtr& c, const config::ComponentConfig& cfg,
               const std::shared_ptr<plugins::Deployer>& d, const Target& target,
               const std::optional<std::string>& from) {
        auto start = clock.now();
        Attempt at;
        std::string fault;
        try {
            attempt(c, cfg, d, target, from, start, at);
            return;
        } catch (const std::exception& e) {
            fault = e.what();
        } catch (...) {
            fault = "unknown exception";
        }
        log().error(who(cfg.name, target.tag) + ": internal error in " + toString(at.phase) + ": " +
                    fault);
        if (at.closed)
            throw std::runtime_error(fault);  // the worker's own handler degrades the component
        at.closed = true;
        Failure f{at.phase, "internal error: " + fault, at.phase != ApplyPhase::kDownload, true,
                  false};
        finishFailure(c, cfg.name, d, target.tag, from, start, f);
    }

    void attempt(const CompPtr& c, const config::ComponentConfig& cfg,
                 const std::shared_ptr<plugins::Deployer>& d, const Target& target,
                 const std::optional<std::string>& from, SteadyTime start, Attempt& at) {
        const std::string& tag = target.tag;
        InflightMarker mk{
            cfg.name,
            tag,
            from,
            ApplyPhase::kDownload,
            std::chrono::duration_cast<Millis>(clock.wallNow().time_since_epoch()).count(),
            false};
        log().information(who(cfg.name, tag) + ": applying (from " + show(from) +
                          (target.isDowngrade ? ", downgrade to pin" : "") + ")");
        writeMarker(mk);
        setPhase(*c, "download");
        sink.send(event(TelemetryKind::kApplyStarted, cfg.name, tag, from));

        Expected<Artifact> art = fail(ErrorCode::kCancelled, "agent stopping");
        if (acquireSlot()) {
            art = fetcher.fetch(cfg, tag, stop);
            releaseSlot();
        }
        if (!art) {
            Failure f{ApplyPhase::kDownload, art.error().message(), false,
                      isBadRelease(art.error().code()), false};
            at.closed = true;
            finishFailure(c, cfg.name, d, tag, from, start, f);
            return;
        }

        mk.phase = at.phase = ApplyPhase::kInstall;
        writeMarker(mk);
        setPhase(*c, "install");
        auto r = d->degraded()
                     ? plugins::HookResult{RRA_ERROR, "deployer retired", true}
                     : d->install(tag, art->path, from, target.isDowngrade, opts.installDeadline);
        if (!r.ok() && stop.cancelled()) {
            at.closed = true;
            return interrupted(c, cfg, d, tag, *art, mk);
        }
        if (r.status == RRA_PENDING_RESTART && !r.timedOut) {
            at.closed = true;
            log().information(who(cfg.name, tag) + ": installed; outcome known after restart");
            removeMarker(cfg.name, tag);
            fetcher.discard(cfg, tag, *art);
            std::lock_guard<std::mutex> lk(m);
            c->awaitingRestart = true;
            return;
        }
        if (!r.ok()) {
            fetcher.discard(cfg, tag, *art);
            bool refused = r.status == RRA_REFUSED && !r.timedOut;
            Failure f{ApplyPhase::kInstall, hookError(r, "install"), !refused, true, r.timedOut};
            at.closed = true;
            finishFailure(c, cfg.name, d, tag, from, start, f);
            return;
        }

        mk.phase = at.phase = ApplyPhase::kVerify;
        writeMarker(mk);
        setPhase(*c, "verify");
        auto v = d->verify(tag, Millis(static_cast<int64_t>(cfg.verifyTimeoutS) * 1000));
        if (!v.ok() && stop.cancelled()) {
            at.closed = true;
            return interrupted(c, cfg, d, tag, *art, mk);
        }
        fetcher.discard(cfg, tag, *art);
        if (!v.ok()) {
            Failure f{ApplyPhase::kVerify, hookError(v, "verify"), true, true, v.timedOut};
            at.closed = true;
            finishFailure(c, cfg.name, d, tag, from, start, f);
            return;
        }
        at.closed = true;
        removeMarker(cfg.name, tag);
        log().information(who(cfg.name, tag) + ": applied");
        auto e = event(TelemetryKind::kApplySucceeded, cfg.name, tag, from);
        e.durationMs = since(start);
        {
            std::lock_guard<std::mutex> lk(m);
            c->current = tag;
            c->candidates.eraseNotNewerThan(c->current);
        }
        sink.send(std::move(e));
    }

    // Rule 10: install/verify cut short by shutdown. The next run rolls back and reports.
    void interrupted(const CompPtr& c, const config::ComponentConfig& cfg,
                     const std::shared_ptr<plugins::Deployer>&, const std::string& tag,
                     const Artifact& art, InflightMarker mk) {
        log().warning(who(cfg.name, tag) + ": " + toString(mk.phase) +
                      " interrupted by shutdown; the next run rolls back");
        mk.interrupted = true;
        writeMarker(mk);
        fetcher.discard(cfg, tag, art);
        std::lock_guard<std::mutex> lk(m);
        c->phase = "stopped";
    }

    // Rules 6, 7, 8: roll back when touched, report, update the candidate/failed sets.
    // The in-flight marker goes only once the system is back on `from` (rule 11): a crash
    // during the rollback, a failed rollback or a retired deployer leave it, so the next
    // run (with a fresh plugin instance) repairs the component and reports the tag.
    void finishFailure(const CompPtr& c, const std::string& name,
                       const std::shared_ptr<plugins::Deployer>& d, const std::string& tag,
                       const std::optional<std::string>& from, SteadyTime start, Failure f) {
        std::optional<std::string> rolledBackTo = from;
        bool rollbackOk = true;
        std::string error = f.error;
        if (f.touched) {
            if (f.retired || d->degraded()) {
                rollbackOk = false;
                error += "; rollback impossible: deployer retired";
            } else {
                setPhase(*c, "rollback");
                auto r = d->rollback(from, tag, opts.rollbackDeadline);
                if (!r.ok()) {
                    rollbackOk = false;
                    error += "; " + hookError(r, "rollback");
                    if (!d->degraded())
                        if (auto again = d->discover(opts.discoverDeadline))
                            rolledBackTo = again->tag;
                }
            }
        }
        if (rollbackOk)
            removeMarker(name, tag);
        if (!rollbackOk)
            log().error(who(name, tag) + ": " + toString(f.phase) + " failed and rollback to " +
                        show(from) + " failed: " + error + "; component degraded");
        else
            log().warning(who(name, tag) + ": " + toString(f.phase) + " failed: " + error +
                          (f.touched ? "; rolled back to " + show(from) : "") +
                          (f.badRelease ? "" : "; will retry at the next announcement"));
        auto e = event(TelemetryKind::kApplyFailed, name, tag, from);
        e.durationMs = since(start);
        e.phase = f.phase;
        e.error = error;
        e.rolledBackTo = rolledBackTo;
        e.rollbackOk = rollbackOk;
        {
            std::lock_guard<std::mutex> lk(m);
            c->current = rolledBackTo;
            if (f.badRelease) {
                markFailed(*c, tag);
            } else {
                c->deferred.insert(tag);
            }
            if (!rollbackOk)
                c->degraded = true;
        }
        sink.send(std::move(e));
    }
};

// ---- public API -----------------------------------------------------------------------

Engine::Engine(EngineOptions options, Fetcher& fetcher, TelemetrySink& telemetry, Clock& clock,
               Random& random)
    : impl_(std::make_shared<Impl>(std::move(options), fetcher, telemetry, clock, random)) {}

Engine::~Engine() {
    setStatusListener({});  // its owner is going away with us
    shutdown(Millis(10'000));
    std::vector<std::thread> all;
    {
        std::lock_guard<std::mutex> lk(impl_->m);
        for (auto& [name, c] : impl_->comps)
            if (c->thread.joinable())
                all.push_back(std::move(c->thread));
        for (auto& c : impl_->retired)
            if (c->thread.joinable())
                all.push_back(std::move(c->thread));
        for (auto& t : impl_->zombies)
            all.push_back(std::move(t));
        impl_->zombies.clear();
    }
    for (auto& t : all)
        t.join();
}

void Engine::setComponents(std::vector<ManagedComponent> components) {
    auto& I = *impl_;
    {
        std::lock_guard<std::mutex> lk(I.m);
        std::set<std::string> names;
        size_t order = 0;
        for (auto& [cfg, deployer] : components) {
            names.insert(cfg.name);
            auto it = I.comps.find(cfg.name);
            CompPtr c;
            if (it == I.comps.end()) {
                auto r = std::find_if(I.retired.begin(), I.retired.end(), [&](const CompPtr& x) {
                    return x->cfg.name == cfg.name && x->running;
                });
                if (r != I.retired.end()) {
                    // Re-added while its last apply still runs: keep that worker's state so
                    // there is never a second apply in flight for this component.
                    c = *r;
                    I.retired.erase(r);
                    c->removed = false;
                    log().information("component '" + cfg.name + "': managed again");
                } else {
                    c = std::make_shared<Comp>();
                    c->cfg = cfg;
                    c->deployer = deployer;
                    c->failed = I.failedByKey[failedKey(cfg)];
                    log().information("component '" + cfg.name + "': now managed (" + cfg.type +
                                      ", " + cfg.repo + ")");
                }
                I.comps[cfg.name] = c;
            } else {
                c = it->second;
            }
            bool rebuild = false;
            if (!sameRepoName(c->cfg.repo, cfg.repo)) {
                // Another repo is another release history: its tags mean nothing here.
                log().information("component '" + cfg.name + "': repo changed to " + cfg.repo +
                                  "; discovering again");
                c->candidates.clear();
                c->announced.clear();
                c->failed = I.failedByKey[failedKey(cfg)];
                c->degraded = false;
                c->deferred.clear();
                c->pendingConfirm.reset();
                c->needsDiscovery = true;
            } else if (c->cfg.type != cfg.type || c->cfg.asset != cfg.asset) {
                // Likely the fix for releases that failed (asset not found, refused): they
                // are eligible again, without waiting for a new release.
                log().information("component '" + cfg.name +
                                  "': type or asset changed; failed releases may be tried "
                                  "again; discovering again");
                c->failed.clear();
                I.failedByKey.erase(failedKey(c->cfg));
                c->degraded = false;
                c->deferred.clear();
                c->pendingConfirm.reset();
                c->needsDiscovery = true;
                rebuild = true;
            }
            if (c->cfg.pin != cfg.pin) {
                log().information("component '" + cfg.name + "': pin " + show(c->cfg.pin) + " -> " +
                                  show(cfg.pin));
                c->deferred.clear();
                rebuild = rebuild || !cfg.pin;
            }
            if (cfg.allowPrerelease && !c->cfg.allowPrerelease)
                rebuild = true;
            if (c->deployer != deployer) {
                if (c->degraded && !deployer->degraded()) {
                    c->degraded = false;
                    c->needsDiscovery = true;
                }
                c->deployer = deployer;
            }
            c->cfg = cfg;
            c->order = order++;
            if (rebuild) {
                I.rebuildCandidates(*c);
                if (!cfg.pin && c->discovered && !c->needsDiscovery)
                    c->candidates.eraseNotNewerThan(c->current);
            }
            I.ensureWorker(c);
        }
        for (auto it = I.comps.begin(); it != I.comps.end();) {
            if (names.count(it->first)) {
                ++it;
                continue;
            }
            log().information("component '" + it->first + "': no longer managed");
            it->second->removed = true;
            I.retired.push_back(it->second);
            it = I.comps.erase(it);
        }
    }
    I.reapZombies();
    I.notifyListener();
}

void Engine::announce(const std::vector<Announcement>& batch) {
    auto& I = *impl_;
    bool changed = false;
    {
        std::lock_guard<std::mutex> lk(I.m);
        std::set<Comp*> touched;
        for (const auto& a : batch) {
            auto it = I.comps.find(a.component);
            if (it == I.comps.end()) {
                log().warning("announcement for unmanaged component '" + a.component + "' tag " +
                              a.tag + " ignored");
                continue;
            }
            const CompPtr& c = it->second;
            if (!a.repo.empty() && !sameRepoName(a.repo, c->cfg.repo)) {
                log().warning(who(a.component, a.tag) + ": announced for repo '" + a.repo +
                              "', configured '" + c->cfg.repo + "': ignored");
                continue;
            }
            touched.insert(c.get());
            // Before the intake: tags that are not taken now (older, pre-release) may be
            // eligible after a reload.
            bool neverAnnounced = c->announced.insert(a.tag);
            IntakeView view{c->current,    c->discovered, c->cfg.allowPrerelease,
                            c->candidates, c->failed,     c->inFlight};
            Intake in = classifyAnnouncement(a.tag, view);
            if (in == Intake::kNotSemVer) {
                log().warning(who(a.component, a.tag) + ": not a SemVer tag: ignored");
                continue;
            }
            if (in != Intake::kAccepted) {
                if (log().debug())
                    log().debug(who(a.component, a.tag) + ": ignored (" + toString(in) + ")");
                continue;
            }
            c->candidates.insert(a.tag);
            changed = true;
            if (c->cfg.pin && log().debug())
                log().debug(who(a.component, a.tag) + ": remembered; pinned to " + *c->cfg.pin);
            if (c->degraded && neverAnnounced && !c->deployer->degraded()) {
                // Rule 8: a new release is the operator's way out of a degraded state; a
                // re-sync repeating known tags is not one.
                log().information(who(a.component, a.tag) +
                                  ": new release; leaving degraded state");
                c->degraded = false;
                c->needsDiscovery = true;
            }
        }
        for (auto& [name, c] : I.comps) {
            if (!touched.count(c.get()))
                continue;
            if (!c->deferred.empty())
                changed = true;
            c->deferred.clear();  // rule 6: transient failures are retried at the next announcement
            I.ensureWorker(c);
        }
    }
    I.reapZombies();
    if (changed)
        I.notifyListener();
}

void Engine::setOptions(const EngineOptions& options) {
    auto& I = *impl_;
    {
        std::lock_guard<std::mutex> lk(I.m);
        I.opts.applyJitterS = options.applyJitterS;
        I.opts.maxParallelDownloads = options.maxParallelDownloads;
    }
    {
        std::lock_guard<std::mutex> lk(I.slotMutex);
        int limit = std::max(1, options.maxParallelDownloads);
        I.slots += limit - I.slotLimit;
        I.slotLimit = limit;
    }
    I.slotCv.notify_all();
}

std::vector<ComponentReport> Engine::inventory() const {
    std::lock_guard<std::mutex> lk(impl_->m);
    std::vector<std::pair<size_t, ComponentReport>> out;
    for (const auto& [name, c] : impl_->comps)
        out.push_back(
            {c->order, ComponentReport{c->cfg.name, c->cfg.repo, c->cfg.type, c->current}});
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<ComponentReport> r;
    for (auto& p : out)
        r.push_back(std::move(p.second));
    return r;
}

bool Engine::waitDiscovered(Millis timeout) {
    std::unique_lock<std::mutex> lk(impl_->m);
    return impl_->cv.wait_for(lk, timeout, [this] {
        for (const auto& [name, c] : impl_->comps)
            if (c->needsDiscovery && c->running)
                return false;
        return true;
    });
}

void Engine::onHealthy() {
    auto& I = *impl_;
    {
        std::lock_guard<std::mutex> lk(I.m);
        if (I.healthy)
            return;
        I.healthy = true;
        for (auto& [name, c] : I.comps)
            if (c->pendingConfirm)
                I.ensureWorker(c);
    }
    I.reapZombies();
}

bool Engine::shutdown(Millis budget) {
    auto& I = *impl_;
    std::vector<std::shared_ptr<plugins::Deployer>> busy;
    {
        std::lock_guard<std::mutex> lk(I.m);
        if (!I.stopping)
            log().information("stopping: cancelling downloads and hooks");
        I.stopping = true;
        auto collect = [&](const CompPtr& c) {
            if (!c->running)
                return;
            busy.push_back(c->deployer);
            if (c->active && c->active != c->deployer)
                busy.push_back(c->active);
        };
        for (auto& [name, c] : I.comps)
            collect(c);
        for (auto& c : I.retired)
            collect(c);
    }
    I.stop.cancel();
    { std::lock_guard<std::mutex> lk(I.slotMutex); }
    I.slotCv.notify_all();
    for (auto& d : busy)
        d->cancel();
    bool done;
    {
        std::unique_lock<std::mutex> lk(I.m);
        done = I.cv.wait_for(lk, budget, [&] {
            for (const auto& [name, c] : I.comps)
                if (c->running)
                    return false;
            for (const auto& c : I.retired)
                if (c->running)
                    return false;
            return true;
        });
    }
    if (!done)
        log().error("stopping: a component is still busy after the shutdown budget");
    I.reapZombies();
    return done;
}

std::vector<Engine::ComponentStatus> Engine::status() const {
    std::lock_guard<std::mutex> lk(impl_->m);
    std::vector<std::pair<size_t, ComponentStatus>> out;
    for (const auto& [name, c] : impl_->comps) {
        ComponentStatus s;
        s.name = name;
        s.current = c->current;
        s.inFlight = c->inFlight;
        s.phase = c->phase;
        s.candidates = c->candidates.newestFirst();
        s.failed = c->failed.newestFirst();
        s.degraded = c->degraded;
        out.push_back({c->order, std::move(s)});
    }
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<ComponentStatus> r;
    for (auto& p : out)
        r.push_back(std::move(p.second));
    return r;
}

void Engine::setStatusListener(std::function<void()> listener) {
    std::lock_guard<std::mutex> lk(impl_->listenerMutex);
    impl_->listener = std::move(listener);
}

bool Engine::waitIdle(Millis timeout) {
    std::unique_lock<std::mutex> lk(impl_->m);
    return impl_->cv.wait_for(lk, timeout, [this] {
        for (const auto& [name, c] : impl_->comps)
            if (c->running)
                return false;
        for (const auto& c : impl_->retired)
            if (c->running)
                return false;
        return true;
    });
}

}  // namespace rra::deploy
