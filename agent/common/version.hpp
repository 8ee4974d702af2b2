// The agent's version and build architecture. Defined in version.cpp, a library of its
// own, so that a test build of the agent with another version string (self-update tests)
// only swaps one object file.
#pragma once

namespace rra {
extern const char* const kAgentVersion;  // e.g. "0.1.0"
extern const char* const kAgentArch;     // Debian architecture: amd64, arm64, armhf
extern const char* const kUserAgent;     // "raspi-release-agent/<version>"
}  // namespace rra
