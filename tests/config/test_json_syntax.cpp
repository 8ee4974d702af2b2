// Proves the syntax locator finds the line and column of the first JSON error, and
// accepts every well-formed document.
#include <boost/test/unit_test.hpp>

#include "config/json_syntax.hpp"

using rra::config::findJsonSyntaxError;

BOOST_AUTO_TEST_CASE(well_formed_documents_pass) {
    for (const char* ok : {"{}", "[]", "{\"a\": [1, -2.5e3, true, false, null, \"x\\u00e9\\n\"]}",
                           " \n{\"nested\": {\"deep\": [[[]]]}}\n", "0", "\"s\""}) {
        BOOST_TEST(!findJsonSyntaxError(ok).has_value(), ok);
    }
}

BOOST_AUTO_TEST_CASE(errors_carry_line_and_column) {
    struct Case {
        const char* text;
        int line, column;
    };
    const Case cases[] = {
        {"{\n  \"a\": 1,\n}", 3, 1},  // trailing comma
        {"{\"a\" 1}", 1, 6},          // missing colon
        {"{\n\"a\": [1, 2\n", 3, 1},  // unterminated array
        {"{\"a\": tru}", 1, 7},       // bad literal
        {"{} x", 1, 4},               // trailing garbage
        {"{\"a\": 01}", 1, 8},        // leading zero then garbage
        {"{\"a\": \"b\n\"}", 1, 9},   // raw newline in string
    };
    for (const auto& c : cases) {
        auto e = findJsonSyntaxError(c.text);
        BOOST_TEST_CONTEXT(c.text) {
            BOOST_REQUIRE(e.has_value());
            BOOST_TEST(e->line == c.line);
            BOOST_TEST(e->column == c.column);
            BOOST_TEST(!e->message.empty());
        }
    }
}

BOOST_AUTO_TEST_CASE(deep_nesting_is_an_error_not_a_crash) {
    std::string deep(100000, '[');
    auto e = findJsonSyntaxError(deep);
    BOOST_REQUIRE(e.has_value());
    BOOST_TEST(e->message.find("too deep") != std::string::npos);
}
