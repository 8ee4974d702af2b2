// GitHub repository names ("owner/name") as the agent compares them. Pure, header-only.
#pragma once

#include <algorithm>
#include <cctype>
#include <string_view>

namespace rra::common {

// True when both name the same GitHub repository: GitHub treats owner and name
// case-insensitively (ASCII; its names are ASCII), so "Acme/Web-UI" is "acme/web-ui".
// The announcement filter and the deployment engine must agree on this.
inline bool sameRepo(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

}  // namespace rra::common
