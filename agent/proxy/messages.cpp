// Proxy wire codec: JSON through Poco::JSON, every Poco exception caught here.
#include "proxy/messages.hpp"

#include <Poco/DateTimeFormatter.h>
#include <Poco/Dynamic/Var.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Timestamp.h>

#include <sstream>

namespace rra::proxy {
namespace {

using Poco::Dynamic::Var;
using Poco::JSON::Array;
using Poco::JSON::Object;

Object::Ptr newObject() {
    return new Object(Poco::JSON_PRESERVE_KEY_ORDER);
}

Var optString(const std::optional<std::string>& s) {
    return s ? Var(*s) : Var();
}

std::string stringify(const Object::Ptr& o) {
    std::ostringstream os;
    o->stringify(os);
    return os.str();
}

Array::Ptr componentsArray(const std::vector<ComponentReport>& components) {
    Array::Ptr arr = new Array();
    for (const auto& c : components) {
        Object::Ptr o = newObject();
        o->set("name", c.name);
        o->set("repo", c.repo);
        o->set("kind", c.kind);
        o->set("current", optString(c.current));
        arr->add(o);
    }
    return arr;
}

// A field that must be a JSON string; nothing when missing, null or another type.
std::optional<std::string> stringField(const Object::Ptr& o, const std::string& key) {
    if (!o->has(key))
        return std::nullopt;
    Var v = o->get(key);
    if (v.isEmpty() || !v.isString())
        return std::nullopt;
    return v.extract<std::string>();
}

Expected<Announcement> announcementFrom(const Object::Ptr& o, const std::string& where) {
    Announcement a;
    auto component = stringField(o, "component");
    auto repo = stringField(o, "repo");
    auto tag = stringField(o, "tag");
    if (!component || !repo || !tag)
        return fail(ErrorCode::kProtocol,
                    where + ": 'component', 'repo' and 'tag' must be strings");
    a.component = *component;
    a.repo = *repo;
    a.tag = *tag;
    a.publishedAt = stringField(o, "published_at").value_or("");
    return a;
}

std::string excerpt(std::string_view frame) {
    constexpr size_t kMax = 80;
    std::string s(frame.substr(0, kMax));
    for (char& c : s)
        if (static_cast<unsigned char>(c) < 0x20)
            c = ' ';
    if (frame.size() > kMax)
        s += "...";
    return s;
}

}  // namespace

std::string formatUtcMillis(WallTime t) {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
    return Poco::DateTimeFormatter::format(Poco::Timestamp(us), "%Y-%m-%dT%H:%M:%S.%iZ");
}

std::string encodeHello(const std::string& agentId, const std::string& agentVersion,
                        const std::string& arch, const std::vector<ComponentReport>& components) {
    Object::Ptr o = newObject();
    o->set("type", "hello");
    o->set("protocol", kProtocolVersion);
    o->set("agent_id", agentId);
    o->set("agent_version", agentVersion);
    o->set("arch", arch);
    o->set("components", componentsArray(components));
    return stringify(o);
}

std::string encodeInventory(const std::string& agentId, const std::string& arch,
                            const std::vector<ComponentReport>& components) {
    Object::Ptr o = newObject();
    o->set("type", "inventory");
    o->set("agent_id", agentId);
    o->set("arch", arch);
    o->set("components", componentsArray(components));
    return stringify(o);
}

std::string encodeTelemetry(const std::string& agentId, const TelemetryEvent& ev) {
    Object::Ptr o = newObject();
    o->set("type", "telemetry");
    o->set("id", ev.id);
    o->set("agent_id", agentId);
    o->set("component", ev.component);
    o->set("tag", ev.tag);
    o->set("from_tag", optString(ev.fromTag));
    o->set("event", toString(ev.event));
    o->set("at", formatUtcMillis(ev.at));
    if (ev.event != TelemetryKind::kApplyStarted)
        o->set("duration_ms", static_cast<Poco::Int64>(ev.durationMs.value_or(0)));
    if (ev.event == TelemetryKind::kApplyFailed) {
        o->set("phase", toString(ev.phase.value_or(ApplyPhase::kInstall)));
        o->set("error", ev.error.value_or(""));
        o->set("rolled_back_to", optString(ev.rolledBackTo));
        o->set("rollback_ok", ev.rollbackOk.value_or(false));
    }
    return stringify(o);
}

Expected<Incoming> decode(std::string_view frame) {
    Object::Ptr o;
    try {
        Poco::JSON::Parser parser;
        Var root = parser.parse(std::string(frame));
        if (root.type() != typeid(Object::Ptr))
            return fail(ErrorCode::kProtocol, "frame is not a JSON object: " + excerpt(frame));
        o = root.extract<Object::Ptr>();
    } catch (const Poco::Exception& e) {
        return fail(ErrorCode::kProtocol,
                    "frame is not JSON (" + e.displayText() + "): " + excerpt(frame));
    } catch (const std::exception& e) {
        return fail(ErrorCode::kProtocol,
                    std::string("frame is not JSON (") + e.what() + "): " + excerpt(frame));
    }
    if (!o)
        return fail(ErrorCode::kProtocol, "frame is not a JSON object: " + excerpt(frame));

    try {
        auto type = stringField(o, "type");
        if (!type)
            return fail(ErrorCode::kProtocol, "frame has no string 'type': " + excerpt(frame));
        Incoming in;
        in.rawType = *type;
        if (*type == "sync") {
            in.type = Incoming::Type::kSync;
            if (!o->has("releases") || o->get("releases").type() != typeid(Array::Ptr))
                return fail(ErrorCode::kProtocol, "sync: 'releases' must be an array");
            Array::Ptr arr = o->getArray("releases");
            for (size_t i = 0; i < arr->size(); ++i) {
                std::string where = "sync: releases[" + std::to_string(i) + "]";
                Object::Ptr entry = arr->getObject(static_cast<unsigned>(i));
                if (!entry) {
                    in.warnings.push_back(where + ": not an object, skipped");
                    continue;
                }
                auto a = announcementFrom(entry, where);
                if (!a) {
                    in.warnings.push_back(a.error().message() + ", skipped");
                    continue;
                }
                in.releases.push_back(std::move(*a));
            }
        } else if (*type == "release") {
            in.type = Incoming::Type::kRelease;
            auto a = announcementFrom(o, "release");
            if (!a)
                return fail(a.error());
            in.releases.push_back(std::move(*a));
        } else if (*type == "ack") {
            in.type = Incoming::Type::kAck;
            auto id = stringField(o, "id");
            if (!id)
                return fail(ErrorCode::kProtocol, "ack: 'id' must be a string");
            in.ackId = *id;
        } else if (*type == "error") {
            in.type = Incoming::Type::kError;
            auto code = stringField(o, "code");
            if (!code)
                return fail(ErrorCode::kProtocol, "error: 'code' must be a string");
            in.errorCode = *code;
            in.errorMessage = stringField(o, "message").value_or("");
        } else {
            in.type = Incoming::Type::kUnknown;
        }
        return in;
    } catch (const Poco::Exception& e) {
        return fail(ErrorCode::kProtocol, "malformed message (" + e.displayText() + ")");
    } catch (const std::exception& e) {
        return fail(ErrorCode::kProtocol, std::string("malformed message (") + e.what() + ")");
    }
}

}  // namespace rra::proxy
