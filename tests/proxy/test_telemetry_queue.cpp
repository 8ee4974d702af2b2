// Proves the telemetry queue: bounded with oldest dropped, ack by id, resend in order.
#include <boost/test/unit_test.hpp>

#include "proxy/telemetry_queue.hpp"

using namespace rra;
using namespace rra::proxy;

namespace {

TelemetryEvent ev(const std::string& id) {
    TelemetryEvent e;
    e.id = id;
    e.component = "web-ui";
    e.tag = "v1.0." + id;
    return e;
}

std::vector<std::string> ids(const std::vector<TelemetryEvent>& v) {
    std::vector<std::string> out;
    for (const auto& e : v)
        out.push_back(e.id);
    return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(telemetry_queue)

BOOST_AUTO_TEST_CASE(overflow_drops_oldest_and_counts) {
    // Pushing past capacity drops the oldest events and counts them.
    TelemetryQueue q(3);
    for (auto id : {"1", "2", "3"})
        BOOST_TEST(q.push(ev(id)) == 0u);
    BOOST_TEST(q.push(ev("4")) == 1u);
    BOOST_TEST(q.push(ev("5")) == 1u);
    BOOST_TEST(q.size() == 3u);
    BOOST_TEST(q.droppedTotal() == 2u);
    std::vector<std::string> want = {"3", "4", "5"};
    BOOST_TEST(ids(q.takeUnsent()) == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(ack_removes_by_id) {
    // An ack removes exactly that event; unknown or repeated acks change nothing.
    TelemetryQueue q(10);
    q.push(ev("a"));
    q.push(ev("b"));
    q.push(ev("c"));
    BOOST_TEST(q.ack("b"));
    BOOST_TEST(!q.ack("b"));
    BOOST_TEST(!q.ack("zzz"));
    BOOST_TEST(q.size() == 2u);
    std::vector<std::string> want = {"a", "c"};
    BOOST_TEST(ids(q.takeUnsent()) == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(sent_once_per_connection_and_resent_after_reconnect) {
    // Events go out once per connection; after a reconnect all unacked go again, in order.
    TelemetryQueue q(10);
    q.push(ev("1"));
    q.push(ev("2"));
    BOOST_TEST(q.takeUnsent().size() == 2u);
    BOOST_TEST(q.takeUnsent().empty());
    q.push(ev("3"));
    std::vector<std::string> only3 = {"3"};
    BOOST_TEST(ids(q.takeUnsent()) == only3, boost::test_tools::per_element());
    BOOST_TEST(q.ack("1"));
    q.markAllUnsent();
    std::vector<std::string> want = {"2", "3"};
    auto again = q.takeUnsent();
    BOOST_TEST(ids(again) == want, boost::test_tools::per_element());
    BOOST_TEST(again[0].tag == "v1.0.2");  // the event itself, not just the id
}

BOOST_AUTO_TEST_CASE(shrinking_capacity_drops_oldest) {
    // Lowering the capacity (config reload) drops the oldest surplus.
    TelemetryQueue q(5);
    for (auto id : {"1", "2", "3", "4"})
        q.push(ev(id));
    BOOST_TEST(q.setCapacity(2) == 2u);
    std::vector<std::string> want = {"3", "4"};
    BOOST_TEST(ids(q.takeUnsent()) == want, boost::test_tools::per_element());
    BOOST_TEST(q.droppedTotal() == 2u);
}

BOOST_AUTO_TEST_SUITE_END()
