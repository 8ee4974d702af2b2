// Tests of SettingsReader: typed getters, errors collected by key, unknown keys.
#include <boost/test/unit_test.hpp>

#include "support/settings.hpp"

namespace ps = rra::plugin_support;

BOOST_AUTO_TEST_CASE(typed_getters_and_defaults) {
    // Proves values are read with their types and missing optional keys give defaults.
    ps::SettingsReader r(R"({"dir":"/opt/x","keep":5,"big":4294967296,"on":true,
                            "cmd":["a","b c"]})");
    BOOST_TEST(r.requiredString("dir") == "/opt/x");
    BOOST_TEST(r.integer("keep", 3, 1, 10) == 5);
    BOOST_TEST(r.integer("big", 0, 0, int64_t(1) << 40) == int64_t(4294967296));
    BOOST_TEST(r.integer("absent", 7, 0, 10) == 7);
    BOOST_TEST(r.boolean("on", false));
    BOOST_TEST(r.argv("cmd") == (std::vector<std::string>{"a", "b c"}));
    BOOST_TEST(r.argv("nocmd").empty());
    BOOST_TEST(!r.hasErrors(), r.errorText());
    BOOST_TEST(r.unknownKeys().empty());
}

BOOST_AUTO_TEST_CASE(errors_are_collected_by_key) {
    // Proves every problem is reported with its key, joined in order, and unread keys are
    // reported as unknown.
    ps::SettingsReader r(R"({"keep":0,"cmd":[],"on":"yes","name":5,"zz":1,"aa":2})");
    (void)r.requiredString("dir");
    (void)r.integer("keep", 3, 1, 10);
    (void)r.argv("cmd");
    (void)r.boolean("on", false);
    (void)r.optionalString("name");
    BOOST_TEST(r.errorText() ==
               "settings.dir: required; settings.keep: must be an integer in [1, 10], got 0; "
               "settings.cmd: must be a non-empty array of non-empty strings; "
               "settings.on: must be true or false; settings.name: must be a string");
    BOOST_TEST(r.unknownKeys() == (std::vector<std::string>{"settings.aa", "settings.zz"}));
}

BOOST_AUTO_TEST_CASE(bad_json_is_an_error) {
    // Proves malformed JSON and a non-object are errors rather than exceptions.
    ps::SettingsReader a("{not json");
    BOOST_TEST(a.errorText().find("settings: invalid JSON") == 0u);
    ps::SettingsReader b("[1,2]");
    BOOST_TEST(b.errorText() == "settings: must be a JSON object");
}
