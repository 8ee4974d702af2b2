#include "config/json_syntax.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>

namespace rra::config {
namespace {

class Scanner {
  public:
    explicit Scanner(std::string_view t) : t_(t) {}

    SyntaxCheck run() {
        SyntaxCheck out;
        // RFC 8259 lets a parser ignore a leading UTF-8 byte order mark, and some Windows
        // editors write one; it is invisible, so columns do not count it.
        if (t_.substr(0, kUtf8Bom.size()) == kUtf8Bom)
            pos_ = kUtf8Bom.size();
        skipWs();
        if (!value(0)) {
            out.error = err_;
        } else {
            skipWs();
            if (pos_ != t_.size())
                out.error = fail("unexpected content after the JSON value");
        }
        out.warnings = std::move(warnings_);
        return out;
    }

  private:
    static constexpr int kMaxDepth = 512;

    bool value(int depth) {
        if (depth > kMaxDepth)
            return failB("nesting too deep");
        if (pos_ >= t_.size())
            return failB("unexpected end of file, expected a value");
        char c = t_[pos_];
        if (c == '{')
            return object(depth);
        if (c == '[')
            return array(depth);
        if (c == '"')
            return string();
        if (c == '-' || (c >= '0' && c <= '9'))
            return number();
        if (literal("true") || literal("false") || literal("null"))
            return true;
        return failB(std::string("unexpected character '") + printable(c) + "', expected a value");
    }

    bool object(int depth) {
        advance();  // {
        skipWs();
        if (peek() == '}')
            return advance(), true;
        const size_t pathLen = path_.size();
        std::set<std::string_view> seen;
        while (true) {
            skipWs();
            if (peek() != '"')
                return failB("expected a string key in object");
            const int keyLine = line_, keyCol = col_;
            const size_t keyStart = pos_ + 1;
            if (!string())
                return false;
            // Raw key text: escapes are not decoded, which only matters for keys nobody
            // writes ("\u0061" vs "a").
            std::string_view key = t_.substr(keyStart, pos_ - 1 - keyStart);
            path_.resize(pathLen);
            path_ += (pathLen ? "." : "");
            path_ += key;
            if (!seen.insert(key).second)
                warnings_.push_back(SyntaxWarning{keyLine, keyCol, path_,
                                                  "duplicate key (the last value is used)"});
            skipWs();
            if (peek() != ':')
                return failB("expected ':' after object key");
            advance();
            skipWs();
            if (!value(depth + 1))
                return false;
            path_.resize(pathLen);
            skipWs();
            if (peek() == ',') {
                advance();
                skipWs();
                if (peek() == '}')
                    return failB("trailing comma before '}'");
                continue;
            }
            if (peek() == '}')
                return advance(), true;
            return failB("expected ',' or '}' in object");
        }
    }

    bool array(int depth) {
        advance();  // [
        skipWs();
        if (peek() == ']')
            return advance(), true;
        const size_t pathLen = path_.size();
        for (size_t index = 0;; ++index) {
            skipWs();
            path_.resize(pathLen);
            path_ += "[" + std::to_string(index) + "]";
            if (!value(depth + 1))
                return false;
            path_.resize(pathLen);
            skipWs();
            if (peek() == ',') {
                advance();
                skipWs();
                if (peek() == ']')
                    return failB("trailing comma before ']'");
                continue;
            }
            if (peek() == ']')
                return advance(), true;
            return failB("expected ',' or ']' in array");
        }
    }

    bool string() {
        advance();  // "
        while (pos_ < t_.size()) {
            unsigned char c = static_cast<unsigned char>(t_[pos_]);
            if (c == '"')
                return advance(), true;
            if (c < 0x20)
                return failB("control character in string");
            if (c == '\\') {
                advance();
                if (pos_ >= t_.size())
                    break;
                char e = t_[pos_];
                if (e == 'u') {
                    for (int i = 0; i < 4; ++i) {
                        advance();
                        if (pos_ >= t_.size() || !isxdigit(static_cast<unsigned char>(t_[pos_])))
                            return failB("bad \\u escape in string");
                    }
                } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
                    return failB("bad escape in string");
                }
            }
            advance();
        }
        return failB("unterminated string");
    }

    bool number() {
        const size_t start = pos_;
        const int startLine = line_, startCol = col_;
        const bool negative = peek() == '-';
        if (negative)
            advance();
        const size_t digits = pos_;
        if (peek() == '0') {
            advance();
        } else if (isDigit(peek())) {
            while (isDigit(peek()))
                advance();
        } else {
            return failB("bad number");
        }
        const std::string_view intPart = t_.substr(digits, pos_ - digits);
        bool isInteger = true;
        if (peek() == '.') {
            isInteger = false;
            advance();
            if (!isDigit(peek()))
                return failB("bad number: digit expected after '.'");
            while (isDigit(peek()))
                advance();
        }
        if (peek() == 'e' || peek() == 'E') {
            isInteger = false;
            advance();
            if (peek() == '+' || peek() == '-')
                advance();
            if (!isDigit(peek()))
                return failB("bad number: digit expected in exponent");
            while (isDigit(peek()))
                advance();
        }
        const std::string literal(t_.substr(start, pos_ - start));
        // Poco wraps integers beyond 64 bits to 0 or clamps them, and throws a place-less
        // "Syntax error" for larger ones and for doubles that overflow.
        bool inRange = isInteger ? integerFits(intPart, negative)
                                 : std::isfinite(std::strtod(literal.c_str(), nullptr));
        if (!inRange) {
            err_ = SyntaxError{startLine, startCol, "number out of range (" + literal + ")", path_};
            return false;
        }
        return true;
    }

    // Poco reads a negative integer as Int64 and a positive one as UInt64 at most.
    static bool integerFits(std::string_view digits, bool negative) {
        const std::string_view limit = negative ? "9223372036854775808" : "18446744073709551615";
        if (digits.size() != limit.size())
            return digits.size() < limit.size();
        return digits <= limit;
    }

    bool literal(std::string_view word) {
        if (t_.substr(pos_, word.size()) != word)
            return false;
        for (size_t i = 0; i < word.size(); ++i)
            advance();
        return true;
    }

    static bool isDigit(char c) { return c >= '0' && c <= '9'; }
    static std::string printable(char c) {
        unsigned char u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u < 0x7f)
            return std::string(1, c);
        char buf[8];
        snprintf(buf, sizeof buf, "\\x%02x", u);
        return buf;
    }
    char peek() const { return pos_ < t_.size() ? t_[pos_] : '\0'; }
    void advance() {
        if (pos_ >= t_.size())
            return;
        if (t_[pos_] == '\n') {
            ++line_;
            col_ = 1;
        } else {
            ++col_;
        }
        ++pos_;
    }
    void skipWs() {
        while (pos_ < t_.size() &&
               (t_[pos_] == ' ' || t_[pos_] == '\t' || t_[pos_] == '\n' || t_[pos_] == '\r'))
            advance();
    }
    bool failB(std::string m) {
        if (pos_ >= t_.size() && m.find("end of file") == std::string::npos)
            m += " (reached end of file)";
        err_ = SyntaxError{line_, col_, std::move(m), {}};
        return false;
    }
    std::optional<SyntaxError> fail(std::string m) {
        failB(std::move(m));
        return err_;
    }

    std::string_view t_;
    size_t pos_ = 0;
    int line_ = 1, col_ = 1;
    SyntaxError err_;
    std::string path_;  // key path of the value being scanned
    std::vector<SyntaxWarning> warnings_;
};

}  // namespace

SyntaxCheck checkJsonSyntax(std::string_view text) {
    return Scanner(text).run();
}

std::optional<SyntaxError> findJsonSyntaxError(std::string_view text) {
    return checkJsonSyntax(text).error;
}

}  // namespace rra::config
