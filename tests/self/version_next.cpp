// The version strings of `raspi-release-agent-next`, the second agent build the
// self-update tests release: listed on the link line, this object wins over rra_version's.
#include "common/version.hpp"

namespace rra {
const char* const kAgentVersion = RRA_NEXT_VERSION_STR;
const char* const kAgentArch = RRA_ARCH_STR;
const char* const kUserAgent = "raspi-release-agent/" RRA_NEXT_VERSION_STR;
}  // namespace rra
