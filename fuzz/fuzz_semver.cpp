// Fuzz target: SemVer parsing and precedence. Input: up to three tags separated by '\n'.
// Properties: parsing never crashes; comparison is reflexive, antisymmetric and transitive;
// compareTags agrees with parse + compare; a parsed tag re-parses from its printed form.
#include "common/semver.hpp"
#include "fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace {

int sign(int x) {
    return (x > 0) - (x < 0);
}

std::string print(const rra::SemVer& v) {
    std::string s =
        std::to_string(v.major) + "." + std::to_string(v.minor) + "." + std::to_string(v.patch);
    for (size_t i = 0; i < v.prerelease.size(); ++i)
        s += (i == 0 ? "-" : ".") + v.prerelease[i];
    if (!v.build.empty())
        s += "+" + v.build;
    return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string input(reinterpret_cast<const char*>(data), size);
    std::vector<std::string> tags;
    size_t start = 0;
    while (tags.size() < 3) {
        const size_t nl = input.find('\n', start);
        tags.push_back(input.substr(start, nl == std::string::npos ? nl : nl - start));
        if (nl == std::string::npos)
            break;
        start = nl + 1;
    }
    std::vector<rra::SemVer> parsed;
    for (const auto& t : tags) {
        (void)rra::tagVersion(t);
        auto v = rra::parseSemVer(t);
        if (!v)
            continue;
        RRA_FUZZ_CHECK(rra::compareSemVer(*v, *v) == 0, "a version equals itself");
        auto again = rra::parseSemVer(print(*v));
        RRA_FUZZ_CHECK(again.has_value(), "a parsed version re-parses from its printed form");
        RRA_FUZZ_CHECK(rra::compareSemVer(*v, *again) == 0, "printing keeps precedence");
        parsed.push_back(*v);
    }
    for (size_t i = 0; i < parsed.size(); ++i) {
        for (size_t j = 0; j < parsed.size(); ++j) {
            const int ij = sign(rra::compareSemVer(parsed[i], parsed[j]));
            const int ji = sign(rra::compareSemVer(parsed[j], parsed[i]));
            RRA_FUZZ_CHECK(ij == -ji, "comparison is antisymmetric");
        }
    }
    if (parsed.size() == 3) {
        const int ab = sign(rra::compareSemVer(parsed[0], parsed[1]));
        const int bc = sign(rra::compareSemVer(parsed[1], parsed[2]));
        const int ac = sign(rra::compareSemVer(parsed[0], parsed[2]));
        if (ab <= 0 && bc <= 0)
            RRA_FUZZ_CHECK(ac <= 0, "comparison is transitive");
        if (ab >= 0 && bc >= 0)
            RRA_FUZZ_CHECK(ac >= 0, "comparison is transitive");
    }
    if (tags.size() >= 2) {
        auto c = rra::compareTags(tags[0], tags[1]);
        auto a = rra::parseSemVer(tags[0]);
        auto b = rra::parseSemVer(tags[1]);
        RRA_FUZZ_CHECK(c.has_value() == (a.has_value() && b.has_value()),
                       "compareTags answers exactly when both tags parse");
        if (c)
            RRA_FUZZ_CHECK(sign(*c) == sign(rra::compareSemVer(*a, *b)),
                           "compareTags agrees with compareSemVer");
    }
    return 0;
}
