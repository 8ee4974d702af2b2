#include "common/semver.hpp"

namespace rra {
namespace {

bool isDigits(std::string_view s) {
    if (s.empty())
        return false;
    for (char c : s)
        if (c < '0' || c > '9')
            return false;
    return true;
}

bool isIdentChar(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

std::optional<uint64_t> parseNumeric(std::string_view s) {
    if (!isDigits(s))
        return std::nullopt;
    if (s.size() > 1 && s[0] == '0')
        return std::nullopt;  // no leading zeros
    uint64_t v = 0;
    for (char c : s) {
        uint64_t d = static_cast<uint64_t>(c - '0');
        if (v > (UINT64_MAX - d) / 10)
            return std::nullopt;  // would overflow
        v = v * 10 + d;
    }
    return v;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    size_t start = 0;
    while (true) {
        size_t p = s.find(sep, start);
        if (p == std::string_view::npos) {
            out.push_back(s.substr(start));
            return out;
        }
        out.push_back(s.substr(start, p - start));
        start = p + 1;
    }
}

bool validIdentifiers(const std::vector<std::string_view>& ids, bool numericNoLeadingZero) {
    for (auto id : ids) {
        if (id.empty())
            return false;
        for (char c : id)
            if (!isIdentChar(c))
                return false;
        if (numericNoLeadingZero && isDigits(id) && id.size() > 1 && id[0] == '0')
            return false;
    }
    return true;
}

}  // namespace

std::optional<SemVer> parseSemVer(std::string_view tag) {
    if (tag.size() > 256)
        return std::nullopt;
    if (!tag.empty() && (tag[0] == 'v' || tag[0] == 'V'))
        tag.remove_prefix(1);
    SemVer v;
    std::string_view core = tag;
    size_t plus = tag.find('+');
    if (plus != std::string_view::npos) {
        std::string_view build = tag.substr(plus + 1);
        if (!validIdentifiers(split(build, '.'), false))
            return std::nullopt;
        v.build = std::string(build);
        core = tag.substr(0, plus);
    }
    size_t dash = core.find('-');
    if (dash != std::string_view::npos) {
        auto ids = split(core.substr(dash + 1), '.');
        if (!validIdentifiers(ids, true))
            return std::nullopt;
        for (auto id : ids)
            v.prerelease.emplace_back(id);
        core = core.substr(0, dash);
    }
    auto nums = split(core, '.');
    if (nums.size() != 3)
        return std::nullopt;
    auto a = parseNumeric(nums[0]), b = parseNumeric(nums[1]), c = parseNumeric(nums[2]);
    if (!a || !b || !c)
        return std::nullopt;
    v.major = *a;
    v.minor = *b;
    v.patch = *c;
    return v;
}

int compareSemVer(const SemVer& a, const SemVer& b) {
    auto cmp = [](uint64_t x, uint64_t y) { return x < y ? -1 : (x > y ? 1 : 0); };
    if (int r = cmp(a.major, b.major))
        return r;
    if (int r = cmp(a.minor, b.minor))
        return r;
    if (int r = cmp(a.patch, b.patch))
        return r;
    // A version without pre-release has higher precedence than one with.
    if (a.prerelease.empty() || b.prerelease.empty())
        return a.prerelease.empty() == b.prerelease.empty() ? 0 : (a.prerelease.empty() ? 1 : -1);
    size_t n = std::min(a.prerelease.size(), b.prerelease.size());
    for (size_t i = 0; i < n; ++i) {
        const std::string& x = a.prerelease[i];
        const std::string& y = b.prerelease[i];
        bool xn = isDigits(x), yn = isDigits(y);
        if (xn && yn) {
            // Numeric identifiers compare numerically; longer (no leading zeros) is larger.
            if (x.size() != y.size())
                return x.size() < y.size() ? -1 : 1;
            if (x != y)
                return x < y ? -1 : 1;
        } else if (xn != yn) {
            return xn ? -1 : 1;  // numeric < alphanumeric
        } else if (x != y) {
            return x < y ? -1 : 1;
        }
    }
    return cmp(a.prerelease.size(), b.prerelease.size());
}

std::string tagVersion(std::string_view tag) {
    if (!tag.empty() && (tag[0] == 'v' || tag[0] == 'V'))
        tag.remove_prefix(1);
    return std::string(tag);
}

std::optional<int> compareTags(std::string_view a, std::string_view b) {
    auto x = parseSemVer(a), y = parseSemVer(b);
    if (!x || !y)
        return std::nullopt;
    return compareSemVer(*x, *y);
}

}  // namespace rra
