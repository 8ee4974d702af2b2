// Running commands for plugins: argv only (no shell), own process group killed on timeout
// or cancellation, stdout+stderr captured into a bounded tail for error messages.
#pragma once

#include "support/outcome.hpp"

#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace rra::plugin_support {

struct CommandSpec {
    std::vector<std::string> argv;  // argv[0] is looked up in PATH when it has no '/'
    std::string cwd;                // empty: the agent's working directory
    // Added to (or overriding) the agent's environment.
    std::vector<std::pair<std::string, std::string>> env;
    std::chrono::milliseconds timeout{std::chrono::minutes(5)};
    // Polled about every 50 ms while the command runs; true kills its process group.
    std::function<bool()> cancelled;
    size_t tailLines = 20;  // how many last lines of output to keep
};

struct CommandResult {
    int exitCode = -1;  // valid when the command exited by itself
    int signal = 0;     // nonzero when it died of (or was killed with) a signal
    bool timedOut = false;
    bool cancelled = false;
    std::chrono::milliseconds elapsed{0};
    std::string tail;  // last lines of stdout and stderr, interleaved as written

    bool succeeded() const { return !timedOut && !cancelled && signal == 0 && exitCode == 0; }
    // "exit code 3", "killed by signal 9", "timed out after 5000 ms", "cancelled"
    std::string describe() const;
    // describe() plus the output tail when there is one: for error messages.
    std::string describeWithOutput() const;
};

// Runs the command to completion. Fails only when it cannot be started at all (argv empty,
// program not found, cwd missing); a nonzero exit is a CommandResult, not a failure.
Outcome<CommandResult> runCommand(const CommandSpec& spec);

// Runs `spec` until it succeeds, at most every `interval`, until `budget` has passed: the
// health-check loop. Each attempt's timeout is capped by what is left of the budget.
// Fails with kTimeout ("<what> did not succeed within N ms (K attempts): exit code 1;
// output: ...") or kCancelled.
Done retryUntilSuccess(const std::string& what, CommandSpec spec, std::chrono::milliseconds budget,
                       std::chrono::milliseconds interval = std::chrono::seconds(1));

// "a b 'c d'": argv rendered for log lines.
std::string renderArgv(const std::vector<std::string>& argv);

}  // namespace rra::plugin_support
