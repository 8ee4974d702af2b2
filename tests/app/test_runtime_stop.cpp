// AgentRuntime::stop: the daemon stops the runtime and its destructor stops it again;
// only the first call may spend the budget (rule 10: exit within 10 s).
#define BOOST_TEST_MODULE runtime_stop
#include <boost/test/unit_test.hpp>

#include "app/agent_runtime.hpp"
#include "plugins/deployer_instance.hpp"

#include <chrono>

using namespace rra;

// A plugin critical section left open makes stop wait (most of) its budget; a second
// stop must return at once instead of waiting again.
BOOST_AUTO_TEST_CASE(second_stop_returns_at_once) {
    plugins::CriticalSections::enter();
    {
        app::AgentRuntime runtime("/nonexistent/raspi-release-agent");
        auto ms = [](auto since) {
            return std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - since)
                .count();
        };
        auto t0 = std::chrono::steady_clock::now();
        runtime.stop(Millis(2000));
        BOOST_TEST(ms(t0) >= 900);  // it did wait for the section
        t0 = std::chrono::steady_clock::now();
        runtime.stop(Millis(2000));
        BOOST_TEST(ms(t0) < 500);
        plugins::CriticalSections::leave();
    }
}
