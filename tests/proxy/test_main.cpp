// Test module of the proxy connection.
#define BOOST_TEST_MODULE proxy
#include <boost/test/unit_test.hpp>
