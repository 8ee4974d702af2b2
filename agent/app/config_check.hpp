// The checks that need plugins: every component's `type` has a loaded deployer, and that
// deployer accepts the component's settings. Shared by --check-config, start-up and reload.
#pragma once

#include "config/config.hpp"
#include "plugins/deployer_instance.hpp"
#include "plugins/plugin_loader.hpp"

#include <string>
#include <vector>

namespace rra::app {

// "FILE: components[2]" + "type" -> "FILE: components[2].type"; "FILE" + "type" -> "FILE: type".
std::string keyPath(const std::string& origin, const std::string& key);

// Context handed to a plugin instance for `c`.
plugins::InstanceContext instanceContext(const config::Config& cfg,
                                         const config::ComponentConfig& c,
                                         const std::string& agentPath, bool validateOnly);

// One message per problem, each naming the file and key. With `warnings`, what the plugins
// warn about while validating (unknown settings keys) is added there, named the same way;
// without it, it is logged.
std::vector<std::string> checkComponents(const config::Config& cfg,
                                         const plugins::LoadReport& plugins,
                                         const std::string& agentPath,
                                         std::vector<std::string>* warnings = nullptr);

}  // namespace rra::app
