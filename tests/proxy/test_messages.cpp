// Proves the proxy wire codec follows shared/spec/proxy-protocol.md field by field.
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "proxy/messages.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <ostream>

using namespace rra;
using namespace rra::proxy;
using Poco::JSON::Object;

namespace {

Object::Ptr parse(const std::string& s) {
    Poco::JSON::Parser p;
    return p.parse(s).extract<Object::Ptr>();
}

std::vector<ComponentReport> sampleComponents() {
    return {{"web-ui", "acme/web-ui", "tarball", std::string("v2.3.1")},
            {"sensor", "acme/sensor", "deb", std::nullopt}};
}

WallTime sampleTime() {
    // 2026-12-03T18:00:00.123Z
    return WallTime(std::chrono::milliseconds(1796320800123LL));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(messages)

BOOST_AUTO_TEST_CASE(hello_has_every_field_and_null_current) {
    // hello carries protocol 1, ids, arch and each component with current or JSON null.
    std::string s = encodeHello("pi-kitchen-01", "1.4.0", "arm64", sampleComponents());
    auto o = parse(s);
    BOOST_TEST(o->getValue<std::string>("type") == "hello");
    BOOST_TEST(o->getValue<int>("protocol") == 1);
    BOOST_TEST(o->getValue<std::string>("agent_id") == "pi-kitchen-01");
    BOOST_TEST(o->getValue<std::string>("agent_version") == "1.4.0");
    BOOST_TEST(o->getValue<std::string>("arch") == "arm64");
    auto comps = o->getArray("components");
    BOOST_REQUIRE(comps->size() == 2u);
    auto web = comps->getObject(0);
    BOOST_TEST(web->getValue<std::string>("name") == "web-ui");
    BOOST_TEST(web->getValue<std::string>("repo") == "acme/web-ui");
    BOOST_TEST(web->getValue<std::string>("kind") == "tarball");
    BOOST_TEST(web->getValue<std::string>("current") == "v2.3.1");
    auto sensor = comps->getObject(1);
    BOOST_TEST(sensor->has("current"));     // present ...
    BOOST_TEST(sensor->isNull("current"));  // ... and null, not missing
    BOOST_TEST(s.find("\"current\":null") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(inventory_is_hello_without_protocol_and_version) {
    // inventory has the same fields as hello minus protocol and agent_version.
    auto o = parse(encodeInventory("pi-1", "armhf", sampleComponents()));
    BOOST_TEST(o->getValue<std::string>("type") == "inventory");
    BOOST_TEST(o->getValue<std::string>("agent_id") == "pi-1");
    BOOST_TEST(o->getValue<std::string>("arch") == "armhf");
    BOOST_TEST(!o->has("protocol"));
    BOOST_TEST(!o->has("agent_version"));
    BOOST_TEST(o->getArray("components")->size() == 2u);
}

BOOST_AUTO_TEST_CASE(empty_component_list_is_an_empty_array) {
    // An agent without components still sends "components": [].
    auto o = parse(encodeHello("a", "1", "amd64", {}));
    BOOST_REQUIRE(o->getArray("components"));
    BOOST_TEST(o->getArray("components")->size() == 0u);
}

BOOST_AUTO_TEST_CASE(strings_are_escaped) {
    // Quotes, backslashes and control characters in values survive a JSON round trip.
    TelemetryEvent ev;
    ev.id = "x";
    ev.event = TelemetryKind::kApplyFailed;
    ev.error = "bad \"quote\" \\ and\nnewline";
    auto o = parse(encodeTelemetry("a", ev));
    BOOST_TEST(o->getValue<std::string>("error") == *ev.error);
}

BOOST_AUTO_TEST_CASE(at_is_utc_with_millis_and_z) {
    // `at` is ISO-8601 UTC with milliseconds and a trailing Z.
    BOOST_TEST(formatUtcMillis(sampleTime()) == "2026-12-03T18:00:00.123Z");
    BOOST_TEST(formatUtcMillis(WallTime(std::chrono::milliseconds(5))) ==
               "1970-01-01T00:00:00.005Z");
}

struct TelemetryCase {
    TelemetryKind kind;
    std::vector<std::string> present;
    std::vector<std::string> absent;
};
std::ostream& operator<<(std::ostream& os, const TelemetryCase& c) {
    return os << toString(c.kind);
}

const std::vector<std::string> kCommon = {"type", "id",       "agent_id", "component",
                                          "tag",  "from_tag", "event",    "at"};

BOOST_DATA_TEST_CASE(telemetry_fields_per_event,
                     boost::unit_test::data::make(std::vector<TelemetryCase>{
                         {TelemetryKind::kApplyStarted,
                          {},
                          {"duration_ms", "phase", "error", "rolled_back_to", "rollback_ok"}},
                         {TelemetryKind::kApplySucceeded,
                          {"duration_ms"},
                          {"phase", "error", "rolled_back_to", "rollback_ok"}},
                         {TelemetryKind::kApplyFailed,
                          {"duration_ms", "phase", "error", "rolled_back_to", "rollback_ok"},
                          {}},
                     }),
                     c) {
    // Each event kind carries exactly the fields the contract lists for it.
    TelemetryEvent ev;
    ev.id = "6f1c2b9e-0000-4000-8000-000000000001";
    ev.component = "web-ui";
    ev.tag = "v2.4.0";
    ev.fromTag = "v2.3.1";
    ev.event = c.kind;
    ev.at = sampleTime();
    ev.durationMs = 1234;
    ev.phase = ApplyPhase::kVerify;
    ev.error = "health check failed";
    ev.rolledBackTo = "v2.3.1";
    ev.rollbackOk = true;
    auto o = parse(encodeTelemetry("pi-kitchen-01", ev));
    for (const auto& k : kCommon)
        BOOST_TEST(o->has(k), "missing " << k);
    for (const auto& k : c.present)
        BOOST_TEST(o->has(k), "missing " << k);
    for (const auto& k : c.absent)
        BOOST_TEST(!o->has(k), "unexpected " << k);
    BOOST_TEST(o->getValue<std::string>("type") == "telemetry");
    BOOST_TEST(o->getValue<std::string>("id") == ev.id);
    BOOST_TEST(o->getValue<std::string>("agent_id") == "pi-kitchen-01");
    BOOST_TEST(o->getValue<std::string>("event") == toString(c.kind));
    BOOST_TEST(o->getValue<std::string>("from_tag") == "v2.3.1");
    BOOST_TEST(o->getValue<std::string>("at") == "2026-12-03T18:00:00.123Z");
    if (c.kind != TelemetryKind::kApplyStarted)
        BOOST_TEST(o->getValue<int64_t>("duration_ms") == 1234);
    if (c.kind == TelemetryKind::kApplyFailed) {
        BOOST_TEST(o->getValue<std::string>("phase") == "verify");
        BOOST_TEST(o->getValue<std::string>("error") == "health check failed");
        BOOST_TEST(o->getValue<std::string>("rolled_back_to") == "v2.3.1");
        BOOST_TEST(o->getValue<bool>("rollback_ok") == true);
    }
}

BOOST_AUTO_TEST_CASE(telemetry_nulls_are_written_as_null) {
    // from_tag and rolled_back_to are JSON null (present) when nothing was installed.
    TelemetryEvent ev;
    ev.id = "i";
    ev.event = TelemetryKind::kApplyFailed;
    ev.phase = ApplyPhase::kDownload;
    ev.error = "no asset";
    ev.rollbackOk = true;
    ev.durationMs = 7;
    auto o = parse(encodeTelemetry("a", ev));
    BOOST_TEST(o->has("from_tag"));
    BOOST_TEST(o->isNull("from_tag"));
    BOOST_TEST(o->has("rolled_back_to"));
    BOOST_TEST(o->isNull("rolled_back_to"));
    BOOST_TEST(o->getValue<std::string>("phase") == "download");
}

struct DecodeCase {
    std::string name;
    std::string frame;
    bool ok;
    Incoming::Type type;
    size_t releases;
    size_t warnings;
};
std::ostream& operator<<(std::ostream& os, const DecodeCase& c) {
    return os << c.name;
}

using T = Incoming::Type;
const std::vector<DecodeCase> kDecodeCases = {
    {"sync two entries",
     R"({"type":"sync","releases":[{"component":"web-ui","repo":"acme/web-ui","tag":"v2.4.0","published_at":"2026-12-01T10:00:00Z"},{"component":"web-ui","repo":"acme/web-ui","tag":"v2.5.0","published_at":"2026-12-02T10:00:00Z"}]})",
     true, T::kSync, 2, 0},
    {"sync empty", R"({"type":"sync","releases":[]})", true, T::kSync, 0, 0},
    {"sync published_at null or missing",
     R"({"type":"sync","releases":[{"component":"a","repo":"o/a","tag":"v1.0.0","published_at":null},{"component":"a","repo":"o/a","tag":"v1.0.1"}]})",
     true, T::kSync, 2, 0},
    {"sync bad entries skipped",
     R"({"type":"sync","releases":[{"component":"a","repo":"o/a","tag":"v1.0.0"},{"component":"a","tag":"v2"},7,{"component":"a","repo":"o/a","tag":3}]})",
     true, T::kSync, 1, 3},
    {"sync unknown fields",
     R"({"type":"sync","x":{"y":1},"releases":[{"component":"a","repo":"o/a","tag":"v1.0.0","z":[1]}]})",
     true, T::kSync, 1, 0},
    {"sync without releases", R"({"type":"sync"})", false, T::kUnknown, 0, 0},
    {"sync releases not array", R"({"type":"sync","releases":{}})", false, T::kUnknown, 0, 0},
    {"release",
     R"({"type":"release","component":"web-ui","repo":"acme/web-ui","tag":"v2.5.0","published_at":"2026-12-02T10:00:00Z"})",
     true, T::kRelease, 1, 0},
    {"release unknown field",
     R"({"type":"release","component":"a","repo":"o/a","tag":"v1","new":true})", true, T::kRelease,
     1, 0},
    {"release missing tag", R"({"type":"release","component":"a","repo":"o/a"})", false,
     T::kUnknown, 0, 0},
    {"release numeric tag", R"({"type":"release","component":"a","repo":"o/a","tag":1})", false,
     T::kUnknown, 0, 0},
    {"release null repo", R"({"type":"release","component":"a","repo":null,"tag":"v1"})", false,
     T::kUnknown, 0, 0},
    {"ack", R"({"type":"ack","id":"abc"})", true, T::kAck, 0, 0},
    {"ack without id", R"({"type":"ack"})", false, T::kUnknown, 0, 0},
    {"error", R"({"type":"error","code":"unauthorized","message":"bad token"})", true, T::kError, 0,
     0},
    {"error without message", R"({"type":"error","code":"internal"})", true, T::kError, 0, 0},
    {"error without code", R"({"type":"error","message":"x"})", false, T::kUnknown, 0, 0},
    {"unknown type", R"({"type":"shiny-new-thing","x":1})", true, T::kUnknown, 0, 0},
    {"not json", "not json", false, T::kUnknown, 0, 0},
    {"empty", "", false, T::kUnknown, 0, 0},
    {"truncated", R"({"type":"sync")", false, T::kUnknown, 0, 0},
    {"json array", R"([{"type":"sync"}])", false, T::kUnknown, 0, 0},
    {"json string", R"("sync")", false, T::kUnknown, 0, 0},
    {"json null", "null", false, T::kUnknown, 0, 0},
    {"json number", "42", false, T::kUnknown, 0, 0},
    {"missing type", R"({"releases":[]})", false, T::kUnknown, 0, 0},
    {"numeric type", R"({"type":5})", false, T::kUnknown, 0, 0},
    {"null type", R"({"type":null})", false, T::kUnknown, 0, 0},
};

BOOST_DATA_TEST_CASE(decode_table, boost::unit_test::data::make(kDecodeCases), c) {
    // Every message type, unknown fields and types, and garbage frames decode as specified.
    auto r = decode(c.frame);
    BOOST_TEST(r.has_value() == c.ok);
    if (!r) {
        BOOST_TEST(!r.error().message().empty());
        return;
    }
    BOOST_TEST(static_cast<int>(r->type) == static_cast<int>(c.type));
    BOOST_TEST(r->releases.size() == c.releases);
    BOOST_TEST(r->warnings.size() == c.warnings);
}

BOOST_AUTO_TEST_CASE(decoded_values) {
    // Field values are carried over exactly; null published_at becomes empty.
    auto s = decode(kDecodeCases[0].frame);
    BOOST_REQUIRE(s.has_value());
    BOOST_TEST(s->releases[1].component == "web-ui");
    BOOST_TEST(s->releases[1].repo == "acme/web-ui");
    BOOST_TEST(s->releases[1].tag == "v2.5.0");
    BOOST_TEST(s->releases[1].publishedAt == "2026-12-02T10:00:00Z");
    auto n = decode(kDecodeCases[2].frame);
    BOOST_REQUIRE(n.has_value());
    BOOST_TEST(n->releases[0].publishedAt == "");
    auto a = decode(R"({"type":"ack","id":"abc"})");
    BOOST_TEST(a->ackId == "abc");
    auto e = decode(R"({"type":"error","code":"unauthorized","message":"bad token"})");
    BOOST_TEST(e->errorCode == "unauthorized");
    BOOST_TEST(e->errorMessage == "bad token");
    auto u = decode(R"({"type":"shiny-new-thing"})");
    BOOST_TEST(u->rawType == "shiny-new-thing");
}

BOOST_AUTO_TEST_SUITE_END()
