// Proxy wire codec: JSON through Poco::JSON, every Poco exception caught here.
#include "proxy/messages.hpp"

#include <Poco/DateTimeFormatter.h>
#include <Poco/Dynamic/Var.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Timestamp.h>

#include <algorithm>
#include <optional>
#include <sstream>

namespace rra::proxy {
namespace {

using Poco::Dynamic::Var;
using Poco::JSON::Array;
using Poco::JSON::Object;

Object::Ptr newObject() {
    return new Object(Poco::JSON_PRESERVE_KEY_ORDER);
}

// Every string the encoders write goes through these two.
Var str(const std::string& s) {
    return Var(toValidUtf8(s));
}

Var optString(const std::optional<std::string>& s) {
    return s ? str(*s) : Var();
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
        o->set("name", str(c.name));
        o->set("repo", str(c.repo));
        o->set("kind", str(c.kind));
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

}  // namespace

std::string toValidUtf8(std::string_view text) {
    static constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD
    std::string out;
    out.reserve(text.size());
    size_t i = 0;
    while (i < text.size()) {
        const auto lead = static_cast<unsigned char>(text[i]);
        if (lead < 0x80) {
            out += static_cast<char>(lead);
            ++i;
            continue;
        }
        // Length and the allowed range of the second byte (RFC 3629 table): the narrowed
        // ranges exclude overlong forms, surrogates and code points above U+10FFFF.
        size_t tail = 0;
        unsigned char lo = 0x80, hi = 0xBF;
        if (lead >= 0xC2 && lead <= 0xDF) {
            tail = 1;
        } else if (lead >= 0xE0 && lead <= 0xEF) {
            tail = 2;
            if (lead == 0xE0)
                lo = 0xA0;
            else if (lead == 0xED)
                hi = 0x9F;
        } else if (lead >= 0xF0 && lead <= 0xF4) {
            tail = 3;
            if (lead == 0xF0)
                lo = 0x90;
            else if (lead == 0xF4)
                hi = 0x8F;
        } else {
            out += kReplacement;  // 0x80..0xC1, 0xF5..0xFF never start a sequence
            ++i;
            continue;
        }
        size_t good = 1;  // bytes of the sequence that fit so far
        while (good <= tail && i + good < text.size()) {
            const auto c = static_cast<unsigned char>(text[i + good]);
            const bool ok = good == 1 ? (c >= lo && c <= hi) : (c >= 0x80 && c <= 0xBF);
            if (!ok)
                break;
            ++good;
        }
        if (good == tail + 1)
            out.append(text.substr(i, good));
        else
            out += kReplacement;
        i += good;
    }
    return out;
}

std::string excerpt(std::string_view text, size_t maxBytes) {
    std::string s = toValidUtf8(text.substr(0, maxBytes));
    for (size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c == 0x7F) {
            s[i] = ' ';
        } else if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) <= 0x9F) {
            s.replace(i, 2, " ");  // C1 control (U+0080..U+009F), e.g. a terminal CSI
        }
    }
    if (text.size() > maxBytes)
        s += "...";
    return s;
}

std::string formatUtcMillis(WallTime t) {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
    return Poco::DateTimeFormatter::format(Poco::Timestamp(us), "%Y-%m-%dT%H:%M:%S.%iZ");
}

std::string encodeHello(const std::string& agentId, const std::string& agentVersion,
                        const std::string& arch, const std::vector<ComponentReport>& components) {
    Object::Ptr o = newObject();
    o->set("type", "hello");
    o->set("protocol", kProtocolVersion);
    o->set("agent_id", str(agentId));
    o->set("agent_version", str(agentVersion));
    o->set("arch", str(arch));
    o->set("components", componentsArray(components));
    return stringify(o);
}

std::string encodeInventory(const std::string& agentId, const std::string& arch,
                            const std::vector<ComponentReport>& components) {
    Object::Ptr o = newObject();
    o->set("type", "inventory");
    o->set("agent_id", str(agentId));
    o->set("arch", str(arch));
    o->set("components", componentsArray(components));
    return stringify(o);
}

std::string encodeTelemetry(const std::string& agentId, const TelemetryEvent& ev) {
    Object::Ptr o = newObject();
    o->set("type", "telemetry");
    o->set("id", str(ev.id));
    o->set("agent_id", str(agentId));
    o->set("component", str(ev.component));
    o->set("tag", str(ev.tag));
    o->set("from_tag", optString(ev.fromTag));
    o->set("event", toString(ev.event));
    o->set("at", formatUtcMillis(ev.at));
    if (ev.event != TelemetryKind::kApplyStarted)
        o->set("duration_ms", static_cast<Poco::Int64>(ev.durationMs.value_or(0)));
    if (ev.event == TelemetryKind::kApplyFailed) {
        o->set("phase", toString(ev.phase.value_or(ApplyPhase::kInstall)));
        o->set("error", str(ev.error.value_or("")));
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
            // One warning per bad entry would let a single message allocate millions of
            // strings: describe the first few, count the rest.
            const size_t total = arr->size();
            const size_t n = std::min(total, kMaxSyncEntries);
            size_t skipped = 0;
            for (size_t i = 0; i < n; ++i) {
                std::string where = "sync: releases[" + std::to_string(i) + "]";
                Object::Ptr entry = arr->getObject(static_cast<unsigned>(i));
                std::optional<std::string> problem;
                if (!entry) {
                    problem = where + ": not an object, skipped";
                } else if (auto a = announcementFrom(entry, where)) {
                    in.releases.push_back(std::move(*a));
                } else {
                    problem = a.error().message() + ", skipped";
                }
                if (problem && ++skipped <= kMaxWarningExamples)
                    in.warnings.push_back(std::move(*problem));
            }
            if (skipped > kMaxWarningExamples)
                in.warnings.push_back("sync: " + std::to_string(skipped) +
                                      " malformed entries skipped in all (the first " +
                                      std::to_string(kMaxWarningExamples) + " named above)");
            if (total > n)
                in.warnings.push_back("sync: " + std::to_string(total) +
                                      " entries, only the first " + std::to_string(n) +
                                      " were read");
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
