#include "common/version.hpp"

#ifndef RRA_VERSION_STR
#error "RRA_VERSION_STR must be defined by the build"
#endif
#ifndef RRA_ARCH_STR
#error "RRA_ARCH_STR must be defined by the build"
#endif

namespace rra {
const char* const kAgentVersion = RRA_VERSION_STR;
const char* const kAgentArch = RRA_ARCH_STR;
const char* const kUserAgent = "raspi-release-agent/" RRA_VERSION_STR;
}  // namespace rra
