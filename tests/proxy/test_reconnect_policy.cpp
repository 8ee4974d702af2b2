// Proves the reconnect backoff on virtual time: growth, jitter bounds, cap, reset after
// 60 s connected, and the cap for every unauthorized retry.
#include <boost/test/unit_test.hpp>

#include "proxy/reconnect_policy.hpp"

using namespace rra;
using namespace rra::proxy;

BOOST_AUTO_TEST_SUITE(reconnect_policy)

BOOST_AUTO_TEST_CASE(upper_end_doubles_until_the_cap) {
    // With jitter at its top the delay doubles from the initial value and stops at the cap.
    FakeClock clock;
    FixedRandom top(1.0);
    ReconnectPolicy p(Millis(1000), Millis(10000), clock, top);
    std::vector<int64_t> got;
    for (int i = 0; i < 7; ++i)
        got.push_back(p.nextDelay().count());
    std::vector<int64_t> want = {1000, 2000, 4000, 8000, 10000, 10000, 10000};
    BOOST_TEST(got == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(jitter_spreads_inside_the_window) {
    // A mid-range random value lands mid-window; the low end stays at the initial delay.
    FakeClock clock;
    FixedRandom mid(0.5), low(0.0);
    ReconnectPolicy pm(Millis(1000), Millis(300000), clock, mid);
    ReconnectPolicy pl(Millis(1000), Millis(300000), clock, low);
    std::vector<int64_t> gotMid, gotLow;
    for (int i = 0; i < 4; ++i) {
        gotMid.push_back(pm.nextDelay().count());
        gotLow.push_back(pl.nextDelay().count());
    }
    std::vector<int64_t> wantMid = {1000, 1500, 2500, 4500};
    std::vector<int64_t> wantLow = {1000, 1000, 1000, 1000};
    BOOST_TEST(gotMid == wantMid, boost::test_tools::per_element());
    BOOST_TEST(gotLow == wantLow, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(random_delays_stay_in_bounds) {
    // With real randomness every delay lies in [initial, min(cap, initial * 2^n)] and some differ.
    FakeClock clock;
    SystemRandom rnd(42);
    ReconnectPolicy p(Millis(100), Millis(5000), clock, rnd);
    int64_t ceiling = 100;
    bool varied = false;
    for (int i = 0; i < 40; ++i) {
        int64_t d = p.nextDelay().count();
        BOOST_TEST(d >= 100);
        BOOST_TEST(d <= ceiling);
        if (i > 0 && d != 100 && d != ceiling)
            varied = true;
        ceiling = std::min<int64_t>(ceiling * 2, 5000);
    }
    BOOST_TEST(varied);
}

BOOST_AUTO_TEST_CASE(reset_after_sixty_seconds_connected) {
    // A connection that stayed up 60 s resets the backoff; a shorter one does not.
    FakeClock clock;
    FixedRandom top(1.0);
    ReconnectPolicy p(Millis(1000), Millis(300000), clock, top);
    for (int i = 0; i < 5; ++i)
        (void)p.nextDelay();
    p.onConnected();
    clock.advance(Millis(59999));
    p.onDisconnected();
    BOOST_TEST(p.nextDelay().count() == 32000);  // not reset: 6th retry
    p.onConnected();
    clock.advance(Millis(60000));
    p.onDisconnected();
    BOOST_TEST(p.nextDelay().count() == 1000);  // reset
    BOOST_TEST(p.nextDelay().count() == 2000);
}

BOOST_AUTO_TEST_CASE(disconnect_without_connect_does_not_reset) {
    // Failed connection attempts (never connected) keep growing the delay.
    FakeClock clock;
    FixedRandom top(1.0);
    ReconnectPolicy p(Millis(1000), Millis(300000), clock, top);
    (void)p.nextDelay();
    clock.advance(Millis(120000));
    p.onDisconnected();
    BOOST_TEST(p.nextDelay().count() == 2000);
}

BOOST_AUTO_TEST_CASE(unauthorized_waits_the_cap_every_time) {
    // Unauthorized retries wait the cap each time, from the very first one.
    FakeClock clock;
    FixedRandom low(0.0);
    ReconnectPolicy p(Millis(1000), Millis(300000), clock, low);
    for (int i = 0; i < 3; ++i)
        BOOST_TEST(p.unauthorizedDelay().count() == 300000);
    BOOST_TEST(p.nextDelay().count() == 1000);  // attempt count untouched
}

BOOST_AUTO_TEST_CASE(bounds_are_sane) {
    // A cap below the initial delay is raised to it; new bounds apply to the next delay.
    FakeClock clock;
    FixedRandom top(1.0);
    ReconnectPolicy p(Millis(2000), Millis(500), clock, top);
    BOOST_TEST(p.nextDelay().count() == 2000);
    BOOST_TEST(p.nextDelay().count() == 2000);
    p.setBounds(Millis(100), Millis(1000));
    BOOST_TEST(p.nextDelay().count() == 400);  // third retry: 100 * 2^2
    BOOST_TEST(p.unauthorizedDelay().count() == 1000);
}

BOOST_AUTO_TEST_SUITE_END()
