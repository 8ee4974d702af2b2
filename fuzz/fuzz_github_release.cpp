// Fuzz target: GitHub release JSON (parseRelease) and asset selection (selectAsset).
// Properties: no crash or escaping exception; a digest is kept only as 64 lower-case hex
// digits; a selected asset is the expanded pattern's name, is uploaded and is a plain file
// name (it becomes a path below the work directory); drafts are never selected.
#include "fuzz_check.hpp"
#include "github/release.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string json(reinterpret_cast<const char*>(data), size);
    auto r = rra::github::parseRelease(json);
    if (!r) {
        RRA_FUZZ_CHECK(!r.error().message().empty(), "a refused release says why");
        return 0;
    }
    for (const auto& a : r->assets) {
        if (a.sha256) {
            RRA_FUZZ_CHECK(a.sha256->size() == 64, "sha256 has 64 digits");
            for (char c : *a.sha256)
                RRA_FUZZ_CHECK((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'),
                               "sha256 is lower-case hex");
        }
    }
    // Patterns: each asset's own name, and one with every placeholder.
    std::vector<std::string> patterns{"app-{version}-{arch}.tar.gz", "{tag}.bin"};
    for (const auto& a : r->assets)
        patterns.push_back(a.name);
    for (const auto& pattern : patterns) {
        for (bool pre : {false, true}) {
            auto s = rra::github::selectAsset(*r, pattern, r->tagName, "amd64", pre);
            if (!s)
                continue;
            RRA_FUZZ_CHECK(!r->draft, "drafts are never selected");
            RRA_FUZZ_CHECK(pre || !r->prerelease, "pre-releases only when allowed");
            RRA_FUZZ_CHECK(s->name == rra::github::expandAssetPattern(pattern, r->tagName, "amd64"),
                           "the selected asset is the one the pattern names");
            RRA_FUZZ_CHECK(s->state == "uploaded", "only uploaded assets are selected");
            RRA_FUZZ_CHECK(
                s->name.find('/') == std::string::npos && s->name != "." && s->name != "..",
                "the selected asset name is a plain file name");
        }
    }
    return 0;
}
