#include "app/status_format.hpp"

#include <Poco/Exception.h>
#include <Poco/JSON/Parser.h>

#include <sstream>

namespace rra::app {
namespace {

std::string text(const Poco::JSON::Object::Ptr& o, const std::string& key,
                 const std::string& none = "-") {
    if (!o || !o->has(key) || o->isNull(key))
        return none;
    return o->get(key).toString();
}

std::string list(const Poco::JSON::Object::Ptr& o, const std::string& key) {
    auto a = o ? o->getArray(key) : nullptr;
    if (!a || a->size() == 0)
        return "none";
    std::string out;
    for (size_t i = 0; i < a->size(); ++i)
        out += (i ? ", " : "") + a->get(i).toString();
    return out;
}

std::string quota(const Poco::JSON::Object::Ptr& gh, int64_t now) {
    if (!gh || !gh->has("remaining"))
        return "unknown (no API response yet)";
    std::string out = text(gh, "remaining");
    if (gh->has("limit"))
        out += " of " + text(gh, "limit");
    out += " requests left";
    if (gh->has("reset_epoch")) {
        const int64_t reset = gh->getValue<int64_t>("reset_epoch");
        out += reset > now ? ", resets in " + std::to_string(reset - now) + " s"
                           : ", reset time passed";
    }
    return out;
}

}  // namespace

Expected<StatusText> formatStatus(const std::string& json, const std::string& source,
                                  const std::function<bool(int)>& isAlive, int64_t nowEpoch) {
    Poco::JSON::Object::Ptr doc;
    try {
        doc = Poco::JSON::Parser().parse(json).extract<Poco::JSON::Object::Ptr>();
    } catch (const Poco::Exception& e) {
        return fail(ErrorCode::kProtocol, source + ": not a status document: " + e.displayText());
    } catch (const std::exception& e) {
        return fail(ErrorCode::kProtocol, source + ": not a status document: " + e.what());
    }
    if (!doc)
        return fail(ErrorCode::kProtocol, source + ": not a status document: not an object");
    if (doc->has("components") && !doc->isArray("components"))
        return fail(ErrorCode::kProtocol,
                    source + ": not a status document: components is not a list");

    StatusText out;
    std::ostringstream os;
    try {
        const int pid = doc->has("pid") ? doc->getValue<int>("pid") : 0;
        out.agentRunning = pid > 0 && isAlive(pid);
        os << "agent " << text(doc, "agent_id") << " (raspi-release-agent "
           << text(doc, "agent_version") << ", pid " << pid << ")";
        if (!out.agentRunning)
            os << ": NOT RUNNING, last status written before it stopped";
        os << "\n";
        os << "proxy: " << text(doc, "proxy", "unknown");
        if (doc->has("telemetry_pending"))
            os << ", " << text(doc, "telemetry_pending") << " telemetry event(s) unacknowledged";
        os << "\n";
        os << "github quota: " << quota(doc->getObject("github_quota"), nowEpoch) << "\n";
        auto comps = doc->getArray("components");
        const size_t n = comps ? comps->size() : 0;
        os << n << " component(s)\n";
        for (size_t i = 0; i < n; ++i) {
            auto c = comps->getObject(i);
            os << "  " << text(c, "name")
               << (c && c->optValue("degraded", false) ? " [DEGRADED]" : "") << "\n";
            os << "    current:    " << text(c, "current", "none") << "\n";
            const std::string inFlight = text(c, "in_flight", "");
            os << "    in flight:  "
               << (inFlight.empty() ? "none" : inFlight + " (" + text(c, "phase") + ")") << "\n";
            os << "    candidates: " << list(c, "candidates") << "\n";
            os << "    failed:     " << list(c, "failed") << "\n";
        }
    } catch (const Poco::Exception& e) {
        return fail(ErrorCode::kProtocol,
                    source + ": unexpected status content: " + e.displayText());
    }
    out.text = os.str();
    return out;
}

}  // namespace rra::app
