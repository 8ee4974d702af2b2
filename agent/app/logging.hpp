// Log set-up: one line per event on stderr (systemd's journal adds its own time stamp
// when running under it) at the configured level.
#pragma once

#include <string>

namespace rra::app {

// Routes the root logger and every existing logger to stderr at `level`.
void setUpLogging(const std::string& level);
// Changes the level of every logger (reload).
void setLogLevel(const std::string& level);

}  // namespace rra::app
