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

BOOST_AUTO_TEST_CASE(numbers_beyond_64_bits_are_out_of_range_with_their_key) {
    // Poco wraps 2^64 to 0, clamps below -2^63 and throws a place-less error on larger
    // numbers; the scanner names the number, its place and its key path.
    for (const char* ok : {"18446744073709551615", "-9223372036854775808", "1e308", "1e-400",
                           "123456789012345678901234.0"})
        BOOST_TEST(!findJsonSyntaxError(ok).has_value(), ok);
    struct Case {
        const char* text;
        int line, column;
        const char* key;
    };
    const Case cases[] = {
        {"18446744073709551616", 1, 1, ""},
        {"-9223372036854775809", 1, 1, ""},
        {"{\"a\": {\"b\": 99999999999999999999}}", 1, 13, "a.b"},
        {"{\"c\": [1,\n 1e400]}", 2, 2, "c[1]"},
        {"{\"c\": [{\"d\": -1E+999}]}", 1, 14, "c[0].d"},
    };
    for (const auto& c : cases) {
        auto e = findJsonSyntaxError(c.text);
        BOOST_TEST_CONTEXT(c.text) {
            BOOST_REQUIRE(e.has_value());
            BOOST_TEST(e->line == c.line);
            BOOST_TEST(e->column == c.column);
            BOOST_TEST(e->key == c.key);
            BOOST_TEST(e->message.find("number out of range") == 0u, e->message);
        }
    }
}

BOOST_AUTO_TEST_CASE(duplicate_keys_are_warnings_with_path_and_place) {
    // Same key twice in one object warns (Poco keeps the last); equal keys in different
    // objects do not.
    auto r = rra::config::checkJsonSyntax(
        "{\"a\": 1, \"b\": {\"a\": 2},\n \"l\": [{\"x\": 1, \"x\": 2}], \"a\": 3}");
    BOOST_TEST(!r.error.has_value());
    BOOST_REQUIRE(r.warnings.size() == 2u);
    BOOST_TEST(r.warnings[0].key == "l[0].x");
    BOOST_TEST(r.warnings[0].line == 2);
    BOOST_TEST(r.warnings[0].column == 17);
    BOOST_TEST(r.warnings[1].key == "a");
    BOOST_TEST(r.warnings[1].column == 27);
}

BOOST_AUTO_TEST_CASE(leading_byte_order_mark_is_ignored) {
    // RFC 8259 section 8.1: a parser may ignore a leading BOM; columns do not count it.
    BOOST_TEST(!findJsonSyntaxError("\xEF\xBB\xBF{\"a\": 1}").has_value());
    auto e = findJsonSyntaxError("\xEF\xBB\xBF{\"a\" 1}");
    BOOST_REQUIRE(e.has_value());
    BOOST_TEST(e->column == 6);
    BOOST_TEST(findJsonSyntaxError("{} \xEF\xBB\xBF").has_value());  // only at the start
}
