// Proves the shared vocabulary behaves: secrets never print, errors keep context,
// the fake clock advances without sleeping.
#include <boost/test/unit_test.hpp>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "common/secret.hpp"

#include <sstream>

using namespace rra;

BOOST_AUTO_TEST_CASE(secret_prints_stars_only) {
    Secret s("ghp_supersecret");
    std::ostringstream os;
    os << s;
    BOOST_TEST(os.str() == "***");
    BOOST_TEST(s.toString() == "***");
    BOOST_TEST(s.reveal() == "ghp_supersecret");
}

BOOST_AUTO_TEST_CASE(error_context_prefixes_message) {
    Error e(ErrorCode::kIo, "no space left on device");
    Error c = e.context("install").context("component 'web-ui' tag v1.4.2");
    BOOST_TEST(c.message() == "component 'web-ui' tag v1.4.2: install: no space left on device");
    BOOST_TEST(static_cast<int>(c.code()) == static_cast<int>(ErrorCode::kIo));
}

BOOST_AUTO_TEST_CASE(fake_clock_sleeps_advance_virtual_time) {
    FakeClock clock;
    auto t0 = clock.now();
    BOOST_TEST(clock.sleepFor(Millis(60000)));
    BOOST_TEST((clock.now() - t0 == Millis(60000)));
    CancelToken cancel;
    cancel.cancel();
    BOOST_TEST(!clock.sleepFor(Millis(1000), &cancel));
    BOOST_TEST(clock.sleeps().size() == 1u);
}
