// Replays the fuzz seed corpora and the saved crashing inputs through the fuzz harnesses
// (fuzz/fuzz_*.cpp, compiled here with the normal compiler). A broken harness property
// aborts the process, which fails this test with the harness's message on stderr.
#define BOOST_TEST_MODULE fuzz_regressions
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

extern "C" int rraFuzz_proxy_messages(const uint8_t*, size_t);
extern "C" int rraFuzz_config(const uint8_t*, size_t);
extern "C" int rraFuzz_semver(const uint8_t*, size_t);
extern "C" int rraFuzz_github_release(const uint8_t*, size_t);
extern "C" int rraFuzz_extract(const uint8_t*, size_t);

namespace fs = std::filesystem;

namespace {

using Harness = int (*)(const uint8_t*, size_t);

std::string readAll(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Runs every file of the target's seed corpus and regression directory; returns the count.
size_t replay(const std::string& target, Harness fn) {
    std::vector<fs::path> files;
    for (const fs::path& dir : {fs::path(RRA_SOURCE_DIR) / "fuzz/corpus" / target,
                                fs::path(RRA_SOURCE_DIR) / "tests/fuzz_regressions" / target}) {
        if (!fs::is_directory(dir))
            continue;
        for (const auto& e : fs::directory_iterator(dir))
            if (e.is_regular_file())
                files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
        BOOST_TEST_CONTEXT("input " << f.string()) {
            const std::string data = readAll(f);
            BOOST_TEST(fn(reinterpret_cast<const uint8_t*>(data.data()), data.size()) == 0);
        }
    }
    return files.size();
}

}  // namespace

BOOST_AUTO_TEST_CASE(proxy_messages_inputs) {
    // Proves decode and the encoders keep their properties on every saved frame.
    BOOST_TEST(replay("proxy_messages", rraFuzz_proxy_messages) > 0u);
}

BOOST_AUTO_TEST_CASE(config_inputs) {
    // Proves loadConfig and the JSON syntax locator keep their properties on every saved file.
    BOOST_TEST(replay("config", rraFuzz_config) > 0u);
}

BOOST_AUTO_TEST_CASE(semver_inputs) {
    // Proves SemVer parsing and ordering keep their properties on every saved tag list.
    BOOST_TEST(replay("semver", rraFuzz_semver) > 0u);
}

BOOST_AUTO_TEST_CASE(github_release_inputs) {
    // Proves release parsing and asset selection keep their properties on every saved object.
    BOOST_TEST(replay("github_release", rraFuzz_github_release) > 0u);
}

BOOST_AUTO_TEST_CASE(extract_inputs) {
    // Proves no saved archive (hostile ones included) writes outside the destination.
    BOOST_TEST(replay("extract", rraFuzz_extract) > 0u);
}
