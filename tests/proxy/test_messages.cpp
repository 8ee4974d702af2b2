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

// Strict UTF-8 check written the other way round from the codec's (decode the code point,
// then reject overlong forms, surrogates and values above U+10FFFF).
bool isValidUtf8(const std::string& s) {
    size_t i = 0;
    while (i < s.size()) {
        const auto b = static_cast<unsigned char>(s[i]);
        size_t len = b < 0x80           ? 1
                     : (b >> 5) == 0x6  ? 2
                     : (b >> 4) == 0xE  ? 3
                     : (b >> 3) == 0x1E ? 4
                                        : 0;
        if (len == 0 || i + len > s.size())
            return false;
        uint32_t cp = len == 1 ? b : b & (0xFF >> (len + 1));
        for (size_t k = 1; k < len; ++k) {
            const auto c = static_cast<unsigned char>(s[i + k]);
            if ((c & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (c & 0x3F);
        }
        const uint32_t minimum[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < minimum[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
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

struct Utf8Case {
    std::string name, in, out;  // out: what toValidUtf8 makes of it
};
std::ostream& operator<<(std::ostream& os, const Utf8Case& c) {
    return os << c.name;
}
const std::string kFffd = "\xEF\xBF\xBD";
const std::vector<Utf8Case> kUtf8Cases = {
    {"valid multibyte kept", "gr\xC3\xBC\xC3\x9F \xE2\x9C\x93 \xF0\x9F\x98\x80",
     "gr\xC3\xBC\xC3\x9F \xE2\x9C\x93 \xF0\x9F\x98\x80"},
    {"lone continuation",
     "a\x80"
     "b",
     "a" + kFffd + "b"},
    {"continuations", "\xBF\xBF", kFffd + kFffd},
    {"truncated 3-byte",
     "a\xE2\x82"
     "b",
     "a" + kFffd + "b"},
    {"truncated at end", "ok\xF0\x9F\x98", "ok" + kFffd},
    {"overlong slash 2-byte", "\xC0\xAF", kFffd + kFffd},
    {"overlong 3-byte", "\xE0\x80\xAF", kFffd + kFffd + kFffd},
    {"overlong 4-byte", "\xF0\x82\x82\xAC", kFffd + kFffd + kFffd + kFffd},
    {"high surrogate", "\xED\xA0\x80", kFffd + kFffd + kFffd},
    {"low surrogate", "\xED\xBF\xBF", kFffd + kFffd + kFffd},
    {"above U+10FFFF", "\xF4\x90\x80\x80", kFffd + kFffd + kFffd + kFffd},
    {"invalid lead bytes", "\xF5\xFF\xFE", kFffd + kFffd + kFffd},
    {"lead followed by ascii", "\xC3(", kFffd + "("},
    {"dpkg latin-1 tail",
     "Fehler: Datei \xFC"
     "berschrieben\n",
     "Fehler: Datei " + kFffd + "berschrieben\n"},
};

BOOST_DATA_TEST_CASE(invalid_utf8_is_replaced, boost::unit_test::data::make(kUtf8Cases), c) {
    // Bad bytes become U+FFFD (one per maximal ill-formed subpart), valid text is untouched.
    BOOST_TEST(toValidUtf8(c.in) == c.out);
    BOOST_TEST(isValidUtf8(toValidUtf8(c.in)));
}

BOOST_DATA_TEST_CASE(encoded_frames_are_valid_utf8_json, boost::unit_test::data::make(kUtf8Cases),
                     c) {
    // Whatever bytes an error text, a name or a tag holds (command output tails), every
    // frame the codec writes is valid UTF-8 and JSON: a proxy closes on anything else with
    // 1007, and unacked telemetry is resent forever.
    TelemetryEvent ev;
    ev.id = "id" + c.in;
    ev.component = c.in;
    ev.tag = c.in;
    ev.fromTag = c.in;
    ev.event = TelemetryKind::kApplyFailed;
    ev.error = "health_cmd: " + c.in;
    ev.rolledBackTo = c.in;
    std::vector<ComponentReport> comps = {{c.in, c.in, c.in, c.in}};
    for (const std::string& frame :
         {encodeTelemetry("a" + c.in, ev), encodeHello("a" + c.in, c.in, c.in, comps),
          encodeInventory("a" + c.in, c.in, comps)}) {
        BOOST_TEST(isValidUtf8(frame), frame);
        Object::Ptr o;
        BOOST_REQUIRE_NO_THROW(o = parse(frame));
        BOOST_TEST(o->has("type"));
    }
    auto o = parse(encodeTelemetry("a", ev));
    BOOST_TEST(o->getValue<std::string>("error") == "health_cmd: " + c.out);
    BOOST_TEST(o->getValue<std::string>("component") == c.out);
}

BOOST_AUTO_TEST_CASE(excerpt_is_one_bounded_line) {
    // Proxy text in the log: no line breaks or escapes, bounded, valid UTF-8.
    BOOST_TEST(excerpt("a\nforged: line\r\x1b[31m\x7f") == "a forged: line  [31m ");
    BOOST_TEST(excerpt("csi \xC2\x9B"
                       "2J") == "csi  2J");
    BOOST_TEST(excerpt(std::string(500, 'x'), 100) == std::string(100, 'x') + "...");
    BOOST_TEST(isValidUtf8(excerpt("\xFF\xE2\x82\xAC\xE2\x82\xAC", 5)));
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

std::string syncOf(size_t n, const std::string& entry) {
    std::string s = R"({"type":"sync","releases":[)";
    for (size_t i = 0; i < n; ++i)
        s += (i ? "," : "") + entry;
    return s + "]}";
}

BOOST_AUTO_TEST_CASE(junk_sync_yields_a_bounded_summary) {
    // 50,000 junk entries: a few named examples plus one count, not one string per entry.
    auto r = decode(syncOf(50000, "7"));
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(r->releases.empty());
    BOOST_REQUIRE(r->warnings.size() == kMaxWarningExamples + 2);
    BOOST_TEST(r->warnings[0].find("releases[0]") != std::string::npos);
    BOOST_TEST(r->warnings[kMaxWarningExamples].find(std::to_string(kMaxSyncEntries) +
                                                     " malformed entries") != std::string::npos);
    BOOST_TEST(r->warnings.back().find("50000 entries") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(sync_entries_are_capped) {
    // Only the first kMaxSyncEntries entries are taken; one warning says so.
    auto r =
        decode(syncOf(kMaxSyncEntries + 5, R"({"component":"a","repo":"o/a","tag":"v1.0.0"})"));
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(r->releases.size() == kMaxSyncEntries);
    BOOST_REQUIRE(r->warnings.size() == 1u);
    BOOST_TEST(r->warnings[0].find("only the first") != std::string::npos);
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
