#include "config/json_syntax.hpp"

#include <cctype>
#include <cstdio>

namespace rra::config {
namespace {

class Scanner {
  public:
    explicit Scanner(std::string_view t) : t_(t) {}

    std::optional<SyntaxError> run() {
        skipWs();
        if (!value(0))
            return err_;
        skipWs();
        if (pos_ != t_.size())
            return fail("unexpected content after the JSON value");
        return std::nullopt;
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
        while (true) {
            skipWs();
            if (peek() != '"')
                return failB("expected a string key in object");
            if (!string())
                return false;
            skipWs();
            if (peek() != ':')
                return failB("expected ':' after object key");
            advance();
            skipWs();
            if (!value(depth + 1))
                return false;
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
        while (true) {
            skipWs();
            if (!value(depth + 1))
                return false;
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
        if (peek() == '-')
            advance();
        if (peek() == '0') {
            advance();
        } else if (isDigit(peek())) {
            while (isDigit(peek()))
                advance();
        } else {
            return failB("bad number");
        }
        if (peek() == '.') {
            advance();
            if (!isDigit(peek()))
                return failB("bad number: digit expected after '.'");
            while (isDigit(peek()))
                advance();
        }
        if (peek() == 'e' || peek() == 'E') {
            advance();
            if (peek() == '+' || peek() == '-')
                advance();
            if (!isDigit(peek()))
                return failB("bad number: digit expected in exponent");
            while (isDigit(peek()))
                advance();
        }
        return true;
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
        err_ = SyntaxError{line_, col_, std::move(m)};
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
};

}  // namespace

std::optional<SyntaxError> findJsonSyntaxError(std::string_view text) {
    return Scanner(text).run();
}

}  // namespace rra::config
