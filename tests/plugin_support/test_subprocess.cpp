// Tests of the subprocess runner: output tail, exit/signal reporting, timeout killing the
// whole process group, cancellation, environment and cwd, retry loop.
#define BOOST_TEST_MODULE plugin_support
#include <boost/test/unit_test.hpp>

#include "support/subprocess.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>

namespace ps = rra::plugin_support;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_CASE(captures_last_lines_and_exit_code) {
    // Proves stdout and stderr land in one tail bounded to the last lines, and the exit
    // code is reported.
    ps::CommandSpec s;
    s.argv = {"sh", "-c", "for i in $(seq 1 100); do echo line$i; done; echo err >&2; exit 4"};
    s.tailLines = 3;
    auto r = ps::runCommand(s);
    BOOST_REQUIRE(r);
    BOOST_TEST(r->exitCode == 4);
    BOOST_TEST(!r->succeeded());
    BOOST_TEST(r->tail == "line99\nline100\nerr");
    BOOST_TEST(r->describeWithOutput() == "exit code 4; output: line99\nline100\nerr");
}

BOOST_AUTO_TEST_CASE(env_and_cwd_are_applied) {
    // Proves extra environment variables and the working directory reach the command.
    ps::CommandSpec s;
    s.argv = {"sh", "-c", "echo $RRA_TAG $(pwd)"};
    s.env = {{"RRA_TAG", "v9"}};
    s.cwd = "/usr";
    auto r = ps::runCommand(s);
    BOOST_REQUIRE(r);
    BOOST_TEST(r->succeeded());
    BOOST_TEST(r->tail == "v9 /usr");
}

BOOST_AUTO_TEST_CASE(inherited_descriptors_are_closed) {
    // Proves a descriptor the agent holds without O_CLOEXEC (as Poco's sockets are) does not
    // reach the command: a daemon started by restart_cmd would otherwise hold it forever.
    int fd = ::open("/dev/null", O_RDONLY);
    BOOST_REQUIRE(fd > 2);
    ps::CommandSpec s;
    const std::string n = std::to_string(fd);
    s.argv = {"sh", "-c",
              "if [ -e /proc/$$/fd/" + n + " ]; then echo leaked; else echo closed; fi"};
    auto r = ps::runCommand(s);
    ::close(fd);
    BOOST_REQUIRE(r);
    BOOST_TEST(r->tail == "closed");
}

BOOST_AUTO_TEST_CASE(missing_program_fails_to_start) {
    // Proves a program that does not exist is a start failure naming it.
    ps::CommandSpec s;
    s.argv = {"/nonexistent/tool"};
    auto r = ps::runCommand(s);
    BOOST_REQUIRE(!r);
    BOOST_TEST(r.error().message.find("/nonexistent/tool") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(timeout_kills_the_process_group) {
    // Proves a timeout kills the command and its background children (same group), and
    // returns soon after the deadline even though a child holds the output pipe.
    const std::string pidFile = "/tmp/rra-subprocess-grandchild.pid";
    std::remove(pidFile.c_str());
    ps::CommandSpec s;
    s.argv = {"sh", "-c", "sleep 30 & echo $! > " + pidFile + "; echo started; wait"};
    s.timeout = 300ms;
    const auto start = std::chrono::steady_clock::now();
    auto r = ps::runCommand(s);
    BOOST_REQUIRE(r);
    BOOST_TEST((std::chrono::steady_clock::now() - start < 5s));
    BOOST_TEST(r->timedOut);
    BOOST_TEST(r->tail == "started");
    BOOST_TEST(r->describe().find("timed out") == 0u);
    pid_t grandchild = 0;
    std::ifstream(pidFile) >> grandchild;
    BOOST_REQUIRE(grandchild > 0);
    std::this_thread::sleep_for(100ms);
    // Gone, or a zombie waiting for a reaper: either way no longer running.
    std::string stat;
    std::getline(std::ifstream("/proc/" + std::to_string(grandchild) + "/stat"), stat);
    const auto paren = stat.rfind(')');
    BOOST_TEST((stat.empty() || (paren != std::string::npos && stat.substr(paren + 2, 1) == "Z")),
               stat);
    std::remove(pidFile.c_str());
}

BOOST_AUTO_TEST_CASE(cancellation_stops_the_command) {
    // Proves raising the cancellation callback kills a running command.
    std::atomic<bool> cancel{false};
    ps::CommandSpec s;
    s.argv = {"sleep", "30"};
    s.cancelled = [&] { return cancel.load(); };
    std::thread t([&] {
        std::this_thread::sleep_for(200ms);
        cancel = true;
    });
    auto r = ps::runCommand(s);
    t.join();
    BOOST_REQUIRE(r);
    BOOST_TEST(r->cancelled);
    BOOST_TEST(r->signal == SIGKILL);
}

BOOST_AUTO_TEST_CASE(retry_reports_attempts_and_last_output) {
    // Proves the retry loop gives up at the budget with the attempt count and last output,
    // and stops at the first success.
    ps::CommandSpec fail;
    fail.argv = {"sh", "-c", "echo nope; exit 2"};
    auto r = ps::retryUntilSuccess("health_cmd", fail, 250ms, 100ms);
    BOOST_REQUIRE(!r);
    BOOST_TEST((r.error().kind == ps::FailureKind::kTimeout));
    BOOST_TEST(r.error().message.find(" attempts)") != std::string::npos, r.error().message);
    BOOST_TEST(r.error().message.find("exit code 2; output: nope") != std::string::npos);

    ps::CommandSpec ok;
    ok.argv = {"true"};
    BOOST_TEST(ps::retryUntilSuccess("health_cmd", ok, 250ms, 100ms).has_value());
}
