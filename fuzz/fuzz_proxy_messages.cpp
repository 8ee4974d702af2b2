// Fuzz target: the proxy wire codec. The input is a frame from the proxy (decode must never
// crash or throw) and also the text fields of outgoing messages (hello, telemetry): what the
// agent sends must stay one well-formed JSON value whatever bytes a name or an error holds.
#include "config/json_syntax.hpp"
#include "fuzz_check.hpp"
#include "proxy/messages.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string frame(reinterpret_cast<const char*>(data), size);
    auto in = rra::proxy::decode(frame);
    if (in) {
        using Type = rra::proxy::Incoming::Type;
        if (in->type == Type::kRelease)
            RRA_FUZZ_CHECK(in->releases.size() == 1, "a release message holds one release");
    } else {
        RRA_FUZZ_CHECK(!in.error().message().empty(), "a refused frame says why");
    }

    // Outgoing: the same bytes as a component name and as a failure message (plugins and
    // health commands put arbitrary output there).
    rra::ComponentReport c{frame, "owner/repo", "tarball", frame};
    const std::string hello = rra::proxy::encodeHello("agent-1", "0.1.0", "amd64", {c});
    auto err = rra::config::findJsonSyntaxError(hello);
    RRA_FUZZ_CHECK(!err, "hello is well-formed JSON");

    rra::TelemetryEvent ev;
    ev.id = "id-1";
    ev.component = "web";
    ev.tag = "v1.0.0";
    ev.event = rra::TelemetryKind::kApplyFailed;
    ev.phase = rra::ApplyPhase::kVerify;
    ev.error = frame;
    ev.durationMs = 1;
    ev.rollbackOk = true;
    const std::string tel = rra::proxy::encodeTelemetry("agent-1", ev);
    err = rra::config::findJsonSyntaxError(tel);
    RRA_FUZZ_CHECK(!err, "telemetry is well-formed JSON");
    return 0;
}
